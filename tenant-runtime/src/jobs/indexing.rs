//! Indexing uploaded documents as a job: one step per document, in upload order. A step
//! reads the stored file, extracts its text and indexes its passages, leaving the document
//! `indexed`, or `failed` with a reason a person can act on (an unreadable PDF, or one that
//! stopped the workspace twice while it was read: reads are counted before each). Run again
//! after a restart, the job skips the documents already settled and re-indexes the others
//! from scratch (`SearchIndex::index` replaces what an interrupted run committed), so no
//! passage is ever indexed twice. A document's row and its step are written in one
//! transaction, once its passages are committed to the index. A document deleted before
//! its turn is skipped. A job that fails (a fault of the workspace, such as its database)
//! fails the documents it left `indexing`, with the job's end, once their passages are out
//! of the index (`Jobs::execute`); documents still `indexing` with no job to finish them at
//! a start are queued again (`adopt_orphans`).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sqlite::SqliteConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Job, Jobs, Kind, Progress, Step, StepState, enqueue, record};
use crate::documents::{self, Document, Kind as DocumentKind, Status, Upload};
use crate::error::ApiError;
use crate::schema::documents as documents_table;

#[derive(Serialize, Deserialize)]
struct Input {
    /// The documents' ids, in upload order.
    documents: Vec<String>,
}

/// How a document's step stands, from its row (`None`: deleted).
fn state_of(document: Option<&Document>) -> (StepState, Option<String>) {
    match document {
        None => (
            StepState::Skipped,
            Some("deleted before it was indexed".to_owned()),
        ),
        Some(d) if d.is(Status::Indexed) => (StepState::Done, None),
        Some(d) if d.is(Status::Failed) => (StepState::Failed, d.error.clone()),
        Some(_) => (StepState::Pending, None),
    }
}

impl Jobs {
    /// Stores admitted uploads and queues their indexing, in one transaction: either every
    /// document and the job exist, or none (and no file is left behind).
    pub async fn submit_indexing(
        &self,
        uploads: Vec<Upload>,
    ) -> Result<(Vec<Document>, Job), ApiError> {
        let index = self.index.clone();
        let (documents, job) = self
            .store
            .run(move |conn| {
                let stored = conn.transaction(|conn| {
                    let documents = index.store(conn, &uploads)?;
                    let input = serde_json::to_value(Input {
                        documents: documents.iter().map(|d| d.id.clone()).collect(),
                    })
                    .map_err(ApiError::internal)?;
                    let steps: Vec<Step> = documents
                        .iter()
                        .map(|d| Step::pending(&d.id, &d.name))
                        .collect();
                    let job = enqueue(conn, Kind::IndexDocuments, None, &input, &steps)?;
                    Ok((documents, job))
                });
                if stored.is_err() {
                    index.forget(&uploads);
                }
                stored
            })
            .await?;
        self.queued(&job);
        Ok((documents, job))
    }

    pub(super) async fn index(
        &self,
        job: &Job,
        progress: &mut Progress<'_>,
    ) -> Result<serde_json::Value, ApiError> {
        let input: Input = serde_json::from_str(&job.input).map_err(ApiError::internal)?;
        let labels: HashMap<String, String> =
            job.steps().into_iter().map(|s| (s.name, s.label)).collect();
        // Where each document stands now: after a restart, some may be settled already.
        let rows = self.rows_of(&input.documents).await?;
        progress.steps = input
            .documents
            .iter()
            .zip(&rows)
            .map(|(id, row)| {
                let (state, message) = state_of(row.as_ref());
                let label = row
                    .as_ref()
                    .map(|d| d.name.clone())
                    .or_else(|| labels.get(id).cloned())
                    .unwrap_or_else(|| id.clone());
                Step {
                    name: id.clone(),
                    label,
                    state,
                    message,
                }
            })
            .collect();

        for (i, id) in input.documents.iter().enumerate() {
            if progress.steps[i].state.settled() {
                continue;
            }
            progress.start(i).await?;
            self.index_one(progress, i, id).await?;
        }

        let outcome = self.rows_of(&input.documents).await?;
        let documents: Vec<Document> = outcome.into_iter().flatten().collect();
        let count = |status: Status| documents.iter().filter(|d| d.is(status)).count();
        Ok(json!({
            "indexed": count(Status::Indexed),
            "failed": count(Status::Failed),
            "documents": documents,
        }))
    }

