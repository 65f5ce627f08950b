//! Background jobs: long work recorded in SQLite and run one at a time by a worker task.
//! Progress is written to the job's row and broadcast to listeners (SSE). A job that was
//! queued or running when the process stopped is run again at the next start. Today's one
//! kind is `generate_site`; indexing and export jobs join it later.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde::Serialize;
use tokio::sync::{Notify, broadcast};

use crate::agents::{self, Autonomy};
use crate::error::ApiError;
use crate::generator::{self, Brief, OfflineGenerator};
use crate::projects;
use crate::schema::{jobs, proposals};
use crate::store::Store;

pub const GENERATE_SITE: &str = "generate_site";

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = jobs, check_for_backend(diesel::sqlite::Sqlite))]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub project_id: Option<String>,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub progress: i32,
    pub step: String,
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

impl Job {
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed")
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

fn update(
    conn: &mut SqliteConnection,
    id: &str,
    status: &str,
    progress: i32,
    step: &str,
) -> Result<Job, ApiError> {
    diesel::update(jobs::table.find(id))
        .set((
            jobs::status.eq(status),
            jobs::progress.eq(progress),
            jobs::step.eq(step),
            jobs::updated_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, id)
}

fn finish(
    conn: &mut SqliteConnection,
    id: &str,
    outcome: Result<serde_json::Value, String>,
) -> Result<Job, ApiError> {
    let (status, result, error) = match outcome {
        Ok(v) => ("succeeded", Some(v.to_string()), None),
        Err(e) => ("failed", None, Some(e)),
    };
    diesel::update(jobs::table.find(id))
        .set((
            jobs::status.eq(status),
            jobs::progress.eq(100),
            jobs::step.eq(if status == "succeeded" {
                "done"
            } else {
                "failed"
            }),
            jobs::result.eq(result),
            jobs::error.eq(error),
            jobs::updated_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, id)
}

/// The worker and its listeners.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
    events: broadcast::Sender<Job>,
    wake: Arc<Notify>,
}

impl Jobs {
    /// Starts the worker; jobs interrupted by the last stop are queued again.
    pub fn start(store: Store) -> Self {
        let (events, _) = broadcast::channel(256);
        let jobs = Jobs {
            store,
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

    /// Queues the generation of a site for a project.
    pub async fn submit_generation(
        &self,
        project_id: String,
        brief: Brief,
    ) -> Result<Job, ApiError> {
        brief.validate()?;
        let input = serde_json::to_string(&brief).map_err(ApiError::internal)?;
        let job = self
            .store
            .run(move |conn| {
                projects::get(conn, &project_id)?;
                if let Some(agent) = &brief.agent_id {
                    agents::get(conn, agent)?;
                }
                let id = uuid::Uuid::new_v4().to_string();
                let at = now();
                diesel::insert_into(jobs::table)
                    .values((
                        jobs::id.eq(&id),
                        jobs::kind.eq(GENERATE_SITE),
                        jobs::project_id.eq(&project_id),
                        jobs::status.eq("queued"),
                        jobs::input.eq(&input),
                        jobs::created_at.eq(&at),
                        jobs::updated_at.eq(&at),
                    ))
                    .execute(conn)?;
                get(conn, &id)
            })
            .await?;
        self.announce(job.clone());
        self.wake.notify_one();
        Ok(job)
    }

    async fn work(self) {
        if let Err(e) = self
            .store
            .run(|conn| {
                diesel::update(jobs::table.filter(jobs::status.eq("running")))
                    .set(jobs::status.eq("queued"))
                    .execute(conn)
                    .map_err(ApiError::from)
            })
            .await
        {
            tracing::error!(error = %e, "cannot requeue interrupted jobs");
        }
        loop {
            let next = self
                .store
                .run(|conn| {
                    Ok(jobs::table
                        .filter(jobs::status.eq("queued"))
                        .order(jobs::created_at.asc())
                        .select(Job::as_select())
                        .first(conn)
                        .optional()?)
                })
                .await;
            match next {
                Ok(Some(job)) => self.execute(job).await,
                Ok(None) => {
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
        let outcome = self.generate(&job).await;
        let id = job.id.clone();
        let result = match outcome {
            Ok(value) => Ok(value),
            Err(e) => {
                tracing::warn!(error = %e, "job failed");
                Err(e.to_string())
            }
        };
        match self.store.run(move |conn| finish(conn, &id, result)).await {
            Ok(done) => self.announce(done),
            Err(e) => tracing::error!(error = %e, "cannot record the job's end"),
        }
    }

    async fn generate(&self, job: &Job) -> Result<serde_json::Value, ApiError> {
        let brief: Brief = serde_json::from_str(&job.input).map_err(ApiError::internal)?;
        let project_id = job
            .project_id
            .clone()
            .ok_or_else(|| ApiError::BadRequest("the job names no project".to_owned()))?;
        let (settings, autonomy) = {
            let (project_id, brief) = (project_id.clone(), brief.clone());
            self.store
                .run(move |conn| {
                    let settings = projects::get(conn, &project_id)?.settings;
                    let agent_autonomy = match &brief.agent_id {
                        Some(agent) => Some(agents::get(conn, agent)?.autonomy),
                        None => None,
                    };
                    Ok((
                        settings,
                        brief
                            .autonomy
                            .or(agent_autonomy)
                            .unwrap_or(Autonomy::Suggest),
                    ))
                })
                .await?
        };

        // The pipeline is synchronous; its progress comes back over a channel.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
        let pipeline = tokio::task::spawn_blocking(move || {
            generator::run(&OfflineGenerator, &brief, &settings, |i, step| {
                let _ = tx.send((i, step.to_owned()));
            })
        });
        while let Some((i, step)) = rx.recv().await {
            let (id, progress) = (job.id.clone(), (i * 100 / generator::STEPS.len()) as i32);
            let updated = self
                .store
                .run(move |conn| update(conn, &id, "running", progress, &step))
                .await?;
            self.announce(updated);
        }
        let site = pipeline
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::BadRequest(format!("generation failed: {e}")))?;

        let (job_id, files) = (job.id.clone(), site.files.clone());
        let applied = self
            .store
            .run(move |conn| match autonomy {
                Autonomy::Autonomous => {
                    let version = projects::replace_files(
                        conn,
                        &project_id,
                        "generated the site from a brief",
                        &files,
                    )?;
                    Ok(serde_json::json!({ "applied": true, "version": version }))
                }
                // A whole new site is a major change: "ask" proposes it, like "suggest".
                Autonomy::Suggest | Autonomy::Ask => {
                    let proposal = propose(
                        conn,
                        &project_id,
                        &job_id,
                        "a site generated from your brief",
                        &files,
                    )?;
                    Ok(serde_json::json!({ "applied": false, "proposal_id": proposal }))
                }
            })
            .await?;
        let mut result = applied;
        result["generator"] = serde_json::json!(site.generator);
        result["review"] = site.review;
        result["files"] = serde_json::json!(site.files.keys().collect::<Vec<_>>());
        Ok(result)
    }
}

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = proposals, check_for_backend(diesel::sqlite::Sqlite))]
pub struct Proposal {
    pub id: String,
    pub project_id: String,
    pub job_id: Option<String>,
    pub base_version: i64,
    pub summary: String,
    #[serde(skip)]
    pub files: String,
    /// `open`, `accepted` or `rejected`.
    pub status: String,
    pub created_at: String,
}

fn propose(
    conn: &mut SqliteConnection,
    project_id: &str,
    job_id: &str,
    summary: &str,
    files: &std::collections::BTreeMap<String, String>,
) -> Result<String, ApiError> {
    let base = projects::get(conn, project_id)?.head_version;
    let id = uuid::Uuid::new_v4().to_string();
    diesel::insert_into(proposals::table)
        .values((
            proposals::id.eq(&id),
            proposals::project_id.eq(project_id),
            proposals::job_id.eq(job_id),
            proposals::base_version.eq(base),
            proposals::summary.eq(summary),
            proposals::files.eq(serde_json::to_string(files).map_err(ApiError::internal)?),
            proposals::status.eq("open"),
            proposals::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(id)
}

pub fn proposals_of(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> Result<Vec<Proposal>, ApiError> {
    projects::get(conn, project_id)?;
    Ok(proposals::table
        .filter(proposals::project_id.eq(project_id))
        .order(proposals::created_at.desc())
        .select(Proposal::as_select())
        .load(conn)?)
}

fn open_proposal(conn: &mut SqliteConnection, id: &str) -> Result<Proposal, ApiError> {
    let proposal: Proposal = proposals::table
        .find(id)
        .select(Proposal::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound(format!("there is no proposal {id:?}")))?;
    if proposal.status != "open" {
        return Err(ApiError::Conflict(format!(
            "this proposal was already {}",
            proposal.status
        )));
    }
    Ok(proposal)
}

/// Applies a proposal as a new version. If the project changed since the proposal was made,
/// that is refused unless `force` (the changes stay in the history either way).
pub fn accept(conn: &mut SqliteConnection, id: &str, force: bool) -> Result<i64, ApiError> {
    conn.transaction(|conn| {
        let proposal = open_proposal(conn, id)?;
        let head = projects::get(conn, &proposal.project_id)?.head_version;
        if head != proposal.base_version && !force {
            return Err(ApiError::Stale {
                message: format!(
                    "the project changed since this proposal was made (it was version {}, it is now {head}); accept it anyway to apply it over those changes (they stay in the history), or generate again",
                    proposal.base_version
                ),
                current_etag: None,
                current: serde_json::json!({ "head_version": head, "base_version": proposal.base_version }),
            });
        }
        let files: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&proposal.files).map_err(ApiError::internal)?;
        let version = projects::replace_files(conn, &proposal.project_id, &format!("accepted: {}", proposal.summary), &files)?;
        diesel::update(proposals::table.find(id)).set(proposals::status.eq("accepted")).execute(conn)?;
        Ok(version)
    })
}

pub fn reject(conn: &mut SqliteConnection, id: &str) -> Result<(), ApiError> {
    open_proposal(conn, id)?;
    diesel::update(proposals::table.find(id))
        .set(proposals::status.eq("rejected"))
        .execute(conn)?;
    Ok(())
}

/// A proposal with the files it would make the site.
pub fn proposal_with_files(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<serde_json::Value, ApiError> {
    let proposal: Proposal = proposals::table
        .find(id)
        .select(Proposal::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound(format!("there is no proposal {id:?}")))?;
    let files: serde_json::Value =
        serde_json::from_str(&proposal.files).map_err(ApiError::internal)?;
    let mut view = serde_json::to_value(&proposal).map_err(ApiError::internal)?;
    view["files"] = files;
    Ok(view)
}
