//! The user's projects as the dashboard shows them: asked of their running workspace (the
//! runtime's own `GET /api/v1/projects`, signed with the tenant's secret exactly as the
//! platform asks for a site's export), with the published addresses of each, and kept in
//! Redis so a stopped workspace still shows the last list known, saying from when. Projects
//! live in the workspace; this is a read-only copy of their names and dates, never of
//! their files. A workspace that does not answer in two seconds is shown from that copy.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Sites;
use crate::error::ApiError;
use crate::tenants::{Tenants, identity};
use crate::users::User;

/// How long the last known list is kept for a workspace that does not run.
const KEEP_FOR: u64 = 30 * 24 * 3600;
/// How long the dashboard waits for a running workspace.
const ASK_WITHIN: Duration = Duration::from_secs(2);

/// A site published from a project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublishedAt {
    pub name: String,
    pub url: String,
    pub published_at: DateTime<Utc>,
}

/// One project, as the dashboard lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectCard {
    pub id: String,
    pub name: String,
    /// When it was last edited (RFC 3339, as the workspace says).
    pub updated_at: String,
    /// Its version number: how many changes it has had.
    pub version: i64,
    /// Where it is published, if it is.
    #[serde(default)]
    pub sites: Vec<PublishedAt>,
}

/// The user's projects, newest edit first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectCards {
    pub projects: Vec<ProjectCard>,
    /// How many projects the workspace holds (the list shows the 50 edited last).
    pub total: i64,
    /// When the workspace last told this list; `None` when it never has.
    pub as_of: Option<DateTime<Utc>>,
    /// Whether it came from the running workspace now (else it is the last known list).
    pub live: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    as_of: DateTime<Utc>,
    total: i64,
    projects: Vec<ProjectCard>,
}

/// The runtime's answer (`ProjectList`), as much of it as the dashboard needs.
#[derive(Debug, Deserialize)]
struct RuntimeList {
    projects: Vec<RuntimeProject>,
    total: i64,
}

#[derive(Debug, Deserialize)]
struct RuntimeProject {
    id: String,
    name: String,
    head_version: i64,
    updated_at: String,
}

impl Sites {
    /// `user`'s projects with their published addresses: from the workspace when it runs,
    /// else the last list it told.
    #[tracing::instrument(skip_all, fields(user = %user.id))]
    pub async fn projects(&self, tenants: &Tenants, user: &User) -> Result<ProjectCards, ApiError> {
        let key = self.kv.key(&format!("projects:{}", user.id.0));
        let fresh = self.ask_workspace(tenants, user).await;
        let (kept, live) = match fresh {
            Some(kept) => {
                let raw = serde_json::to_string(&kept).map_err(ApiError::internal)?;
                let store = key.clone();
                let saved = self
                    .kv
                    .run(async move |c| {
                        redis::cmd("SET")
                            .arg(&store)
                            .arg(raw)
                            .arg("EX")
                            .arg(KEEP_FOR)
                            .query_async::<()>(c)
                            .await
                    })
                    .await;
                if let Err(e) = saved {
                    tracing::warn!(error = %e, "cannot keep the projects' list");
                }
                (Some(kept), true)
            }
            None => {
                let read = key.clone();
                let raw: Option<String> = self
                    .kv
                    .run(async move |c| redis::cmd("GET").arg(&read).query_async(c).await)
                    .await?;
                (
                    raw.and_then(|r| serde_json::from_str::<Kept>(&r).ok()),
                    false,
                )
            }
        };
        let sites = self.list(user.id).await?.sites;
        let Some(kept) = kept else {
            return Ok(ProjectCards {
                projects: Vec::new(),
                total: 0,
                as_of: None,
                live,
            });
        };
        let projects = kept
            .projects
            .into_iter()
            .map(|mut p| {
                p.sites = sites
                    .iter()
                    .filter(|s| s.project.hyphenated().to_string() == p.id)
                    .map(|s| PublishedAt {
                        name: s.name.clone(),
                        url: s.url.clone(),
                        published_at: s.published_at,
                    })
                    .collect();
                p
            })
            .collect();
        Ok(ProjectCards {
            projects,
            total: kept.total,
            as_of: Some(kept.as_of),
            live,
        })
    }

    /// The list from the running workspace, or `None` when it does not run or answer.
    async fn ask_workspace(&self, tenants: &Tenants, user: &User) -> Option<Kept> {
        let slug = {
            let mut conn = self.db.get().await.ok()?;
            crate::tenants::store::find_workspace(&mut conn, user.id)
                .await
                .ok()
                .flatten()?
                .slug
        };
        let route = tenants
            .routing
            .route(&slug)
            .await
            .ok()
            .flatten()
            .filter(|r| r.user == user.id)?;
        let path = "/api/v1/projects?per_page=50";
        let answer = self
            .client
            .get(format!("http://{}{path}", route.address))
            .header(
                identity::HEADER,
                identity::sign_now(
                    tenants.keys.of_route(&route).expose_secret(),
                    user.id,
                    "GET",
                    path,
                ),
            )
            .timeout(ASK_WITHIN)
            .send()
            .await
            .inspect_err(|e| tracing::debug!(error = %e, "the workspace did not list its projects"))
            .ok()?;
        if !answer.status().is_success() {
            tracing::warn!(status = %answer.status(), "the workspace refused to list its projects");
            return None;
        }
        let list: RuntimeList = answer.json().await.ok()?;
        Some(Kept {
            as_of: Utc::now(),
            total: list.total,
            projects: list
                .projects
                .into_iter()
                .map(|p| ProjectCard {
                    id: p.id,
                    name: p.name,
                    updated_at: p.updated_at,
                    version: p.head_version,
                    sites: Vec::new(),
                })
                .collect(),
        })
    }
}
