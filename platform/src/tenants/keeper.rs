//! The background loops every replica runs for the tenants:
//! - the Docker events stream: a container that dies or is OOM-killed moves its tenant to
//!   `failed` with the reason (the next request starts a new one);
//! - the reconciler, at start-up and then periodically: lists this deployment's containers
//!   by label and makes PostgreSQL and Docker agree both ways — no container without a
//!   live row, no live row without its container (spawns in progress elsewhere, which hold
//!   a lease, are left alone);
//! - the idle reaper: stops workspaces without traffic for their access level's idle
//!   timeout, records each running workspace's storage use, as its runtime reports it, and
//!   renews the time to live of every ready workspace's route;
//! - the warm keeper, every two seconds: warm runtimes for first sign-ins
//!   ([`super::warm`]) and returning people's next containers ([`super::returning`]).
//!
//! The reconciler, the reaper and the warm keeper take a Redis lock per run, so one replica
//! does each run. The reconciler keeps a warm container while it has its row (the
//! keeper's), treats a taken one as its tenant's, and removes any other as an orphan.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::lifecycle::{Tenants, exit_reason};
use super::orchestrator::{EventKind, label};
use super::store::{self, PoolName, State, TenantId};

/// What one reconciler run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Containers removed because no live tenant owns them.
    pub orphans_removed: usize,
    /// Tenants marked failed or stopped because their container is gone.
    pub ghosts_ended: usize,
    /// Returning people's next containers forgotten because the engine no longer has them.
    pub next_forgotten: usize,
    /// Unclaimed warm runtimes forgotten because their container died or vanished.
    pub warm_forgotten: usize,
}

