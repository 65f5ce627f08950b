//! The lifecycle of tenants: start, stop, replacement at sign-in, failure, and removal
//! with the user; the admission under the limits is in [`super::admission`], the spawn
//! itself (volume, container, start, readiness) in [`super::spawn`]. Every state change is a row update in PostgreSQL and
//! an event on the user's progress channel.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::AsyncPgConnection;
use serde::Serialize;
use utoipa::ToSchema;
use websplat_contract::UsageReport;

use super::admission::Admitted;
use super::driver::{Drivers, PoolEngine};
use super::identity;
use super::orchestrator::{Orchestrator, label, runtime};
use super::routing::Routing;
use super::store::{self, Slug, State, Tenant, TenantId, Workspace};
use crate::config::{PublicUrl, TenantsConfig};
use crate::db;
use crate::error::ApiError;
use crate::kv::Kv;
use crate::metrics::Metrics;
use crate::users::{self, UserId};

/// How long a stopping runtime gets to finish before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What `GET /api/v1/workspace` answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkspaceStatus {
    /// requested, creating, starting, ready, stopping, stopped or failed.
    #[schema(value_type = String, example = "ready")]
    pub state: State,
    /// Why it failed or stopped, in words.
    pub reason: Option<String>,
    /// The workspace origin.
    pub url: String,
    /// The current (or last) container's tenant id.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub tenant: Option<TenantId>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Storage, as the runtime last reported it (while it runs, and as it stops).
    pub usage: Option<Usage>,
    /// While queued: how many starts are ahead of it in its pool's queue.
    pub ahead: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Usage {
    pub used_bytes: i64,
    pub quota_bytes: i64,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Why a workspace is being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A sign-in: a fresh container, replacing one from an earlier login.
    SignIn,
    /// The user asked, or visited the workspace: start one unless one is up or on its way.
    Demand,
}

pub struct Tenants {
    pub config: TenantsConfig,
    public_url: PublicUrl,
    pub(super) db: db::Pool,
    pub routing: Routing,
    /// What every tenant's secret and claim key are derived from (never stored).
    pub keys: identity::TenantKeys,
    /// The platform's own engine (where the AI gateway's door listens).
    pub orchestrator: Arc<dyn Orchestrator>,
    /// The engine of each pool.
    pub drivers: Arc<Drivers>,
    pub(super) metrics: Metrics,
    /// The client that asks runtimes for their health and usage.
    pub(super) probe: reqwest::Client,
    /// The AI gateway's door as tenants reach it, set once the door listens; handed to
    /// each new runtime (`WEBSPLAT_GATEWAY_URL`).
    pub gateway_url: std::sync::OnceLock<String>,
    /// The access level new users get: what warm runtimes are made for.
    pub(super) new_user_level: String,
    /// The digest of the tenant image as the engine last named it (part of every warm
    /// container's spec hash), refreshed by the keeper.
    pub(super) image_digest: std::sync::RwLock<Option<String>>,
}

