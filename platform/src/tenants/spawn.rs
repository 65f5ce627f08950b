//! The spawn of one admitted tenant: its volume, its container (sized by the access
//! level), the start, and the wait until its runtime answers its health check; then its
//! route. A failure is recorded in words, with its kind for the metrics, and what was made
//! is removed. Runs in the background, holding a lease that tells the reconciler to keep
//! out; it must never run for a tenant it did not admit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::identity;
use super::lifecycle::{Tenants, exit_reason};
use super::orchestrator::{ContainerSpec, Limits, OrchestratorError, label, runtime};
use super::routing::Route;
use super::store::{self, State, Tenant, Workspace};
use super::warm::{Claimed, StartKind};
use crate::authz::access_levels::{self, AccessLevel};
use crate::db;
use crate::error::ApiError;

/// How long a spawn lease lives without renewal; a spawner renews it every third of that.
const LEASE_TTL: Duration = Duration::from_secs(15);

/// What a user is told when the machine holding their workspace is down or drained.
pub const MACHINE_UNAVAILABLE: &str =
    "your workspace's machine is unavailable; an operator has been alerted";

/// Why a workspace ended when its machine stopped answering.
pub const MACHINE_LOST: &str = "the machine it ran on stopped answering; its data stays on that machine and it can start again when the machine is back";

/// How long the readiness poll waits between probes of a starting runtime.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// A spawn that did not make it, with a reason for people and one for metrics.
#[derive(Debug)]
struct Failure {
    kind: &'static str,
    message: String,
}

