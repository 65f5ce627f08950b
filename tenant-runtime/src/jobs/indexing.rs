//! Indexing uploaded documents as a job: one step per document, in upload order. A step
//! reads the stored file, extracts its text and indexes its passages, leaving the document
//! `indexed`, or `failed` with a reason a person can act on (an unreadable PDF). Run again
//! after a restart, the job skips the documents already settled and re-indexes the others
//! from scratch (`SearchIndex::index` replaces what an interrupted run committed), so no
//! passage is ever indexed twice. A document deleted before its turn is skipped.

use std::collections::HashMap;

use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Job, Jobs, Kind, Progress, Step, StepState, enqueue};
use crate::documents::{self, Document, Kind as DocumentKind, Status, Upload};
use crate::error::ApiError;

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
            let (state, message) = self.index_one(id).await?;
            progress.end(i, state, message).await?;
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

    /// Indexes one document; how its step ended. Only a fault of the workspace itself
    /// (its database) is an error: a document that cannot be read is a failed step.
    async fn index_one(&self, id: &str) -> Result<(StepState, Option<String>), ApiError> {
        let index = self.index.clone();
        let pending = {
            let id = id.to_owned();
            self.store.run(move |conn| index.pending(conn, &id)).await?
        };
        let Some(documents::Pending { document, bytes }) = pending else {
            return Ok(state_of(None));
        };
        if !document.is(Status::Indexing) {
            return Ok(state_of(Some(&document)));
        }
        let name = document.name.clone();
        let pages = match (bytes, DocumentKind::parse(&document.kind)) {
            (Ok(bytes), Some(kind)) => tokio::task::spawn_blocking(move || {
                documents::extract(&document.name, kind, &bytes).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|_| Err(format!("{name:?} could not be read"))),
            (Err(why), _) => Err(format!("{name:?} could not be read: {why}")),
            (_, None) => Err(format!("{name:?} is of a kind that cannot be indexed")),
        };
        let index = self.index.clone();
        let id = id.to_owned();
        let settled = self
            .store
            .run(move |conn| {
                let pages = match pages {
                    Ok(pages) => pages,
                    Err(reason) => return documents::fail(conn, &id, &reason),
                };
                match index.index(conn, &id, &pages) {
                    Ok(indexed) => Ok(indexed),
                    Err(e) => {
                        tracing::error!(document = %id, error = ?e, "a document could not be indexed");
                        documents::fail(
                            conn,
                            &id,
                            "it could not be added to the search index (a fault of the workspace); delete it and upload it again",
                        )
                    }
                }
            })
            .await?;
        Ok(state_of(settled.as_ref()))
    }
}