impl Tenants {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: TenantsConfig,
        public_url: PublicUrl,
        db: db::Pool,
        kv: Kv,
        keys: identity::TenantKeys,
        drivers: Arc<Drivers>,
        metrics: Metrics,
        new_user_level: String,
    ) -> anyhow::Result<Arc<Self>> {
        let probe = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(2))
            .build()?;
        Ok(Arc::new(Tenants {
            config,
            public_url,
            db,
            routing: Routing::new(kv),
            keys,
            orchestrator: drivers.local(),
            drivers,
            metrics,
            probe,
            gateway_url: std::sync::OnceLock::new(),
            new_user_level,
            image_digest: std::sync::RwLock::new(None),
        }))
    }

    /// Makes the drivers match the pools' engines (read fresh from PostgreSQL).
    pub async fn sync_drivers(&self) -> anyhow::Result<()> {
        let recorded = {
            let mut conn = self.db.get().await?;
            crate::pools::store::engines(&mut conn).await?
        };
        let engines: Vec<PoolEngine<'_>> = recorded
            .iter()
            .map(|(pool, engine, endpoint)| PoolEngine {
                pool,
                engine,
                endpoint: endpoint.as_deref(),
            })
            .collect();
        self.drivers.sync(&engines).await;
        Ok(())
    }

    /// The driver of a tenant's pool.
    pub fn driver(&self, pool: &str) -> Arc<dyn Orchestrator> {
        self.drivers.for_pool(pool)
    }

    /// The origin of a workspace: `{scheme}://{slug}.{domain}[:port]`, on the platform's
    /// scheme and port.
    pub fn origin_of(&self, slug: &str) -> String {
        let url = self.public_url.url();
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{slug}.{}{port}",
            url.scheme(),
            self.config.workspace_domain
        )
    }

    /// The workspace slug a `Host` header names, if it is a workspace origin.
    pub fn slug_of_host(&self, host: &str) -> Option<Slug> {
        slug_of_host(&self.config.workspace_domain, host)
    }

    pub async fn workspace(
        &self,
        conn: &mut AsyncPgConnection,
        user: &users::User,
    ) -> Result<Workspace, ApiError> {
        let hint = user.email.as_deref().unwrap_or(&user.display_name);
        Ok(store::workspace(conn, user.id, hint, &self.config.deployment).await?)
    }

    pub async fn status(&self, user: &users::User) -> Result<WorkspaceStatus, ApiError> {
        let mut conn = self.db.get().await?;
        let workspace = self.workspace(&mut conn, user).await?;
        let latest = store::latest(&mut conn, user.id).await?;
        let mut status = self.status_of(&workspace, latest.as_ref());
        if let Some(tenant) = latest.as_ref().filter(|t| t.state == State::Queued) {
            status.ahead = Some(store::ahead_of(&mut conn, tenant).await?);
        }
        Ok(status)
    }

    fn status_of(&self, workspace: &Workspace, tenant: Option<&Tenant>) -> WorkspaceStatus {
        WorkspaceStatus {
            state: tenant.map_or(State::Stopped, |t| t.state),
            reason: tenant.and_then(|t| t.reason.clone()),
            url: self.origin_of(&workspace.slug),
            tenant: tenant.map(|t| t.id),
            since: tenant.map(|t| t.updated_at),
            usage: match (
                workspace.used_bytes,
                workspace.quota_bytes,
                workspace.usage_at,
            ) {
                (Some(used_bytes), Some(quota_bytes), Some(at)) => Some(Usage {
                    used_bytes,
                    quota_bytes,
                    at,
                }),
                _ => None,
            },
            ahead: None,
        }
    }

    /// Starts the user's workspace (see [`Trigger`]); returns its status. The spawn goes on
    /// in the background; progress is published on the user's channel.
    pub async fn start(
        self: &Arc<Self>,
        user: UserId,
        trigger: Trigger,
    ) -> Result<WorkspaceStatus, ApiError> {
        let asked = std::time::Instant::now();
        let up = match trigger {
            Trigger::Demand => store::live_unlocked(&mut *self.db.get().await?, user).await?,
            Trigger::SignIn => None,
        };
        let admitted = match up {
            Some((workspace, tenant)) => Ok(Admitted::Existing { workspace, tenant }),
            None => self.admit(user, trigger).await,
        };
        let kind = match &admitted {
            Ok(Admitted::New { claimed, .. }) => claimed
                .as_ref()
                .map_or(super::warm::StartKind::Cold, |c| c.kind),
            _ => super::warm::StartKind::Cold,
        };
        self.metrics
            .start_step(kind.as_str(), "admission", asked.elapsed());
        match admitted {
            Err(e) => {
                if let ApiError::AtCapacity(..) = e {
                    self.metrics.tenant_failed("at_capacity");
                }
                Err(e)
            }
            Ok(Admitted::Existing { workspace, tenant }) => {
                let mut status = self.status_of(&workspace, Some(&tenant));
                if tenant.state == State::Queued {
                    let mut conn = self.db.get().await?;
                    status.ahead = Some(store::ahead_of(&mut conn, &tenant).await?);
                }
                Ok(status)
            }
            Ok(Admitted::Queued {
                workspace,
                tenant,
                ahead,
                replaced,
            }) => {
                let mut status = self.status_of(&workspace, Some(&tenant));
                status.ahead = Some(ahead);
                self.publish(&tenant, State::Queued, None).await;
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    if let Some(old) = replaced {
                        this.finish_stop(&old, &workspace).await;
                    }
                    // Room may have come free since the admission looked.
                    this.dispatch_logged().await;
                });
                Ok(status)
            }
            Ok(Admitted::New {
                workspace,
                tenant,
                secret,
                level,
                replaced,
                claimed,
            }) => {
                let status = self.status_of(&workspace, Some(&tenant));
                self.publish(&tenant, State::Requested, None).await;
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    if let Some(old) = replaced {
                        this.finish_stop(&old, &workspace).await;
                    }
                    this.spawn(tenant, workspace, *level, secret, claimed).await;
                });
                Ok(status)
            }
        }
    }

    /// Starts a fresh workspace at sign-in, if so configured; a refusal (at capacity) is
    /// logged: the dashboard shows the workspace stopped, and starting it
    /// there says why.
    /// Only the admission (one short transaction) is awaited, so the page the browser
    /// lands on already sees the new tenant; the spawn goes on in the background.
    pub async fn start_after_sign_in(self: &Arc<Self>, user: UserId) {
        if !self.config.start_on_sign_in {
            return;
        }
        if let Err(e) = self.start(user, Trigger::SignIn).await {
            tracing::warn!(%user, error = %e, "workspace not started at sign-in");
        }
    }

    /// Stops the user's workspace (its container is removed; the volume stays). Returns
    /// whether there was one to stop.
    pub async fn stop(&self, user: UserId, reason: &str) -> Result<bool, ApiError> {
        let mut conn = self.db.get().await?;
        let Some(live) = store::live(&mut conn, user).await? else {
            return Ok(false);
        };
        let workspace = store::find_workspace(&mut conn, user).await?;
        if !store::transition(&mut conn, live.id, State::Stopping, Some(reason)).await? {
            return Ok(false);
        }
        drop(conn);
        self.publish(&live, State::Stopping, Some(reason)).await;
        if let Some(workspace) = workspace {
            self.finish_stop(&live, &workspace).await;
        }
        // Their next container, made now (off any sign-in's path), if their pool says so.
        if let Err(e) = self.prepare_next(user).await {
            tracing::warn!(%user, error = %e, "cannot make the next container ahead");
        }
        Ok(true)
    }

    /// Stops in the background (sign-out must not wait for Docker).
    pub fn stop_in_background(self: &Arc<Self>, user: UserId, reason: &'static str) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = this.stop(user, reason).await {
                tracing::warn!(%user, error = %e, "workspace not stopped");
            }
        });
    }

    /// The rest of a stop, once the tenant is `stopping`: route gone, container stopped and
    /// removed, row `stopped`.
    #[tracing::instrument(skip_all, fields(tenant = %tenant.id))]
    pub(crate) async fn finish_stop(&self, tenant: &Tenant, workspace: &Workspace) {
        // The last word on its storage, while it can still be asked.
        self.collect_usage(workspace).await;
        if let Err(e) = self.routing.drop_route(&workspace.slug, tenant.id).await {
            tracing::warn!(error = %e, "cannot drop the route");
        }
        let container = match self.db.get().await {
            Ok(mut conn) => store::get(&mut conn, tenant.id)
                .await
                .ok()
                .flatten()
                .and_then(|t| t.container_id),
            Err(_) => tenant.container_id.clone(),
        };
        if let Some(id) = container {
            let driver = self.driver(&tenant.pool);
            if let Err(e) = driver.stop(&id, STOP_GRACE).await {
                tracing::warn!(error = %e, "cannot stop the container; removing it");
            }
            if let Err(e) = driver.remove(&id).await {
                tracing::warn!(error = %e, "cannot remove the container");
            }
        }
        if let Ok(mut conn) = self.db.get().await
            && store::transition(&mut conn, tenant.id, State::Stopped, None)
                .await
                .unwrap_or(false)
        {
            let reason = store::get(&mut conn, tenant.id)
                .await
                .ok()
                .flatten()
                .and_then(|t| t.reason);
            self.publish(tenant, State::Stopped, reason.as_deref())
                .await;
        }
    }

    /// Removes the tenant's container, if it has one.
    pub(crate) async fn remove_container_of(&self, tenant: TenantId) {
        let container = match self.db.get().await {
            Ok(mut conn) => store::get(&mut conn, tenant)
                .await
                .ok()
                .flatten()
                .and_then(|t| Some((t.container_id?, t.pool))),
            Err(_) => None,
        };
        if let Some((id, pool)) = container
            && let Err(e) = self.driver(&pool).remove(&id).await
        {
            tracing::warn!(%tenant, error = %e, "cannot remove the container");
        }
    }

    /// Marks a tenant failed (crash, OOM, lost), drops its route and removes its container.
    pub(crate) async fn fail(&self, tenant: &Tenant, kind: &'static str, reason: &str) {
        let moved = match self.db.get().await {
            Ok(mut conn) => store::transition(&mut conn, tenant.id, State::Failed, Some(reason))
                .await
                .unwrap_or(false),
            Err(_) => false,
        };
        if !moved {
            return;
        }
        self.metrics.tenant_failed(kind);
        tracing::warn!(tenant = %tenant.id, user = %tenant.user_id, kind, reason, "workspace failed");
        if let Ok(mut conn) = self.db.get().await
            && let Ok(Some(workspace)) = store::find_workspace(&mut conn, tenant.user_id).await
        {
            let _ = self.routing.drop_route(&workspace.slug, tenant.id).await;
        }
        if let Some(id) = &tenant.container_id
            && let Err(e) = self.driver(&tenant.pool).remove(id).await
        {
            tracing::warn!(error = %e, "cannot remove the failed container");
        }
        self.publish(tenant, State::Failed, Some(reason)).await;
    }

    /// Removes everything a deleted user had in the orchestrator: their containers, and
    /// their volume when `with_volume`. (Their rows went with the user.)
    pub async fn remove_user(
        &self,
        user: UserId,
        workspace: Option<&Workspace>,
        with_volume: bool,
    ) -> Result<(), ApiError> {
        if let Some(workspace) = workspace {
            let key_route = self.routing.route(&workspace.slug).await?;
            if let Some(route) = key_route.filter(|r| r.user == user) {
                self.routing
                    .drop_route(&workspace.slug, route.tenant)
                    .await?;
            }
        }
        for driver in self.drivers.all() {
            let found = driver
                .list(label::USER, &user.to_string())
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
            for container in found {
                if container.labels.get(label::DEPLOYMENT) == Some(&self.config.deployment) {
                    driver
                        .remove(&container.id)
                        .await
                        .map_err(|e| ApiError::Internal(e.into()))?;
                }
            }
        }
        if with_volume && let Some(workspace) = workspace {
            // The volume is where the workspace's pool keeps it: on the platform's own
            // engine, or on the swarm node it is pinned to.
            let pool = match self.db.get().await {
                Ok(mut conn) => store::latest(&mut conn, user)
                    .await
                    .ok()
                    .flatten()
                    .map(|t| t.pool.to_string()),
                Err(_) => None,
            };
            let driver = pool.map_or_else(|| self.drivers.local(), |p| self.driver(&p));
            driver
                .remove_volume(&workspace.volume)
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
        }
        Ok(())
    }

    /// Asks a running workspace's runtime for its storage use and records it. Failures are
    /// logged: usage is a report, never a reason to refuse anything.
    pub(crate) async fn collect_usage(&self, workspace: &Workspace) {
        let route = match self.routing.route(&workspace.slug).await {
            Ok(Some(route)) if route.user == workspace.user_id => route,
            _ => return,
        };
        let path = runtime::USAGE_PATH;
        let header = identity::sign_route(&self.keys, &route, "GET", path);
        let answer = self
            .probe
            .get(format!("http://{}{path}", route.address))
            .header(identity::HEADER, header)
            .send()
            .await;
        let usage: UsageReport = match answer {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(v) => v,
                Err(_) => return,
            },
            Ok(r) => {
                tracing::warn!(status = %r.status(), tenant = %route.tenant, "the runtime refused its usage");
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, tenant = %route.tenant, "no usage from the runtime");
                return;
            }
        };
        let used = i64::try_from(usage.used_bytes).unwrap_or(i64::MAX);
        let quota = i64::try_from(usage.quota_bytes).unwrap_or(i64::MAX);
        if let Ok(mut conn) = self.db.get().await
            && let Err(e) =
                store::set_usage(&mut conn, workspace.user_id, used.max(0), quota.max(0)).await
        {
            tracing::warn!(error = %e, "cannot record workspace usage");
        }
    }

    /// Collects the usage of every running workspace.
    pub async fn collect_all_usage(&self) -> anyhow::Result<usize> {
        let workspaces = {
            let mut conn = self.db.get().await?;
            store::running_workspaces(&mut conn).await?
        };
        for workspace in &workspaces {
            self.collect_usage(workspace).await;
        }
        Ok(workspaces.len())
    }

    pub(crate) async fn publish(&self, tenant: &Tenant, state: State, reason: Option<&str>) {
        let event = serde_json::json!({
            "tenant": tenant.id,
            "state": state,
            "reason": reason,
        });
        if let Err(e) = self.routing.publish(tenant.user_id, &event).await {
            tracing::warn!(error = %e, "cannot publish workspace progress");
        }
    }

    /// Tenants per state, for the metrics.
    pub async fn census(&self) -> anyhow::Result<Vec<(State, i64)>> {
        let mut conn = self.db.get().await?;
        Ok(store::census(&mut conn).await?)
    }

    pub(crate) fn db(&self) -> &db::Pool {
        &self.db
    }
}

