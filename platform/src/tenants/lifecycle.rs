//! The lifecycle of tenants: admission under the limits, stop, replacement at sign-in,
//! failure, and removal with the user; the spawn itself (volume, container, start,
//! readiness) is in [`super::spawn`]. Every state change is a row update in PostgreSQL and
//! an event on the user's progress channel.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use websplat_contract::UsageReport;

use super::identity;
use super::orchestrator::{Orchestrator, label, runtime};
use super::routing::Routing;
use super::store::{self, NewTenant, Slug, State, Tenant, TenantId, Workspace};
use super::warm;
use crate::auth::secret::random_token;
use crate::authz::access_levels::{self, AccessLevel};
use crate::config::{PublicUrl, TenantsConfig};
use crate::db;
use crate::error::ApiError;
use crate::kv::Kv;
use crate::metrics::Metrics;
use crate::pools;
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
    pub orchestrator: Arc<dyn Orchestrator>,
    pub(super) metrics: Metrics,
    /// The client that asks runtimes for their health and usage.
    pub(super) probe: reqwest::Client,
    /// The AI gateway's door as tenants reach it, set once the door listens; handed to
    /// each new runtime (`WEBSPLAT_GATEWAY_URL`).
    pub gateway_url: std::sync::OnceLock<String>,
    /// The access level new users get: what warm runtimes are made for.
    pub(super) new_user_level: String,
}

