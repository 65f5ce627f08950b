//! Background jobs: long work recorded in SQLite and run one at a time by a worker task —
//! generating a site (`generation`), indexing uploaded documents (`indexing`), exporting
//! and publishing a site (`exporting`). A job lists its steps in order, each with its
//! state; progress is written to the job's row and broadcast to listeners (SSE, the
//! WebSocket). A job that was queued or running when the process stopped is run again at
//! the next start, so every kind's work must be safe to run twice. Where a kind's work
//! writes to SQLite, that write and the record of the step (or the job's end) it completes
//! are one transaction, so a crash never leaves the work done but unrecorded.

mod exporting;
mod generation;
pub mod http;
mod indexing;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteConnection, SqliteValue};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast};

use crate::documents::SearchIndex;
use crate::error::ApiError;
use crate::quota::Quota;
use crate::schema::jobs;
use crate::store::Store;

pub use exporting::artifact;
pub use generation::{Proposal, accept, proposal_with_files, proposals_of, reject};

/// What a job does; stored as its `kind`, the same text in its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, AsExpression, FromSqlRow)]
#[serde(rename_all = "snake_case")]
#[diesel(sql_type = Text)]
pub enum Kind {
    GenerateSite,
    IndexDocuments,
    ExportSite,
    ExportMarkdown,
    PublishSite,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::GenerateSite,
        Kind::IndexDocuments,
        Kind::ExportSite,
        Kind::ExportMarkdown,
        Kind::PublishSite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GenerateSite => "generate_site",
            Kind::IndexDocuments => "index_documents",
            Kind::ExportSite => "export_site",
            Kind::ExportMarkdown => "export_markdown",
            Kind::PublishSite => "publish_site",
        }
    }

    pub fn parse(raw: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Where a job stands; stored as its `status`, the same text in its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, AsExpression, FromSqlRow)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = Text)]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl Status {
    const ALL: [Status; 4] = [
        Status::Queued,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether the job is over, one way or the other.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed)
    }
}