impl Tenants {
    /// Starts the loops; abort the handle to stop them.
    pub fn spawn_keeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let events = tokio::spawn(Arc::clone(&this).watch_events());
            let mut reconcile = tokio::time::interval(this.config.reconcile_interval);
            let mut idle = tokio::time::interval(this.config.idle_check_interval);
            let mut queue = tokio::time::interval(super::queue::TICK);
            let mut warm = tokio::time::interval(Duration::from_secs(2));
            warm.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            queue.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            idle.tick().await;
            let _guard = AbortOnDrop(events);
            loop {
                tokio::select! {
                    _ = reconcile.tick() => this.reconcile_once_locked().await,
                    _ = idle.tick() => this.reap_idle_locked().await,
                    _ = queue.tick() => this.dispatch_logged().await,
                    _ = warm.tick() => {
                        if let Err(e) = this.sync_drivers().await {
                            tracing::warn!(error = %e, "cannot read the pools' engines");
                        }
                        this.tend_warm_locked().await
                    }
                }
            }
        })
    }

    async fn watch_events(self: Arc<Self>) {
        let mut since = chrono::Utc::now().timestamp();
        loop {
            // One stream of every engine's events; resubscribed when the pools' engines
            // change.
            let generation = self.drivers.generation();
            let streams = self
                .drivers
                .all()
                .into_iter()
                .map(|driver| driver.events(label::DEPLOYMENT, &self.config.deployment, since));
            let mut stream = futures_util::stream::select_all(streams);
            let mut changed = tokio::time::interval(Duration::from_secs(2));
            changed.tick().await;
            // Everything that happened while not subscribed is caught by a reconcile.
            loop {
                tokio::select! {
                    event = stream.next() => match event {
                        Some(Ok(event)) => self.on_event(event).await,
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "a container event stream failed");
                            break;
                        }
                        None => break,
                    },
                    _ = changed.tick() => {
                        if self.drivers.generation() != generation {
                            break;
                        }
                    }
                }
            }
            since = chrono::Utc::now().timestamp() - 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.reconcile_once_locked().await;
        }
    }

    async fn on_event(&self, event: super::orchestrator::ContainerEvent) {
        let exit_code = match event.kind {
            EventKind::Died { exit_code } => exit_code,
            EventKind::MachineLost => None,
            // The die event that follows carries the OOM flag on inspection.
            EventKind::OutOfMemory => return,
        };
        let Ok(mut conn) = self.db().get().await else {
            return;
        };
        let Ok(Some(tenant)) = store::by_container(&mut conn, &event.container_id).await else {
            return;
        };
        drop(conn);
        if !matches!(tenant.state, State::Starting | State::Ready) {
            // Stopping on purpose, or already dealt with.
            return;
        }
        if event.kind == EventKind::MachineLost {
            self.fail(&tenant, "machine_lost", super::spawn::MACHINE_LOST)
                .await;
            return;
        }
        let oom = match self.driver(&tenant.pool).inspect(&event.container_id).await {
            Ok(Some(info)) => info.oom_killed,
            _ => false,
        };
        let kind = if oom { "oom" } else { "crashed" };
        let when = if tenant.state == State::Ready {
            "while running"
        } else {
            "while starting"
        };
        self.fail(&tenant, kind, &exit_reason(oom, exit_code, when))
            .await;
    }

    async fn reconcile_once_locked(&self) {
        let ttl = Duration::from_secs(30);
        match self.routing.try_lock("reconcile", ttl).await {
            Ok(true) => match self.reconcile().await {
                Ok(done) if done != Reconciled::default() => {
                    tracing::info!(?done, "reconciled tenants with the container engine");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot reconcile tenants"),
            },
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take the reconcile lock"),
        }
    }

    /// Makes PostgreSQL and the container engine agree, both ways.
    #[tracing::instrument(skip(self))]
    pub async fn reconcile(&self) -> anyhow::Result<Reconciled> {
        let mut done = Reconciled::default();
        // Every engine's containers, each with the driver that has it. The platform's own
        // engine not answering stops the run; a pool's swarm not answering leaves that
        // pool's tenants alone this time (they must not look vanished).
        let mut containers = self
            .orchestrator
            .list(label::DEPLOYMENT, &self.config.deployment)
            .await?;
        let mut drivers = HashMap::new();
        let mut unanswered: HashSet<String> = HashSet::new();
        for (pool, driver) in self.drivers.remote() {
            match driver
                .list(label::DEPLOYMENT, &self.config.deployment)
                .await
            {
                Ok(found) => {
                    for container in found {
                        drivers.insert(container.id.clone(), Arc::clone(&driver));
                        containers.push(container);
                    }
                }
                Err(e) => {
                    tracing::warn!(pool, error = %e, "the pool's swarm does not answer; its tenants wait for the next run");
                    unanswered.insert(pool);
                }
            }
        }
        let driver_of = |id: &str| {
            drivers
                .get(id)
                .cloned()
                .unwrap_or_else(|| self.drivers.local())
        };
        done.next_forgotten = self.forget_vanished_next(&containers).await?;
        done.warm_forgotten = self.forget_dead_warm(&containers).await?;
        let mut conn = self.db().get().await?;
        let mut seen: HashSet<TenantId> = HashSet::new();
        for container in &containers {
            let tenant_id = container
                .labels
                .get(label::TENANT)
                .and_then(|t| t.parse::<TenantId>().ok());
            let warm_id = container
                .labels
                .get(label::WARM)
                .and_then(|w| w.parse::<uuid::Uuid>().ok());
            let next_id = container
                .labels
                .get(label::RETURNING)
                .and_then(|w| w.parse::<uuid::Uuid>().ok());
            let row = match (tenant_id, warm_id) {
                (Some(id), _) => store::get(&mut conn, id).await?,
                // A warm runtime: the keeper's while unclaimed; once claimed, its tenant's.
                (None, Some(warm)) => {
                    if super::warm::find(&mut conn, warm).await?.is_some() {
                        continue;
                    }
                    store::by_container(&mut conn, &container.id).await?
                }
                // A returning person's next container: the keeper's while it has its row;
                // once taken, its tenant's.
                (None, None) => match next_id {
                    Some(next) => {
                        if super::returning::find(&mut conn, next).await?.is_some() {
                            continue;
                        }
                        store::by_container(&mut conn, &container.id).await?
                    }
                    None => None,
                },
            };
            let Some(row) = row else {
                driver_of(&container.id).remove(&container.id).await?;
                done.orphans_removed += 1;
                continue;
            };
            seen.insert(row.id);
            let state = row.state;
            if state.is_final() {
                driver_of(&container.id).remove(&container.id).await?;
                done.orphans_removed += 1;
                continue;
            }
            // A warm or made-ahead container is taken at admission, before its spawn holds
            // the lease: a young request is not an interrupted one.
            if just_requested(&row) || self.routing.lease_held(row.id).await? {
                continue;
            }
            match state {
                State::Requested | State::Creating | State::Starting => {
                    self.fail(
                        &row,
                        "interrupted",
                        "the platform stopped while it was starting",
                    )
                    .await;
                    driver_of(&container.id).remove(&container.id).await?;
                    done.orphans_removed += 1;
                }
                State::Stopping => {
                    if let Some(workspace) = store::find_workspace(&mut conn, row.user_id).await? {
                        self.finish_stop(&row, &workspace).await;
                    } else {
                        driver_of(&container.id).remove(&container.id).await?;
                    }
                    done.orphans_removed += 1;
                }
                State::Ready if container.machine_lost => {
                    self.fail(&row, "machine_lost", super::spawn::MACHINE_LOST)
                        .await;
                    done.ghosts_ended += 1;
                }
                State::Ready if !container.running => {
                    self.fail(
                        &row,
                        "crashed",
                        &exit_reason(false, container.exit_code, "while the platform was away"),
                    )
                    .await;
                    done.ghosts_ended += 1;
                }
                State::Ready => {
                    // Running; the proxy can reach it only while its route is in Redis.
                    let slug = store::find_workspace(&mut conn, row.user_id)
                        .await?
                        .map(|w| w.slug);
                    let routed = match slug {
                        Some(slug) => self
                            .routing
                            .route(&slug)
                            .await?
                            .is_some_and(|r| r.tenant == row.id),
                        None => false,
                    };
                    if !routed {
                        self.fail(&row, "lost", "the platform lost its route to it")
                            .await;
                        done.ghosts_ended += 1;
                    }
                }
                // A queued start has no container yet; one labelled with it is left
                // from a start given up, and goes.
                State::Queued => {
                    driver_of(&container.id).remove(&container.id).await?;
                    done.orphans_removed += 1;
                }
                State::Stopped | State::Failed => {}
            }
        }
        let unfinished = store::in_states(
            &mut conn,
            &[
                State::Requested,
                State::Creating,
                State::Starting,
                State::Ready,
                State::Stopping,
            ],
        )
        .await?;
        for row in unfinished {
            if seen.contains(&row.id)
                || unanswered.contains(&*row.pool)
                || self.routing.lease_held(row.id).await?
            {
                continue;
            }
            if just_requested(&row) {
                continue;
            }
            match row.state {
                State::Stopping => {
                    if store::transition(&mut conn, row.id, State::Stopped, None).await? {
                        self.publish(&row, State::Stopped, row.reason.as_deref())
                            .await;
                    }
                }
                State::Ready => self.fail(&row, "lost", "its container disappeared").await,
                _ => {
                    self.fail(
                        &row,
                        "interrupted",
                        "the platform stopped while it was starting",
                    )
                    .await
                }
            }
            done.ghosts_ended += 1;
        }
        Ok(done)
    }

    async fn tend_warm_locked(&self) {
        // Held while the run lasts (at most two minutes), so one replica tends at a time.
        match self
            .routing
            .try_lock("warm", Duration::from_secs(120))
            .await
        {
            Ok(true) => {
                self.refresh_image_digest().await;
                match self.tend_warm().await {
                    Ok((0, 0)) => {}
                    Ok((removed, made)) => {
                        tracing::info!(removed, made, "tended the warm runtimes");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot tend the warm runtimes"),
                }
                match self.tend_returning().await {
                    Ok((0, 0, 0)) => {}
                    Ok((removed, made, started)) => {
                        tracing::info!(removed, made, started, "tended the next containers");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot tend the next containers"),
                }
                if let Err(e) = self.routing.unlock("warm").await {
                    tracing::warn!(error = %e, "cannot let go of the warm lock");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take the warm lock"),
        }
    }

    async fn reap_idle_locked(&self) {
        let ttl = self.config.idle_check_interval.max(Duration::from_secs(5));
        match self.routing.try_lock("idle", ttl).await {
            Ok(true) => {
                if let Err(e) = self.reap_idle().await {
                    tracing::warn!(error = %e, "cannot look for idle workspaces");
                }
                if let Err(e) = self.renew_routes().await {
                    tracing::warn!(error = %e, "cannot renew the workspaces' routes");
                }
                if let Err(e) = self.collect_all_usage().await {
                    tracing::warn!(error = %e, "cannot collect workspace usage");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take the idle lock"),
        }
    }

    /// Stops ready workspaces whose last traffic is older than their pool's idle timeout
    /// (where it sets one) or else their access level's. Returns how many it stopped.
    pub async fn reap_idle(&self) -> anyhow::Result<usize> {
        let mut conn = self.db().get().await?;
        let ready = store::in_states(&mut conn, &[State::Ready]).await?;
        if ready.is_empty() {
            return Ok(0);
        }
        let timeouts: HashMap<String, i64> = store::idle_timeouts(&mut conn)
            .await?
            .into_iter()
            .map(|(name, seconds)| (name, i64::from(seconds)))
            .collect();
        let overrides: HashMap<PoolName, i64> = crate::pools::store::list(&mut conn)
            .await?
            .into_iter()
            .filter_map(|p| Some((p.name, i64::from(p.idle_timeout_seconds?))))
            .collect();
        drop(conn);
        let ids: Vec<TenantId> = ready.iter().map(|t| t.id).collect();
        let activity = self.routing.activity(&ids).await?;
        let now = chrono::Utc::now().timestamp();
        let mut stopped = 0;
        for (tenant, last) in ready.iter().zip(activity) {
            let Some(timeout) = overrides
                .get(&tenant.pool)
                .or_else(|| timeouts.get(&tenant.access_level))
                .copied()
            else {
                continue;
            };
            let since = tenant.ready_at.map_or(now, |t| t.timestamp());
            let last = last.unwrap_or(since).max(since);
            if now - last >= timeout {
                let reason = format!(
                    "idle for {}",
                    humantime::format_duration(Duration::from_secs(timeout.max(0) as u64))
                );
                if self.stop(tenant.user_id, &reason).await? {
                    stopped += 1;
                }
            }
        }
        Ok(stopped)
    }
}

impl Tenants {
    /// Gives the route of every ready tenant its full time to live again
    /// ([`super::routing::ROUTE_TTL`], far longer than the reaper's interval), so a route
    /// lives while its tenant runs and leaves Redis by itself once nothing renews it.
    /// Returns how many it renewed.
    #[tracing::instrument(skip(self))]
    pub async fn renew_routes(&self) -> anyhow::Result<usize> {
        let slugs = store::ready_slugs(&mut *self.db().get().await?).await?;
        self.routing.renew_routes(&slugs).await?;
        Ok(slugs.len())
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A tenant requested moments ago whose spawn may not hold its lease yet (the spawn runs
/// after admission commits): given its lease's life before it is called interrupted.
fn just_requested(row: &store::Tenant) -> bool {
    row.state == State::Requested
        && chrono::Utc::now() - row.updated_at < chrono::Duration::seconds(15)
}
