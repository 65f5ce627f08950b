//! Generating a site from a brief as a job: the pipeline's steps are the job's steps; the
//! site is applied as a new version (autonomy `autonomous`) or left as a proposal the user
//! accepts or rejects. Nothing is written before the pipeline ends, so a generation
//! interrupted by a restart simply runs again; and the site (or proposal) is written in the
//! transaction that records the job's end, so a generation never writes it twice: a crash
//! either loses both (the job runs again) or keeps both (the job is over).

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde::Serialize;

use super::{Job, Jobs, Kind, Progress, Step, StepState, enqueue, finish, now};
use crate::agents::{self, Autonomy};
use crate::crash::crash_point;
use crate::error::ApiError;
use crate::generation::{self as generator, Brief, OfflineGenerator};
use crate::projects;
use crate::schema::proposals;

/// The pipeline's steps, none started.
fn steps() -> Vec<Step> {
    generator::STEPS
        .iter()
        .zip(generator::STEP_LABELS)
        .map(|(name, label)| Step::pending(*name, label))
        .collect()
}

impl Jobs {
    /// Queues the generation of a site for a project.
    pub async fn submit_generation(
        &self,
        project_id: String,
        brief: Brief,
    ) -> Result<Job, ApiError> {
        brief.validate()?;
        let input = serde_json::to_value(&brief).map_err(ApiError::internal)?;
        let job = self
            .store
            .run(move |conn| {
                projects::get(conn, &project_id)?;
                if let Some(agent) = &brief.agent_id {
                    agents::get(conn, agent)?;
                }
                enqueue(
                    conn,
                    Kind::GenerateSite,
                    Some(&project_id),
                    &input,
                    &steps(),
                )
            })
            .await?;
        self.queued(&job);
        Ok(job)
    }

    pub(super) async fn generate(
        &self,
        job: &Job,
        progress: &mut Progress<'_>,
    ) -> Result<serde_json::Value, ApiError> {
        // Run again after a restart, the pipeline starts over: it only writes at the end.
        progress.steps = steps();
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
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let pipeline = tokio::task::spawn_blocking(move || {
            generator::run(&OfflineGenerator, &brief, &settings, |i, _| {
                let _ = tx.send(i);
            })
        });
        while let Some(i) = rx.recv().await {
            progress.start(i).await?;
        }
        let site = pipeline
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::BadRequest(format!("generation failed: {e}")))?;

        let mut result = serde_json::json!({
            "generator": site.generator,
            "review": site.review,
            "files": site.files.keys().collect::<Vec<_>>(),
        });
        let mut steps = progress.steps.clone();
        for step in &mut steps {
            step.state = StepState::Done;
        }
        let (job_id, files) = (job.id.clone(), site.files);
        self.store
            .run(move |conn| {
                conn.transaction(|conn| {
                    match autonomy {
                        Autonomy::Autonomous => {
                            let version = projects::replace_files(
                                conn,
                                &project_id,
                                "generated the site from a brief",
                                &files,
                            )?;
                            result["applied"] = serde_json::json!(true);
                            result["version"] = serde_json::json!(version);
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
                            result["applied"] = serde_json::json!(false);
                            result["proposal_id"] = serde_json::json!(proposal);
                        }
                    }
                    crash_point("generation_saved");
                    finish(conn, &job_id, Ok(result.clone()), &steps)?;
                    Ok(result)
                })
            })
            .await
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
