//! Published sites: a user's project copied out of their workspace into storage the
//! platform serves, at `{name}.{sites domain}`, to anyone, whether the workspace runs or
//! not. Publishing asks the running workspace for the project's current version (the same
//! static-site zip an export gives), unpacks it into a new build (a folder on disk, or a
//! prefix in an S3-compatible bucket: `storage`), counts its size against the owner's
//! storage, and then points the site's row at the build — the one atomic step — and retires
//! the old build a minute later, so no visitor sees half a site. Page views on a
//! published site are relayed to the owner's workspace analytics by the platform, signed,
//! so a visitor never talks to a workspace.
//!
//! This module never serves a request (that is `web::sites`), never lets one user's name,
//! build or analytics reach another's, and never makes a workspace start for a visitor.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authz::access_levels;
use crate::config::{PublicUrl, SitesConfig};
use crate::db;
use crate::error::ApiError;
use crate::kv::Kv;
use crate::tenants::{Tenants, identity};
use crate::users::{User, UserId};

pub mod disk;
pub mod name;
pub mod projects;
pub mod s3;
pub mod storage;
pub mod store;
pub mod thumbnail;

pub use name::SiteName;
pub use storage::Storage;
pub use store::Site;

/// Page views kept for a stopped workspace, per owner, until it runs again.
const MAX_QUEUED_VIEWS: isize = 10_000;

/// A published site as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SiteView {
    /// The name, the first label of its address.
    pub name: String,
    /// Where anyone can see it.
    pub url: String,
    /// The workspace project it was published from.
    pub project: Uuid,
    /// Its size, counted against the owner's storage.
    pub bytes: i64,
    pub files: i32,
    pub created_at: DateTime<Utc>,
    pub published_at: DateTime<Utc>,
}

/// The sites of one user, with what they take of the user's storage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SiteList {
    pub sites: Vec<SiteView>,
    /// The bytes all of them take.
    pub bytes: i64,
}

pub struct Sites {
    pub config: SitesConfig,
    pub storage: Storage,
    public_url: PublicUrl,
    db: db::Pool,
    kv: Kv,
    /// Talks to runtimes (the export to publish, page views to count): no redirects.
    client: reqwest::Client,
}

/// A page view of a published site, as its visitor's request shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct View {
    pub project: Uuid,
    /// The file viewed, e.g. `index.html`.
    pub path: String,
    pub referrer: Option<String>,
    pub client: String,
    pub user_agent: String,
}

