//! Exporting and publishing a project's current version as jobs: collect the files, render
//! them (Markdown, or the published pages' page-view beacon), then write the zip or swap in
//! the published build. An export's zip is kept under the data directory and downloaded
//! from `/api/v1/jobs/{id}/artifact` (the job's result names it) for `KEEP_EXPORTS`, or
//! until a newer export of the same project and format replaces it. Each run writes a new
//! file or a whole new build, so running a job again after a restart is harmless.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use diesel::prelude::*;
use serde_json::json;

use super::{Job, Jobs, Kind, Progress, Status, Step, enqueue};
use crate::error::ApiError;
use crate::projects;
use crate::schema::jobs;
use crate::sites::{self, KEEP_EXPORTS};

fn steps(kind: Kind) -> Vec<Step> {
    let (render, last) = match kind {
        Kind::ExportMarkdown => (
            "Render: turn the pages into Markdown",
            ("zip", "Zip: write the archive"),
        ),
        Kind::PublishSite => (
            "Render: add the page-view counter to the pages",
            ("publish", "Publish: replace the live site at once"),
        ),
        _ => (
            "Render: prepare the files",
            ("zip", "Zip: write the archive"),
        ),
    };
    vec![
        Step::pending("collect", "Collect: read the current version"),
        Step::pending("render", render),
        Step::pending(last.0, last.1),
    ]
}

/// The file an export job made, and the name to download it as.
pub fn artifact(data_dir: &Path, job: &Job) -> Result<(PathBuf, String), ApiError> {
    if !matches!(job.kind, Kind::ExportSite | Kind::ExportMarkdown) {
        return Err(ApiError::NotFound(format!(
            "job {} makes no file to download (exports do)",
            job.id
        )));
    }
    match job.status {
        Status::Succeeded => {}
        Status::Failed => {
            return Err(ApiError::Conflict(format!(
                "this export failed, so there is nothing to download: {}",
                job.error.as_deref().unwrap_or("no reason was recorded")
            )));
        }
        Status::Queued | Status::Running => {
            return Err(ApiError::Conflict(format!(
                "this export is not finished yet; follow it at /api/v1/jobs/{}/events",
                job.id
            )));
        }
    }
    let id = uuid::Uuid::parse_str(&job.id).map_err(ApiError::internal)?;
    let file = sites::artifact(data_dir, &id);
    if !file.is_file() {
        return Err(ApiError::Gone(format!(
            "this export was removed: exports are kept for {} hours, and until the project is exported again; export it again",
            KEEP_EXPORTS.as_secs() / 3600
        )));
    }
    let name = job
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .and_then(|r| r["file_name"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "export.zip".to_owned());
    Ok((file, name))
}

impl Jobs {
    /// Queues an export (`ExportSite`, `ExportMarkdown`) or a publish of a project.
    pub async fn submit_export(&self, project_id: String, kind: Kind) -> Result<Job, ApiError> {
        let job = self
            .store
            .run(move |conn| {
                projects::get(conn, &project_id)?;
                enqueue(conn, kind, Some(&project_id), &json!({}), &steps(kind))
            })
            .await?;
        self.queued(&job);
        Ok(job)
    }

    pub(super) async fn export(
        &self,
        kind: Kind,
        job: &Job,
        progress: &mut Progress<'_>,
    ) -> Result<serde_json::Value, ApiError> {
        progress.steps = steps(kind);
        let project_id = job
            .project_id
            .clone()
            .ok_or_else(|| ApiError::BadRequest("the job names no project".to_owned()))?;

        progress.start(0).await?;
        let (name, version, files) = {
            let project_id = project_id.clone();
            self.store
                .run(move |conn| projects::head_files(conn, &project_id))
                .await?
        };
        // The zip or the build takes about as much room as the files.
        self.quota
            .check(files.iter().map(|(_, c)| c.len() as u64).sum())?;

        progress.start(1).await?;
        let files = {
            let project_id = project_id.clone();
            tokio::task::spawn_blocking(move || match kind {
                Kind::ExportMarkdown => sites::markdown_files(files),
                Kind::PublishSite => sites::with_beacons(&project_id, files),
                _ => files,
            })
            .await
            .map_err(ApiError::internal)?
        };
        let count = files.len();

        progress.start(2).await?;
        let data_dir = self.data_dir.clone();
        if kind == Kind::PublishSite {
            let project = project_id.clone();
            tokio::task::spawn_blocking(move || sites::publish(&data_dir, &project, &files))
                .await
                .map_err(ApiError::internal)??;
            tracing::info!(project = %project_id, version, "published");
            return Ok(json!({
                "url": format!("/sites/{project_id}/"),
                "version": version,
                "files": count,
            }));
        }
        let id = uuid::Uuid::parse_str(&job.id).map_err(ApiError::internal)?;
        let bytes =
            tokio::task::spawn_blocking(move || sites::write_artifact(&data_dir, &id, &files))
                .await
                .map_err(ApiError::internal)??;
        let (format, suffix) = match kind {
            Kind::ExportMarkdown => ("markdown", "-markdown"),
            _ => ("site", ""),
        };
        let expires_at = chrono::Utc::now()
            + chrono::Duration::from_std(KEEP_EXPORTS).map_err(ApiError::internal)?;
        Ok(json!({
            "format": format,
            "version": version,
            "files": count,
            "artifact": format!("/api/v1/jobs/{}/artifact", job.id),
            "file_name": sites::file_name(&name, suffix),
            "bytes": bytes,
            "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }))
    }

    /// Removes the exports no one can download any more: expired, replaced by a newer
    /// export of the same project and format, or of a deleted project. Called by the worker
    /// between jobs, so no export is being written meanwhile.
    pub(super) async fn sweep_exports(&self) {
        let kinds = [Kind::ExportSite, Kind::ExportMarkdown];
        let newest = self
            .store
            .run(move |conn| {
                let done: Vec<(String, Option<String>, Kind)> = jobs::table
                    .filter(jobs::kind.eq_any(kinds))
                    .filter(jobs::status.eq(Status::Succeeded))
                    .order(jobs::updated_at.desc())
                    .select((jobs::id, jobs::project_id, jobs::kind))
                    .load(conn)?;
                let mut seen = HashSet::new();
                Ok(done
                    .into_iter()
                    .filter(|(_, project, kind)| seen.insert((project.clone(), *kind)))
                    .filter_map(|(id, _, _)| uuid::Uuid::parse_str(&id).ok())
                    .collect::<HashSet<_>>())
            })
            .await;
        let newest = match newest {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell which exports to keep");
                return;
            }
        };
        let data_dir = self.data_dir.clone();
        let removed = tokio::task::spawn_blocking(move || {
            sites::sweep_artifacts(&data_dir, KEEP_EXPORTS, |id| newest.contains(id))
        })
        .await
        .unwrap_or_default();
        if removed > 0 {
            tracing::info!(removed, "removed old exports");
        }
    }
}