/// The slug of `{slug}.{domain}[:port]`: one host label that parses as a [`Slug`];
/// anything else (the platform's own host, deeper names) is not a workspace.
pub fn slug_of_host(domain: &str, host: &str) -> Option<Slug> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    Slug::parse(name.strip_suffix(domain)?.strip_suffix('.')?).ok()
}

/// Why a container stopped, in words.
pub(crate) fn exit_reason(oom: bool, code: Option<i64>, when: &str) -> String {
    if oom {
        return format!("it ran out of memory {when} (the access level's memory limit)");
    }
    match code {
        Some(137) => format!("it was killed {when} (exit code 137)"),
        Some(code) => format!("it stopped unexpectedly {when} (exit code {code})"),
        None => format!("it stopped unexpectedly {when}"),
    }
}

#[cfg(test)]
mod tests {
    use super::slug_of_host;

    #[test]
    fn only_one_label_under_the_workspace_domain_is_a_workspace() {
        let d = "ws.localhost";
        let slug = |host| slug_of_host(d, host).map(String::from);
        assert_eq!(
            slug("alice-1a2b.ws.localhost:8080").as_deref(),
            Some("alice-1a2b")
        );
        assert_eq!(
            slug("alice-1a2b.ws.localhost").as_deref(),
            Some("alice-1a2b")
        );
        for not in [
            "localhost:8080",
            "ws.localhost:8080",
            ".ws.localhost",
            "a.b.ws.localhost",
            "evil.com",
            "alice.ws.localhost.evil.com",
            "alicews.localhost",
            "al_ice.ws.localhost",
            "Alice.ws.localhost",
            "alice.ws.localhost:",
            "-alice.ws.localhost",
        ] {
            assert_eq!(slug(not), None, "{not}");
        }
    }
}