    /// Before a failed indexing job's end is recorded: removes from the index the passages
    /// of its documents still `indexing`, the ones that end fails. Done first, so a
    /// document is never seen `failed` while its passages can still be found; if the end
    /// then cannot be recorded, the job runs again at the next start and indexes them anew.
    pub(super) async fn unindex_unsettled(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let unsettled: Vec<String> = match self.rows_of(ids).await {
            Ok(rows) => rows
                .into_iter()
                .flatten()
                .filter(|d| d.is(Status::Indexing))
                .map(|d| d.id)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the documents of a failed indexing job");
                ids.to_vec()
            }
        };
        if unsettled.is_empty() {
            return;
        }
        let index = self.index.clone();
        let removed = tokio::task::spawn_blocking(move || index.unindex(&unsettled)).await;
        if !matches!(removed, Ok(Ok(()))) {
            tracing::error!("cannot remove the passages of failed documents from the index");
        }
    }

    /// The rows of these documents, in order (`None` for one deleted since).
    async fn rows_of(&self, ids: &[String]) -> Result<Vec<Option<Document>>, ApiError> {
        let ids = ids.to_vec();
        self.store
            .run(move |conn| {
                ids.iter()
                    .map(|id| documents::find(conn, id))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
    }

    /// Indexes one document and records how its step ended. Only a fault of the workspace
    /// itself (its database) is an error: a document that cannot be read is a failed step.
    async fn index_one(
        &self,
        progress: &mut Progress<'_>,
        i: usize,
        id: &str,
    ) -> Result<(), ApiError> {
        let index = self.index.clone();
        let pending = {
            let id = id.to_owned();
            self.store.run(move |conn| index.pending(conn, &id)).await?
        };
        let Some(documents::Pending { document, bytes }) = pending else {
            let (state, message) = state_of(None);
            return progress.end(i, state, message).await;
        };
        if !document.is(Status::Indexing) {
            let (state, message) = state_of(Some(&document));
            return progress.end(i, state, message).await;
        }
        let name = document.name.clone();
        // Counted before it is read: a file that kills the process while it is read (past
        // every bound `extract` keeps) fails after its second read, rather than taking the
        // workspace down again at every start.
        let reads = {
            let id = id.to_owned();
            self.store
                .run(move |conn| documents::count_read(conn, &id))
                .await?
        };
        let pages = match (bytes, DocumentKind::parse(&document.kind)) {
            _ if reads > documents::MAX_READS => Err(format!(
                "{name:?} could not be read: the workspace stopped twice while reading it (it may be too large or malformed); delete it and upload a smaller or repaired copy"
            )),
            (Ok(bytes), Some(kind)) => tokio::task::spawn_blocking(move || {
                crate::crash::crash_point("reading_document");
                documents::extract(&document.name, kind, &bytes).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|_| Err(format!("{name:?} could not be read"))),
            (Err(why), _) => Err(format!("{name:?} could not be read: {why}")),
            (_, None) => Err(format!("{name:?} is of a kind that cannot be indexed")),
        };
        let index = self.index.clone();
        let id = id.to_owned();
        let (job_id, mut steps) = (progress.job_id.clone(), progress.steps.clone());
        let (steps, job) = self
            .store
            .run(move |conn| {
                let indexed = match pages {
                    Ok(pages) => match index.index(conn, &id, &pages) {
                        Ok(count) => Ok(count.map(|c| (pages.len(), c))),
                        Err(e) => {
                            tracing::error!(document = %id, error = ?e, "a document could not be indexed");
                            Err("it could not be added to the search index (a fault of the workspace); delete it and upload it again".to_owned())
                        }
                    },
                    Err(reason) => Err(reason),
                };
                // The document's row and its step, together.
                conn.transaction(|conn| {
                    let settled = match indexed {
                        Ok(Some((pages, count))) => documents::indexed(conn, &id, pages, count)?,
                        Ok(None) => None,
                        Err(reason) => documents::fail(conn, &id, &reason)?,
                    };
                    let (state, message) = state_of(settled.as_ref());
                    steps[i].state = state;
                    steps[i].message = message;
                    let job = record(conn, &job_id, &steps)?;
                    Ok((steps, job))
                })
            })
            .await?;
        progress.steps = steps;
        self.announce(job);
        Ok(())
    }
}

/// The documents an indexing job was given.
pub(super) fn documents_of(job: &Job) -> Vec<String> {
    serde_json::from_str::<Input>(&job.input)
        .map(|input| input.documents)
        .unwrap_or_default()
}

/// Fails those of these documents still `indexing`: their job failed on a fault of the
/// workspace. Uploading again is what helps, so that is what the reason says.
pub(super) fn fail_interrupted(
    conn: &mut SqliteConnection,
    ids: &[String],
) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(
        documents_table::table
            .filter(documents_table::id.eq_any(ids))
            .filter(documents_table::status.eq(Status::Indexing.as_str())),
    )
    .set((
        documents_table::status.eq(Status::Failed.as_str()),
        documents_table::error.eq(
            "indexing was interrupted by a fault of the workspace; delete it and upload it again",
        ),
    ))
    .execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Orphan {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    name: String,
}

/// At a start, after interrupted jobs were queued again: documents still `indexing` that no
/// queued job will index (their job's end was recorded but not theirs) are queued in a new
/// job. Their bytes are kept, so indexing them is what the person who uploaded them expects;
/// one whose bytes are gone fails then with a reason that says to upload it again.
pub(super) fn adopt_orphans(conn: &mut SqliteConnection) -> Result<Option<Job>, ApiError> {
    conn.transaction(|conn| {
        let orphans: Vec<Orphan> = diesel::sql_query(
            "SELECT d.id, d.name FROM documents d WHERE d.status = 'indexing' AND NOT EXISTS (
                SELECT 1 FROM jobs j, json_each(j.input, '$.documents') e
                WHERE j.kind = ? AND j.status IN ('queued', 'running') AND e.value = d.id)
             ORDER BY d.created_at, d.id",
        )
        .bind::<Text, _>(Kind::IndexDocuments.as_str())
        .load(conn)?;
        if orphans.is_empty() {
            return Ok(None);
        }
        tracing::warn!(
            count = orphans.len(),
            "documents left indexing are queued again"
        );
        let input = serde_json::to_value(Input {
            documents: orphans.iter().map(|d| d.id.clone()).collect(),
        })
        .map_err(ApiError::internal)?;
        let steps: Vec<Step> = orphans
            .iter()
            .map(|d| Step::pending(&d.id, &d.name))
            .collect();
        enqueue(conn, Kind::IndexDocuments, None, &input, &steps).map(Some)
    })
}