impl Failure {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl Tenants {
    /// Brings a requested tenant up; on failure records why and cleans up.
    #[tracing::instrument(skip_all, fields(tenant = %tenant.id, user = %tenant.user_id))]
    pub(super) async fn spawn(
        self: Arc<Self>,
        tenant: Tenant,
        workspace: Workspace,
        level: AccessLevel,
        secret: SecretString,
        claimed: Option<Box<Claimed>>,
    ) {
        let started = Instant::now();
        if let Err(e) = self.routing.hold_lease(tenant.id, LEASE_TTL).await {
            tracing::warn!(error = %e, "cannot take the spawn lease");
        }
        let lease = {
            let this = Arc::clone(&self);
            let id = tenant.id;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEASE_TTL / 3).await;
                    if let Err(e) = this.routing.hold_lease(id, LEASE_TTL).await {
                        tracing::warn!(error = %e, "cannot renew the spawn lease");
                    }
                }
            })
        };
        let outcome = match &claimed {
            Some(claimed) => {
                self.bring_up_claimed(&tenant, &workspace, claimed, secret.expose_secret())
                    .await
            }
            None => {
                self.bring_up(&tenant, &workspace, &level, secret.expose_secret())
                    .await
            }
        };
        lease.abort();
        let elapsed = started.elapsed();
        match outcome {
            Ok(address) => {
                self.metrics.tenant_spawned("ready", elapsed);
                tracing::info!(%address, seconds = elapsed.as_secs_f64(), "workspace ready");
            }
            Err(failure) => {
                self.metrics.tenant_spawned(failure.kind, elapsed);
                let cancelled = failure.kind == "cancelled";
                if !cancelled {
                    self.metrics.tenant_failed(failure.kind);
                    tracing::warn!(reason = %failure.message, kind = failure.kind, "workspace failed to start");
                }
                let _ = self.routing.drop_route(&workspace.slug, tenant.id).await;
                // Recorded before the container goes, so the death its removal causes is
                // not taken for a crash of a starting runtime.
                let (to, reason) = if cancelled {
                    (State::Stopped, None)
                } else {
                    (State::Failed, Some(failure.message.as_str()))
                };
                let moved = match self.db.get().await {
                    Ok(mut conn) => store::transition(&mut conn, tenant.id, to, reason)
                        .await
                        .unwrap_or(false),
                    Err(_) => false,
                };
                self.remove_container_of(tenant.id).await;
                if moved {
                    self.publish(&tenant, to, reason).await;
                }
            }
        }
        let _ = self.routing.release_lease(tenant.id).await;
        // A place in the pool is free: the next queued start may go.
        self.dispatch_soon();
    }

    async fn bring_up(
        &self,
        tenant: &Tenant,
        workspace: &Workspace,
        level: &AccessLevel,
        secret: &str,
    ) -> Result<SocketAddr, Failure> {
        let labels = HashMap::from([
            (label::TENANT.to_owned(), tenant.id.to_string()),
            (label::USER.to_owned(), tenant.user_id.to_string()),
            (label::POOL.to_owned(), tenant.pool.to_string()),
            (
                label::VERSION.to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            ),
            (label::DEPLOYMENT.to_owned(), self.config.deployment.clone()),
        ]);
        let volume_labels = HashMap::from([
            (label::USER.to_owned(), tenant.user_id.to_string()),
            (label::DEPLOYMENT.to_owned(), self.config.deployment.clone()),
        ]);
        // A pool's engine changed moments ago is in force for this start.
        if let Err(e) = self.sync_drivers().await {
            tracing::warn!(error = %e, "cannot read the pools' engines");
        }
        let driver = self.driver(&tenant.pool);
        // The row moves while the engine works: neither waits for the other.
        let (moved, node) = tokio::join!(
            self.advance(tenant, State::Creating),
            self.place(tenant, workspace)
        );
        moved?;
        let node = node?;
        let volume = driver
            .ensure_volume(&workspace.volume, &volume_labels)
            .await;
        volume.map_err(|e| {
            Failure::new(
                "volume",
                format!("its data volume could not be prepared: {e}"),
            )
        })?;
        // Checked when the level was saved; refused here too, never replaced by a default.
        let unusable = |e: ApiError| {
            Failure::new(
                "limits",
                format!("its access level's limits cannot be applied: {e}"),
            )
        };
        let cpu_millicores = access_levels::cpu_limit(level.cpu_millicores).map_err(unusable)?;
        let memory_bytes = access_levels::memory_limit_bytes(level.memory_mib).map_err(unusable)?;
        let spec = ContainerSpec {
            name: tenant.container_name.clone(),
            image: tenant.image.clone(),
            env: [
                (runtime::env::TENANT_SECRET.to_owned(), secret.to_owned()),
                (
                    runtime::env::TENANT_USER.to_owned(),
                    tenant.user_id.to_string(),
                ),
            ]
            .into_iter()
            .chain(self.sized_env(level))
            .collect(),
            labels,
            volume: workspace.volume.clone(),
            limits: Limits {
                cpu_millicores,
                memory_bytes,
                pids: self.config.pids_limit,
                tmp_bytes: u64::from(self.config.tmp_mib) * 1024 * 1024,
            },
            port: runtime::PORT,
            node,
        };
        let creating = Instant::now();
        let container = driver.create(&spec).await.map_err(|e| {
            let hint = match e {
                OrchestratorError::ImageMissing(_) => format!(
                    " (build it with docker/build-tenant-image.sh; WEBSPLAT_TENANT_IMAGE is {})",
                    tenant.image
                ),
                _ => String::new(),
            };
            Failure::new(
                "create",
                format!("its container could not be created: {e}{hint}"),
            )
        })?;
        store::set_container(&mut *self.conn().await?, tenant.id, &container)
            .await
            .map_err(refused)?;
        let kind = StartKind::Cold.as_str();
        self.metrics.start_step(kind, "create", creating.elapsed());
        let started = Instant::now();
        let (moved, address) = tokio::join!(
            self.advance(tenant, State::Starting),
            self.start_container(tenant, &container)
        );
        moved?;
        let address = address?;
        self.metrics.start_step(kind, "start", started.elapsed());
        let healthy = Instant::now();
        self.wait_ready(tenant, &container, address, secret).await?;
        self.metrics.start_step(kind, "healthy", healthy.elapsed());
        self.route(tenant, workspace, address).await?;
        Ok(address)
    }

    /// Brings up a tenant on a warm container it took: no volume or container to make. One
    /// made ahead and never started is started first; then the claim, one health check
    /// with the new secret, the route.
    async fn bring_up_claimed(
        &self,
        tenant: &Tenant,
        workspace: &Workspace,
        claimed: &Claimed,
        secret: &str,
    ) -> Result<SocketAddr, Failure> {
        let kind = claimed.kind.as_str();
        let container = &claimed.container;
        // The row moves through its states while the container is started and claimed.
        let moved = async {
            self.advance(tenant, State::Creating).await?;
            self.advance(tenant, State::Starting).await
        };
        let claimed_at = async {
            let address: SocketAddr = match claimed.kind {
                StartKind::ReturningMade => {
                    let started = Instant::now();
                    let address = self.start_container(tenant, container).await?;
                    self.metrics.start_step(kind, "start", started.elapsed());
                    address
                }
                _ => claimed
                    .address
                    .as_deref()
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| Failure::new("claim", "its warm runtime had no address"))?,
            };
            let claiming = Instant::now();
            self.claim(
                claimed,
                address,
                tenant.user_id,
                claimed.kind == StartKind::ReturningMade,
            )
            .instrument(tracing::info_span!("claim"))
            .await
            .map_err(|m| Failure::new("claim", m))?;
            self.metrics.start_step(kind, "claim", claiming.elapsed());
            Ok::<_, Failure>(address)
        };
        let (moved, address) = tokio::join!(moved, claimed_at);
        moved?;
        let address = address?;
        let healthy = Instant::now();
        self.wait_ready(tenant, container, address, secret).await?;
        self.metrics.start_step(kind, "healthy", healthy.elapsed());
        self.route(tenant, workspace, address).await?;
        Ok(address)
    }

    /// Starts a made container and records where it answers.
    #[tracing::instrument(skip_all)]
    async fn start_container(
        &self,
        tenant: &Tenant,
        container: &str,
    ) -> Result<SocketAddr, Failure> {
        let driver = self.driver(&tenant.pool);
        driver
            .start(container)
            .await
            .map_err(|e| Failure::new("start", format!("its container could not start: {e}")))?;
        let info = driver
            .inspect(container)
            .await
            .map_err(|e| {
                Failure::new(
                    "start",
                    format!("its container could not be inspected: {e}"),
                )
            })?
            .ok_or_else(|| Failure::new("start", "its container vanished as it started"))?;
        let address = info.address.ok_or_else(|| {
            Failure::new(
                "start",
                "its container has no address on the tenant network",
            )
        })?;
        store::set_address(&mut *self.conn().await?, tenant.id, &address.to_string())
            .await
            .map_err(refused)?;
        Ok(address)
    }

    /// Stores the route of a runtime that answered and marks its tenant ready.
    async fn route(
        &self,
        tenant: &Tenant,
        workspace: &Workspace,
        address: SocketAddr,
    ) -> Result<(), Failure> {
        let route = Route {
            tenant: tenant.id,
            user: tenant.user_id,
            address: address.to_string(),
        };
        self.routing
            .put_route(&workspace.slug, &route)
            .await
            .map_err(|e| Failure::new("route", format!("its route could not be stored: {e}")))?;
        if let Err(failure) = self.advance(tenant, State::Ready).await {
            let _ = self.routing.drop_route(&workspace.slug, tenant.id).await;
            return Err(failure);
        }
        Ok(())
    }

    /// Polls the runtime's `/healthz` (signed) until it answers or the time is up.
    #[tracing::instrument(skip_all, name = "first_healthy_answer")]
    async fn wait_ready(
        &self,
        tenant: &Tenant,
        container: &str,
        address: SocketAddr,
        secret: &str,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + self.config.ready_timeout;
        let url = format!("http://{address}{}", runtime::HEALTH_PATH);
        let mut attempts = 0u32;
        loop {
            let header = identity::sign_now(secret, tenant.user_id, "GET", runtime::HEALTH_PATH);
            let answer = self
                .probe
                .get(&url)
                .header(identity::HEADER, header)
                .send()
                .await;
            if let Ok(r) = answer
                && r.status().is_success()
            {
                return Ok(());
            }
            attempts += 1;
            // The engine is asked about the container about twice a second, not per probe.
            if attempts.is_multiple_of(50) {
                match self.driver(&tenant.pool).inspect(container).await {
                    Ok(Some(info)) if info.machine_lost => {
                        return Err(Failure::new("machine_lost", MACHINE_LOST));
                    }
                    Ok(Some(info)) if !info.running => {
                        return Err(Failure::new(
                            if info.oom_killed { "oom" } else { "crashed" },
                            exit_reason(info.oom_killed, info.exit_code, "while starting"),
                        ));
                    }
                    Ok(None) => {
                        return Err(Failure::new(
                            "crashed",
                            "its container vanished while starting",
                        ));
                    }
                    _ => {}
                }
                self.still(tenant, State::Starting).await?;
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(
                    "timeout",
                    format!(
                        "it did not become ready within {} seconds",
                        self.config.ready_timeout.as_secs()
                    ),
                ));
            }
            // A runtime answers ~300 ms after its start: a short poll keeps that off the path.
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// The machine a tenant runs on, on an engine of several: the one holding its user's
    /// volume (recorded with the workspace), or for a new one the engine's choice, recorded
    /// before anything is made there. A pinned machine that is down is never replaced by
    /// another on an empty volume: the user is told, and operators are alerted.
    async fn place(
        &self,
        tenant: &Tenant,
        workspace: &Workspace,
    ) -> Result<Option<String>, Failure> {
        if workspace
            .node
            .as_deref()
            .is_some_and(super::moving::is_moving)
        {
            return Err(Failure::new(
                "moving",
                "your workspace is being moved to another machine; please try again in a few minutes",
            ));
        }
        let driver = self.driver(&tenant.pool);
        let chosen = driver.place(workspace.node.as_deref()).await;
        match chosen {
            Ok(None) => Ok(None),
            Ok(Some(node)) if workspace.node.as_deref() == Some(node.as_str()) => Ok(Some(node)),
            Ok(Some(node)) => {
                let pinned = store::pin_workspace(&mut *self.conn().await?, tenant.user_id, &node)
                    .await
                    .map_err(refused)?;
                Ok(pinned.or(Some(node)))
            }
            Err(OrchestratorError::MachineUnavailable(why)) => {
                self.metrics.machine_unavailable(&tenant.pool);
                tracing::error!(
                    pool = %tenant.pool,
                    node = ?workspace.node,
                    why = %why,
                    "a workspace's machine is unavailable: its user cannot start it until the machine is back or an operator moves it"
                );
                Err(Failure::new("machine_unavailable", MACHINE_UNAVAILABLE))
            }
            Err(e) => Err(Failure::new(
                "placement",
                format!("no machine could be chosen for it: {e}"),
            )),
        }
    }

    /// Moves a spawning tenant one step; a tenant stopped meanwhile cancels the spawn.
    async fn advance(&self, tenant: &Tenant, to: State) -> Result<(), Failure> {
        let mut conn = self.conn().await?;
        let moved = store::transition(&mut conn, tenant.id, to, None)
            .await
            .map_err(refused)?;
        if !moved {
            return Err(Failure::new("cancelled", "stopped while starting"));
        }
        drop(conn);
        self.publish(tenant, to, None).await;
        Ok(())
    }

    async fn still(&self, tenant: &Tenant, state: State) -> Result<(), Failure> {
        let mut conn = self.conn().await?;
        match store::get(&mut conn, tenant.id).await {
            Ok(Some(t)) if t.state == state => Ok(()),
            _ => Err(Failure::new("cancelled", "stopped while starting")),
        }
    }

    async fn conn(&self) -> Result<db::Conn, Failure> {
        self.db
            .get()
            .await
            .map_err(|e| Failure::new("database", format!("the database is unavailable: {e}")))
    }
}

fn refused(e: diesel::result::Error) -> Failure {
    Failure::new("database", format!("the database refused: {e}"))
}
