//! The start queue: a start beyond its pool's concurrency is a `queued` row of `tenants`
//! (durable, shared by every replica, first come first served per pool). Any replica moves
//! the queue — after each spawn it ends, after each stop, and every second — taking the
//! oldest queued start of each pool that has room under the admission lock, giving it its
//! secret and spawning it. So a queued start survives the replica it was made on. Every
//! queued user whose place changed hears of it on their progress channel.

use std::sync::Arc;
use std::time::Duration;

use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::{AsyncConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::lifecycle::Tenants;
use super::store::{self, State, Tenant};
use crate::authz::access_levels;
use crate::pools;

/// How often every replica looks at the queue even when nothing told it to.
pub const TICK: Duration = Duration::from_secs(1);

impl Tenants {
    /// Takes every queued start that now has room out of the queue and spawns it here;
    /// returns how many it took.
    #[tracing::instrument(skip_all)]
    pub async fn dispatch(self: &Arc<Self>) -> anyhow::Result<usize> {
        let mut taken = 0;
        loop {
            let promoted = self.promote_heads().await?;
            if promoted.is_empty() {
                break;
            }
            for (tenant, secret) in promoted {
                taken += 1;
                self.launch(tenant, secret).await;
            }
        }
        if taken > 0 {
            self.announce_places().await;
        }
        Ok(taken)
    }

    /// One pass: the oldest queued start of each pool with room, promoted in one
    /// transaction under the admission lock (so the limits hold across replicas).
    async fn promote_heads(&self) -> anyhow::Result<Vec<(Tenant, SecretString)>> {
        let mut conn = self.db.get().await?;
        // Most ticks find no queue: then the admission lock is not taken at all.
        let waiting: bool = diesel::select(diesel::dsl::exists(
            crate::schema::tenants::table
                .filter(crate::schema::tenants::state.eq(State::Queued.as_str())),
        ))
        .get_result(&mut conn)
        .await?;
        if !waiting {
            return Ok(Vec::new());
        }
        let promoted = conn
            .transaction(async |conn| {
                diesel::sql_query("SELECT pg_advisory_xact_lock(72010002)")
                    .execute(conn)
                    .await?;
                let queued = store::queued(conn).await?;
                let mut out = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for head in queued {
                    if !seen.insert(head.pool.clone()) {
                        continue;
                    }
                    let Some(pool) = pools::store::get(conn, &head.pool).await? else {
                        // Its pool was deleted under it: the default pool serves it now.
                        let default = pools::store::get(conn, pools::DEFAULT).await?;
                        if default.is_none() {
                            continue;
                        }
                        diesel::update(crate::schema::tenants::table.find(head.id))
                            .set(crate::schema::tenants::pool.eq(pools::DEFAULT))
                            .execute(conn)
                            .await?;
                        continue;
                    };
                    if pool.draining {
                        continue;
                    }
                    let starting = store::count(conn, &State::SPAWNING, Some(&pool.name)).await?;
                    let running = store::count(conn, &[State::Ready], Some(&pool.name)).await?;
                    if starting >= i64::from(pool.max_starting)
                        || starting + running >= i64::from(pool.max_running)
                    {
                        continue;
                    }
                    let secret = self.keys.secret(head.id, head.user_id);
                    let hash = Sha256::digest(secret.expose_secret().as_bytes());
                    if store::promote(conn, head.id, &hash).await? {
                        out.push((head, secret));
                    }
                }
                Ok::<_, diesel::result::Error>(out)
            })
            .await?;
        let mut fresh = Vec::with_capacity(promoted.len());
        for (tenant, secret) in promoted {
            if let Some(t) = store::get(&mut conn, tenant.id).await? {
                fresh.push((t, secret));
            }
        }
        Ok(fresh)
    }

    /// Spawns a start just taken out of the queue (in the background).
    async fn launch(self: &Arc<Self>, tenant: Tenant, secret: SecretString) {
        let waited = tenant
            .admitted_at
            .map(|at| (at - tenant.requested_at).to_std().unwrap_or_default())
            .unwrap_or_default();
        self.metrics.queue_waited(&tenant.pool, waited);
        let found = async {
            let mut conn = self.db.get().await?;
            let workspace = store::find_workspace(&mut conn, tenant.user_id).await?;
            let level = access_levels::get(&mut conn, &tenant.access_level).await?;
            anyhow::Ok((workspace, level))
        }
        .await;
        match found {
            Ok((Some(workspace), Some(level))) => {
                self.publish(&tenant, State::Requested, None).await;
                let this = Arc::clone(self);
                tokio::spawn(
                    async move { this.spawn(tenant, workspace, level, secret, None).await },
                );
            }
            Ok(_) => {
                self.fail(
                    &tenant,
                    "limits",
                    "its access level or workspace went away while it waited",
                )
                .await
            }
            Err(e) => {
                tracing::warn!(error = %e, tenant = %tenant.id, "cannot start a queued workspace");
                self.fail(
                    &tenant,
                    "database",
                    "the database was unavailable as it left the queue",
                )
                .await
            }
        }
    }

    /// Tells every queued user that their place may have changed (the progress stream reads
    /// the place back).
    async fn announce_places(&self) {
        let queued = match self.db.get().await {
            Ok(mut conn) => store::queued(&mut conn).await.unwrap_or_default(),
            Err(_) => return,
        };
        for tenant in &queued {
            self.publish(tenant, State::Queued, None).await;
        }
    }

    /// Moves the queue in the background (at the end of a spawn, which the queue itself
    /// starts: a task of its own, not a future inside the spawn's).
    pub(crate) fn dispatch_soon(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move { this.dispatch_logged().await });
    }

    /// Moves the queue, logging rather than failing (for the loops and the ends of spawns
    /// and stops).
    pub(crate) async fn dispatch_logged(self: &Arc<Self>) {
        if let Err(e) = self.dispatch().await {
            tracing::warn!(error = %e, "cannot move the start queue");
        }
    }
}