impl Sites {
    pub fn new(
        config: SitesConfig,
        public_url: PublicUrl,
        db: db::Pool,
        kv: Kv,
        metrics: &crate::metrics::Metrics,
    ) -> anyhow::Result<Arc<Self>> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Arc::new(Sites {
            storage: Storage::new(&config, metrics)?,
            config,
            public_url,
            db,
            kv,
            client,
        }))
    }

    /// The site a `Host` header names (`{name}.{domain}[:port]`), if it is a site's.
    pub fn name_of_host(&self, host: &str) -> Option<SiteName> {
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let name = host.strip_suffix(&self.config.domain)?.strip_suffix('.')?;
        if name.contains('.') {
            return None;
        }
        SiteName::parse(name).ok()
    }

    /// A site's address: `{scheme}://{name}.{domain}[:port]`, on the platform's scheme and
    /// port.
    pub fn url_of(&self, name: &str) -> String {
        let url = self.public_url.url();
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{name}.{}{port}/", url.scheme(), self.config.domain)
    }

    fn view(&self, site: Site) -> SiteView {
        SiteView {
            url: self.url_of(&site.name),
            name: site.name,
            project: site.project_id,
            bytes: site.bytes,
            files: site.files,
            created_at: site.created_at,
            published_at: site.published_at,
        }
    }

    /// `user`'s sites.
    pub async fn list(&self, user: UserId) -> Result<SiteList, ApiError> {
        let mut conn = self.db.get().await?;
        let sites: Vec<SiteView> = store::of_user(&mut conn, user)
            .await?
            .into_iter()
            .map(|s| self.view(s))
            .collect();
        Ok(SiteList {
            bytes: sites.iter().map(|s| s.bytes).sum(),
            sites,
        })
    }

    /// The site served at `name`, for a visitor.
    pub async fn find(&self, name: &SiteName) -> Result<Option<Site>, ApiError> {
        let mut conn = self.db.get().await?;
        Ok(store::find(&mut conn, name.as_str()).await?)
    }

    /// Publishes the current version of `project`, from `user`'s running workspace, at
    /// `name`: a new site, or a new build of the user's own site of that name.
    #[tracing::instrument(skip_all, fields(user = %user.id, site = %name, %project))]
    pub async fn publish(
        &self,
        tenants: &Tenants,
        user: &User,
        name: &SiteName,
        project: Uuid,
    ) -> Result<SiteView, ApiError> {
        let mut conn = self.db.get().await?;
        if let Some(site) = store::find(&mut conn, name.as_str()).await?
            && site.user_id != user.id
        {
            return Err(taken(name));
        }
        if store::is_others_workspace(&mut conn, name.as_str(), user.id).await? {
            return Err(taken(name));
        }
        let workspace = tenants.workspace(&mut conn, user).await?;
        let level = access_levels::require(&mut conn, &user.access_level).await?;
        let others = store::bytes_of_user(&mut conn, user.id, name.as_str()).await?;
        drop(conn);
        let quota = i64::from(level.storage_mib).saturating_mul(1024 * 1024);
        let used = workspace.used_bytes.unwrap_or(0).saturating_add(others);
        let room = u64::try_from(quota.saturating_sub(used)).unwrap_or(0);
        let limit = room.min(self.config.max_bytes);

        let route = match tenants.routing.route(&workspace.slug).await? {
            Some(route) if route.user == user.id => route,
            _ => {
                return Err(ApiError::Conflict(
                    "Your workspace is not running. Publishing copies the site out of it, so open your workspace and publish again.".to_owned(),
                ));
            }
        };
        let path = format!("/api/v1/projects/{project}/export.zip");
        let answer = self
            .client
            .get(format!("http://{}{path}", route.address))
            .header(
                identity::HEADER,
                identity::sign_now(
                    tenants.keys.of_route(&route).expose_secret(),
                    user.id,
                    "GET",
                    &path,
                ),
            )
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot fetch a site from its workspace");
                ApiError::Unavailable("your workspace")
            })?;
        match answer.status() {
            s if s.is_success() => {}
            reqwest::StatusCode::NOT_FOUND => {
                return Err(ApiError::NotFound(format!(
                    "Your workspace has no project {project}."
                )));
            }
            s => {
                tracing::warn!(status = %s, "the workspace refused the site's export");
                return Err(ApiError::Unavailable("your workspace"));
            }
        }
        let zip = answer.bytes().await.map_err(|e| {
            tracing::warn!(error = %e, "the site's export was cut off");
            ApiError::Unavailable("your workspace")
        })?;
        if zip.len() as u64 > limit.saturating_mul(2).saturating_add(1024 * 1024) {
            return Err(too_large(limit, room, self.config.max_bytes));
        }
        let build = self
            .storage
            .unpack(zip.to_vec(), limit)
            .await
            .map_err(|e| match e {
                storage::UnpackError::TooLarge(_) => too_large(limit, room, self.config.max_bytes),
                storage::UnpackError::Io(e) => ApiError::internal(e),
                storage::UnpackError::Store(e) => {
                    tracing::warn!(error = %e, "cannot write a site into its bucket");
                    ApiError::Unavailable("the sites' storage")
                }
                other => ApiError::BadRequest(format!("The site cannot be published: {other}.")),
            })?;
        let mut conn = self.db.get().await?;
        let pointed = store::point(
            &mut conn,
            name.as_str(),
            user.id,
            project,
            build.id,
            i64::try_from(build.bytes).unwrap_or(i64::MAX),
            i32::try_from(build.files).unwrap_or(i32::MAX),
        )
        .await;
        let old = match pointed {
            Ok(old) => old,
            Err(e) => {
                self.retire(build.id, Duration::ZERO);
                return Err(match e {
                    store::PointError::Taken => taken(name),
                    store::PointError::Db(e) => e.into(),
                });
            }
        };
        if let Some(old) = old {
            self.retire(old, self.config.retire_after);
        }
        let site = store::find(&mut conn, name.as_str())
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the site vanished")))?;
        tracing::info!(bytes = build.bytes, files = build.files, "published a site");
        Ok(self.view(site))
    }

    /// Takes `user`'s site `name` down; its files go a minute later (`retire_after`).
    #[tracing::instrument(skip_all, fields(%user, site = %name))]
    pub async fn unpublish(&self, user: UserId, name: &SiteName) -> Result<(), ApiError> {
        let mut conn = self.db.get().await?;
        match store::remove(&mut conn, name.as_str(), user).await? {
            Some(build) => {
                self.retire(build, self.config.retire_after);
                Ok(())
            }
            None => Err(ApiError::NotFound(format!(
                "You have no published site named \"{name}\"."
            ))),
        }
    }

    /// Removes a build's files after `delay`, in the background.
    fn retire(&self, build: Uuid, delay: Duration) {
        let storage = self.storage.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            storage.remove(build).await;
        });
    }

    fn queue_key(&self, user: UserId) -> String {
        self.kv.key(&format!("sites:views:{}", user.0))
    }

    /// Counts a page view in the owner's workspace analytics: relayed now when the
    /// workspace runs (with any views kept while it did not), else kept in Redis for later.
    /// Failures are logged: a view is a report, never a reason to fail a visitor.
    pub async fn count_view(&self, tenants: &Tenants, owner: UserId, view: View) {
        let mut pending = vec![view];
        let key = self.queue_key(owner);
        let slug = match self.db.get().await {
            Ok(mut conn) => crate::tenants::store::find_workspace(&mut conn, owner)
                .await
                .ok()
                .flatten()
                .map(|w| w.slug),
            Err(_) => None,
        };
        let route = match slug {
            Some(slug) => tenants.routing.route(&slug).await.ok().flatten(),
            None => None,
        };
        let Some(route) = route.filter(|r| r.user == owner) else {
            self.keep(&key, &pending).await;
            return;
        };
        let take = key.clone();
        let queued = self
            .kv
            .run(async move |c| {
                let (items,): (Vec<String>,) = redis::pipe()
                    .atomic()
                    .lrange(&take, 0, -1)
                    .del(&take)
                    .ignore()
                    .query_async(c)
                    .await?;
                Ok(items)
            })
            .await;
        if let Ok(queued) = queued {
            pending.extend(
                queued
                    .iter()
                    .filter_map(|raw| serde_json::from_str::<View>(raw).ok()),
            );
        }
        let mut undelivered = Vec::new();
        for view in pending {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("p", &view.project.hyphenated().to_string())
                .append_pair("path", &view.path)
                .append_pair("s", "site")
                .append_pair("r", view.referrer.as_deref().unwrap_or(""))
                .finish();
            let path = format!("/a.gif?{query}");
            let sent = self
                .client
                .get(format!("http://{}{path}", route.address))
                .header(
                    identity::HEADER,
                    identity::sign_now(
                        tenants.keys.of_route(&route).expose_secret(),
                        owner,
                        "GET",
                        &path,
                    ),
                )
                .header("x-forwarded-for", &view.client)
                .header(reqwest::header::USER_AGENT, &view.user_agent)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if !sent.is_ok_and(|r| r.status().is_success()) {
                undelivered.push(view);
            }
        }
        if !undelivered.is_empty() {
            self.keep(&key, &undelivered).await;
        }
    }

    async fn keep(&self, key: &str, views: &[View]) {
        let raw: Vec<String> = views
            .iter()
            .filter_map(|v| serde_json::to_string(v).ok())
            .collect();
        let key = key.to_owned();
        let kept = self
            .kv
            .run(async move |c| {
                redis::pipe()
                    .atomic()
                    .rpush(&key, raw)
                    .ignore()
                    .ltrim(&key, -MAX_QUEUED_VIEWS, -1)
                    .ignore()
                    .expire(&key, 7 * 24 * 3600)
                    .ignore()
                    .query_async::<()>(c)
                    .await
            })
            .await;
        if let Err(e) = kept {
            tracing::warn!(error = %e, "cannot keep a site's page view");
        }
    }
}

fn taken(name: &SiteName) -> ApiError {
    ApiError::Conflict(format!(
        "The name \"{name}\" is taken by another user; choose another name for your site."
    ))
}

fn too_large(limit: u64, room: u64, max: u64) -> ApiError {
    let mib = |b: u64| b as f64 / 1_048_576.0;
    if room <= max {
        ApiError::TooLarge(format!(
            "The site does not fit in your storage: {:.1} MiB are left. Remove files or sites, or ask for a larger access level.",
            mib(limit)
        ))
    } else {
        ApiError::TooLarge(format!(
            "The site is larger than the {:.1} MiB a site may be.",
            mib(max)
        ))
    }
}