impl Tenants {
    pub fn new(
        config: TenantsConfig,
        public_url: PublicUrl,
        db: db::Pool,
        kv: Kv,
        orchestrator: Arc<dyn Orchestrator>,
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
            orchestrator,
            metrics,
            probe,
            gateway_url: std::sync::OnceLock::new(),
            new_user_level,
        }))
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
        let up = match trigger {
            Trigger::Demand => store::live_unlocked(&mut *self.db.get().await?, user).await?,
            Trigger::SignIn => None,
        };
        let admitted = match up {
            Some((workspace, tenant)) => Ok(Admitted::Existing { workspace, tenant }),
            None => self.admit(user, trigger).await,
        };
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

    /// One transaction under an advisory lock, so the counts hold across replicas.
    async fn admit(&self, user: UserId, trigger: Trigger) -> Result<Admitted, ApiError> {
        let mut conn = self.db.get().await?;
        let config = &self.config;
        let image = config.image.clone();
        conn.transaction(async |conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(72010002)")
                .execute(conn)
                .await?;
            let Some(account) = users::find(conn, user).await? else {
                return Err(ApiError::NotFound("there is no such user".to_owned()));
            };
            if account.is_disabled() {
                return Err(ApiError::Forbidden("this account is disabled".to_owned()));
            }
            let workspace = self.workspace(conn, &account).await?;
            let mut replaced = None;
            if let Some(live) = store::live(conn, user).await? {
                let fresh_login_replaces = trigger == Trigger::SignIn && live.state == State::Ready;
                if !fresh_login_replaces {
                    return Ok(Admitted::Existing {
                        workspace,
                        tenant: live,
                    });
                }
                if store::transition(conn, live.id, State::Stopping, Some("replaced by a new sign-in")).await? {
                    replaced = Some(Box::new(live));
                }
            }
            let level = access_levels::require(conn, &account.access_level).await?;
            let pool = pools::store::serving(conn, &level.name).await?;
            if pool.draining {
                return Err(ApiError::Draining(format!(
                    "No new workspaces start in the {} pool right now: the operators are draining it. Please try again later.",
                    pool.name
                )));
            }
            // A first sign-in takes a runtime already started for it, if the pool keeps one
            // of this spec: no container is made on its path.
            // (One whose key is gone — a claim that did not finish — is skipped and the
            // keeper removes it.)
            if store::latest(conn, user).await?.is_none()
                && let Some(taken) =
                    warm::take(conn, &pool.name, &level.name, &self.spec_hash(&level)).await?
                && let Ok(Some(claim_key)) = self.routing.take_claim_key(taken.id).await
            {
                    let secret = SecretString::from(websplat_contract::identity::claimed_secret(
                        claim_key.expose_secret().as_bytes(),
                        user.0,
                    ));
                    store::set_volume(conn, user, &taken.volume).await?;
                    let id = TenantId::new();
                    let tenant = store::insert(
                        conn,
                        NewTenant {
                            id,
                            user,
                            pool: &pool.name,
                            access_level: &level.name,
                            image: &taken.image,
                            container_name: &taken.container_name,
                            secret_hash: Some(
                                Sha256::digest(secret.expose_secret().as_bytes()).as_slice(),
                            ),
                        },
                    )
                    .await?;
                    if let Some(container) = &taken.container_id {
                        store::set_container(conn, id, container).await?;
                    }
                    if let Some(address) = &taken.address {
                        store::set_address(conn, id, address).await?;
                    }
                    let workspace = store::find_workspace(conn, user)
                        .await?
                        .unwrap_or(workspace);
                    return Ok(Admitted::New {
                        workspace,
                        tenant,
                        secret,
                        level: Box::new(level),
                        replaced,
                        claimed: Some(Box::new(warm::Claimed {
                            runtime: taken,
                            claim_key,
                        })),
                    });
            }
            let in_use = store::count(conn, &State::LIVE, Some(&pool.name)).await?
                + pools::store::figures(conn)
                    .await?
                    .into_iter()
                    .find(|(p, _)| *p == *pool.name)
                    .map_or(0, |(_, f)| f.warm);
            if in_use >= i64::from(pool.max_running) {
                let cap = pool.max_running;
                return Err(ApiError::AtCapacity(
                    if pool.name == pools::DEFAULT {
                        format!(
                            "The platform is already running as many workspaces as it may ({cap}). Please try again in a few minutes."
                        )
                    } else {
                        format!(
                            "Every workspace of the {} pool is in use ({cap} of {cap}). Please try again in a few minutes.",
                            pool.name
                        )
                    },
                    Duration::from_secs(60),
                ));
            }
            let starting = store::count(conn, &State::SPAWNING, Some(&pool.name)).await?;
            let waiting = store::count(conn, &[State::Queued], Some(&pool.name)).await?;
            let id = TenantId::new();
            let container_name = format!("websplat-{}-{}", config.deployment, id.0.simple());
            if starting >= i64::from(pool.max_starting) || waiting > 0 {
                if waiting >= i64::from(pool.queue_max) {
                    return Err(ApiError::AtCapacity(
                        format!(
                            "{waiting} people are already waiting for their workspace to start, as many as the queue holds. Please try again in a minute."
                        ),
                        Duration::from_secs(30),
                    ));
                }
                let tenant = store::insert(
                    conn,
                    NewTenant {
                        id,
                        user,
                        pool: &pool.name,
                        access_level: &level.name,
                        image: &image,
                        container_name: &container_name,
                        secret_hash: None,
                    },
                )
                .await?;
                return Ok(Admitted::Queued {
                    workspace,
                    tenant,
                    ahead: waiting,
                    replaced,
                });
            }
            let secret = SecretString::from(random_token(32));
            let tenant = store::insert(
                conn,
                NewTenant {
                    id,
                    user,
                    pool: &pool.name,
                    access_level: &level.name,
                    image: &image,
                    container_name: &container_name,
                    secret_hash: Some(Sha256::digest(secret.expose_secret().as_bytes()).as_slice()),
                },
            )
            .await?;
            Ok(Admitted::New {
                workspace,
                tenant,
                secret,
                level: Box::new(level),
                replaced,
                claimed: None,
            })
        })
        .await
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
            if let Err(e) = self.orchestrator.stop(&id, STOP_GRACE).await {
                tracing::warn!(error = %e, "cannot stop the container; removing it");
            }
            if let Err(e) = self.orchestrator.remove(&id).await {
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
                .and_then(|t| t.container_id),
            Err(_) => None,
        };
        if let Some(id) = container
            && let Err(e) = self.orchestrator.remove(&id).await
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
            && let Err(e) = self.orchestrator.remove(id).await
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
        let found = self
            .orchestrator
            .list(label::USER, &user.to_string())
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        for container in found {
            if container.labels.get(label::DEPLOYMENT) == Some(&self.config.deployment) {
                self.orchestrator
                    .remove(&container.id)
                    .await
                    .map_err(|e| ApiError::Internal(e.into()))?;
            }
        }
        if with_volume && let Some(workspace) = workspace {
            self.orchestrator
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
        let header = identity::sign_now(&route.secret, route.user, "GET", path);
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

enum Admitted {
    Existing {
        workspace: Workspace,
        tenant: Tenant,
    },
    /// Its pool starts as many as it may at once: waiting in the queue, `ahead` before it.
    Queued {
        workspace: Workspace,
        tenant: Tenant,
        ahead: i64,
        replaced: Option<Box<Tenant>>,
    },
    New {
        workspace: Workspace,
        tenant: Tenant,
        secret: SecretString,
        level: Box<AccessLevel>,
        replaced: Option<Box<Tenant>>,
        /// A warm runtime it claimed (a first sign-in), instead of a container to make.
        claimed: Option<Box<warm::Claimed>>,
    },
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