/// Kinds and statuses are stored as their text; a row whose text is neither is an error
/// (the job cannot be read), never a default.
macro_rules! stored_as_text {
    ($type:ident, $what:literal) => {
        impl ToSql<Text, Sqlite> for $type {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                out.set_value(self.as_str());
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Sqlite> for $type {
            fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
                let raw = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
                $type::parse(&raw).ok_or_else(|| format!("{raw:?} is not {}", $what).into())
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_as_text!(Kind, "a job kind");
stored_as_text!(Status, "a job status");

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    /// Nothing to do after all (a document deleted before its turn).
    Skipped,
}

impl StepState {
    fn settled(self) -> bool {
        matches!(
            self,
            StepState::Done | StepState::Failed | StepState::Skipped
        )
    }
}

/// One step of a job, as its JSON lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Stable: a pipeline step (`plan`, `collect`…) or, when indexing, the document's id.
    pub name: String,
    /// For people: what the step does, or the document's name.
    pub label: String,
    pub state: StepState,
    /// Why a step failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Step {
    fn pending(name: impl Into<String>, label: impl Into<String>) -> Self {
        Step {
            name: name.into(),
            label: label.into(),
            state: StepState::Pending,
            message: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = jobs, check_for_backend(diesel::sqlite::Sqlite))]
pub struct Job {
    pub id: String,
    pub kind: Kind,
    pub project_id: Option<String>,
    pub status: Status,
    pub progress: i32,
    /// The name of the step under way (`done` or `failed` at the end).
    pub step: String,
    /// Every step in order with its state (a JSON array of `Step`s).
    #[serde(serialize_with = "steps_json")]
    pub steps: String,
    #[serde(skip)]
    pub input: String,
    #[serde(serialize_with = "as_json")]
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn as_json<S: serde::Serializer>(raw: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    let value: Option<serde_json::Value> =
        raw.as_deref().and_then(|r| serde_json::from_str(r).ok());
    value.serialize(s)
}

fn steps_json<S: serde::Serializer>(raw: &str, s: S) -> Result<S::Ok, S::Error> {
    parse_steps(raw).serialize(s)
}

fn parse_steps(raw: &str) -> Vec<Step> {
    serde_json::from_str(raw).unwrap_or_default()
}

fn steps_text(steps: &[Step]) -> String {
    serde_json::to_string(steps).unwrap_or_else(|_| "[]".to_owned())
}

impl Job {
    pub fn is_finished(&self) -> bool {
        self.status.is_finished()
    }

    /// The steps recorded so far (empty for a job queued without them).
    pub fn steps(&self) -> Vec<Step> {
        parse_steps(&self.steps)
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn get(conn: &mut SqliteConnection, id: &str) -> Result<Job, ApiError> {
    jobs::table
        .find(id)
        .select(Job::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound(format!("there is no job {id:?}")))
}

pub fn list(conn: &mut SqliteConnection, limit: i64) -> Result<Vec<Job>, ApiError> {
    Ok(jobs::table
        .order(jobs::created_at.desc())
        .limit(limit)
        .select(Job::as_select())
        .load(conn)?)
}

/// Records a queued job; the caller announces it and wakes the worker (`Jobs::queued`).
fn enqueue(
    conn: &mut SqliteConnection,
    kind: Kind,
    project_id: Option<&str>,
    input: &serde_json::Value,
    steps: &[Step],
) -> Result<Job, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    let at = now();
    diesel::insert_into(jobs::table)
        .values((
            jobs::id.eq(&id),
            jobs::kind.eq(kind),
            jobs::project_id.eq(project_id),
            jobs::status.eq(Status::Queued),
            jobs::input.eq(input.to_string()),
            jobs::steps.eq(steps_text(steps)),
            jobs::created_at.eq(&at),
            jobs::updated_at.eq(&at),
        ))
        .execute(conn)?;
    get(conn, &id)
}

fn update(
    conn: &mut SqliteConnection,
    id: &str,
    progress: i32,
    step: &str,
    steps: &[Step],
) -> Result<Job, ApiError> {
    diesel::update(jobs::table.find(id))
        .set((
            jobs::status.eq(Status::Running),
            jobs::progress.eq(progress),
            jobs::step.eq(step),
            jobs::steps.eq(steps_text(steps)),
            jobs::updated_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, id)
}

/// Records the steps of a running job as they stand, with its progress.
fn record(conn: &mut SqliteConnection, id: &str, steps: &[Step]) -> Result<Job, ApiError> {
    let settled = steps.iter().filter(|s| s.state.settled()).count();
    let percent = (settled * 100).checked_div(steps.len()).unwrap_or_default() as i32;
    let current = steps
        .iter()
        .find(|s| s.state == StepState::Running)
        .map(|s| s.name.as_str())
        .unwrap_or_default();
    update(conn, id, percent, current, steps)
}

/// Records a job's end, once: a job already finished (by a kind that records its end in
/// the transaction of its last write) is left as it is.
fn finish(
    conn: &mut SqliteConnection,
    id: &str,
    outcome: Result<serde_json::Value, String>,
    steps: &[Step],
) -> Result<Job, ApiError> {
    let (status, result, error) = match outcome {
        Ok(v) => (Status::Succeeded, Some(v.to_string()), None),
        Err(e) => (Status::Failed, None, Some(e)),
    };
    diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::status.ne_all([Status::Succeeded, Status::Failed])),
    )
    .set((
        jobs::status.eq(status),
        jobs::progress.eq(100),
        jobs::step.eq(if status == Status::Succeeded {
            "done"
        } else {
            "failed"
        }),
        jobs::steps.eq(steps_text(steps)),
        jobs::result.eq(result),
        jobs::error.eq(error),
        jobs::updated_at.eq(now()),
    ))
    .execute(conn)?;
    get(conn, id)
}

/// How many times a job's end is tried before it is left to the next start.
const FINISH_ATTEMPTS: u32 = 4;

/// How often an idle worker removes expired exports.
const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);

/// The worker, what its jobs work on, and its listeners.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
    index: Arc<SearchIndex>,
    data_dir: PathBuf,
    quota: Quota,
    events: broadcast::Sender<Job>,
    wake: Arc<Notify>,
}

impl Jobs {
    /// Starts the worker; jobs interrupted by the last stop are queued again.
    pub fn start(store: Store, index: Arc<SearchIndex>, data_dir: PathBuf, quota: Quota) -> Self {
        let (events, _) = broadcast::channel(256);
        let jobs = Jobs {
            store,
            index,
            data_dir,
            quota,
            events,
            wake: Arc::new(Notify::new()),
        };
        tokio::spawn(jobs.clone().work());
        jobs
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Job> {
        self.events.subscribe()
    }

    fn announce(&self, job: Job) {
        // No listener is fine: the row holds the state.
        let _ = self.events.send(job);
    }

    /// Tells listeners and the worker about a job just queued.
    fn queued(&self, job: &Job) {
        self.announce(job.clone());
        self.wake.notify_one();
    }

    async fn work(self) {
        if let Err(e) = self
            .store
            .run(|conn| {
                diesel::update(jobs::table.filter(jobs::status.eq(Status::Running)))
                    .set(jobs::status.eq(Status::Queued))
                    .execute(conn)
                    .map_err(ApiError::from)
            })
            .await
        {
            tracing::error!(error = %e, "cannot requeue interrupted jobs");
        }
        match self.store.run(indexing::adopt_orphans).await {
            Ok(Some(job)) => self.announce(job),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot requeue documents left indexing"),
        }
        self.sweep_exports().await;
        let mut swept = Instant::now();
        loop {
            let next = self
                .store
                .run(|conn| {
                    Ok(jobs::table
                        .filter(jobs::status.eq(Status::Queued))
                        .order(jobs::created_at.asc())
                        .select(Job::as_select())
                        .first(conn)
                        .optional()?)
                })
                .await;
            match next {
                Ok(Some(job)) => self.execute(job).await,
                Ok(None) => {
                    if swept.elapsed() > SWEEP_EVERY {
                        self.sweep_exports().await;
                        swept = Instant::now();
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the job worker cannot read the queue");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    #[tracing::instrument(skip(self, job), fields(job_id = %job.id, kind = %job.kind))]
    async fn execute(&self, job: Job) {
        let mut progress = Progress {
            jobs: self,
            job_id: job.id.clone(),
            steps: job.steps(),
        };
        let outcome = match job.kind {
            Kind::GenerateSite => self.generate(&job, &mut progress).await,
            Kind::IndexDocuments => self.index(&job, &mut progress).await,
            kind @ (Kind::ExportSite | Kind::ExportMarkdown | Kind::PublishSite) => {
                self.export(kind, &job, &mut progress).await
            }
        };
        let result = match outcome {
            Ok(value) => Ok(value),
            Err(e) => {
                tracing::warn!(error = %e, "job failed");
                Err(e.to_string())
            }
        };
        // The documents a failed indexing job leaves `indexing` are failed with it, in the
        // transaction that records its end.
        let orphaned = match (&result, job.kind) {
            (Err(_), Kind::IndexDocuments) => indexing::documents_of(&job),
            _ => Vec::new(),
        };
        self.unindex_unsettled(&orphaned).await;
        let steps = progress.close(result.is_ok());
        // A database fault may pass: the end is tried again. If it never lands, the job is
        // still `running` and runs again at the next start.
        for attempt in 1..=FINISH_ATTEMPTS {
            let (id, result, steps, orphaned) = (
                job.id.clone(),
                result.clone(),
                steps.clone(),
                orphaned.clone(),
            );
            let recorded = self
                .store
                .run(move |conn| {
                    conn.transaction(|conn| {
                        indexing::fail_interrupted(conn, &orphaned)?;
                        finish(conn, &id, result, &steps)
                    })
                })
                .await;
            match recorded {
                Ok(done) => {
                    self.announce(done);
                    break;
                }
                Err(e) if attempt < FINISH_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "cannot record the job's end; trying again");
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "cannot record the job's end; it runs again at the next start"
                ),
            }
        }
        if matches!(job.kind, Kind::ExportSite | Kind::ExportMarkdown) {
            // A new export replaces the previous one of its project and format.
            self.sweep_exports().await;
        }
    }
}

/// A running job's steps: each change is written to its row and announced.
struct Progress<'a> {
    jobs: &'a Jobs,
    job_id: String,
    steps: Vec<Step>,
}

impl Progress<'_> {
    /// Marks step `i` running (the unsettled ones before it done) and records it.
    async fn start(&mut self, i: usize) -> Result<(), ApiError> {
        for step in &mut self.steps[..i] {
            if !step.state.settled() {
                step.state = StepState::Done;
            }
        }
        self.steps[i].state = StepState::Running;
        self.save().await
    }

    /// Records how step `i` ended.
    async fn end(
        &mut self,
        i: usize,
        state: StepState,
        message: Option<String>,
    ) -> Result<(), ApiError> {
        self.steps[i].state = state;
        self.steps[i].message = message;
        self.save().await
    }

    async fn save(&self) -> Result<(), ApiError> {
        let (id, steps) = (self.job_id.clone(), self.steps.clone());
        let updated = self
            .jobs
            .store
            .run(move |conn| record(conn, &id, &steps))
            .await?;
        self.jobs.announce(updated);
        Ok(())
    }

    /// The steps as the job ends: on success every unsettled step is done; on failure the
    /// running one failed and the rest were never reached.
    fn close(mut self, succeeded: bool) -> Vec<Step> {
        for step in &mut self.steps {
            step.state = match step.state {
                StepState::Running if !succeeded => StepState::Failed,
                StepState::Pending | StepState::Running if succeeded => StepState::Done,
                other => other,
            };
        }
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use diesel::Connection;

    use super::*;

    #[test]
    fn kinds_and_statuses_keep_their_stored_and_wire_text() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::json!(kind), kind.as_str());
        }
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::json!(status), status.as_str());
        }
        assert_eq!(Kind::IndexDocuments.as_str(), "index_documents");
        assert_eq!(Status::Succeeded.as_str(), "succeeded");
    }

    #[test]
    fn a_stored_text_that_is_no_kind_or_status_is_an_error() {
        let mut conn = SqliteConnection::establish(":memory:").expect("an in-memory database");
        let read = |conn: &mut SqliteConnection, text: &str| {
            diesel::select(diesel::dsl::sql::<Text>(&format!("'{text}'")))
                .get_result::<Status>(conn)
        };
        assert_eq!(read(&mut conn, "running").ok(), Some(Status::Running));
        assert!(read(&mut conn, "paused").is_err());
        let kind =
            diesel::select(diesel::dsl::sql::<Text>("'export_site'")).get_result::<Kind>(&mut conn);
        assert_eq!(kind.ok(), Some(Kind::ExportSite));
        let unknown =
            diesel::select(diesel::dsl::sql::<Text>("'mine_coins'")).get_result::<Kind>(&mut conn);
        assert!(unknown.is_err());
    }
}
