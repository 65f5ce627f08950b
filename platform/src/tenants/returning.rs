//! Warm capacity for returning people: when a workspace stops (sign-out, idle, stop) and
//! its pool makes next containers ahead (`returning_ahead`), the person's next container is
//! made at once with their volume bound — hardened and sized like any tenant's, never
//! started, with a one-time claim key instead of an identity (the tenant's secret is derived
//! at the claim, so none is baked into it). For people active recently (two starts or more
//! in the last week) and while the pool keeps room (`returning_warm`, under `max_running`),
//! it is also started and left unclaimed: it answers nothing but its health check and the
//! claim the platform signs. Their next sign-in takes it in the admission's transaction
//! (`DELETE … RETURNING`, so only one start on any replica can) and claims it, or starts it
//! first if it was only made; nothing is created on that path.
//!
//! Every replica's keeper tends them under the warm lock: one past its time to live, whose
//! person is signed in again or disabled, whose pool stopped making them, or made from
//! another spec (image digest, access level's limits, the person's level) is removed — the
//! stale ones are made again from the current spec. Their containers are labelled with
//! their row's id, so the reconciler keeps exactly those with a row. This module must never
//! remove a person's volume: it is theirs, not the container's.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::lifecycle::Tenants;
use super::orchestrator::{ContainerInfo, label};
use super::store;
use crate::authz::access_levels::{self, AccessLevel};
use crate::pools;
use crate::schema::returning_runtimes;
use crate::users::{self, UserId};

/// Someone with at least this many starts within [`REGULAR_DAYS`] counts as active
/// recently: their next container is worth starting ahead.
const REGULAR_STARTS: i64 = 2;
const REGULAR_DAYS: i32 = 7;

/// A next container stuck on its way (made or started) for longer is as good as gone.
const STUCK: chrono::Duration = chrono::Duration::seconds(120);

/// A returning person's next container's row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = returning_runtimes, check_for_backend(diesel::pg::Pg))]
pub struct NextContainer {
    pub id: Uuid,
    pub user_id: Uuid,
    pub pool: String,
    pub access_level: String,
    pub image: String,
    pub spec_hash: String,
    pub container_name: String,
    pub container_id: Option<String>,
    pub address: Option<String>,
    pub volume: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Takes the person's next container in `state` ("created" or "ready") if it was made
/// from `spec_hash` and has not expired: the row is gone for every other transaction.
pub async fn take(
    conn: &mut AsyncPgConnection,
    user: UserId,
    spec_hash: &str,
    state: &str,
) -> QueryResult<Option<NextContainer>> {
    diesel::sql_query(
        "DELETE FROM returning_runtimes \
         WHERE user_id = $1 AND spec_hash = $2 AND state = $3 AND expires_at > now() \
           AND container_id IS NOT NULL \
         RETURNING *",
    )
    .bind::<diesel::sql_types::Uuid, _>(user.0)
    .bind::<diesel::sql_types::Text, _>(spec_hash)
    .bind::<diesel::sql_types::Text, _>(state)
    .get_result(conn)
    .await
    .optional()
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<NextContainer>> {
    returning_runtimes::table
        .find(id)
        .select(NextContainer::as_select())
        .first(conn)
        .await
        .optional()
}

/// Every next container with what the keeper decides on: the person's access level now,
/// whether they are disabled and whether a workspace of theirs is live.
#[derive(QueryableByName)]
struct Tended {
    #[diesel(embed)]
    next: NextContainer,
    #[diesel(sql_type = diesel::sql_types::Text)]
    user_level: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    disabled: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    live: bool,
}

async fn tended(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Tended>> {
    diesel::sql_query(
        "SELECT r.*, u.access_level AS user_level, u.disabled_at IS NOT NULL AS disabled, \
           EXISTS (SELECT 1 FROM tenants t WHERE t.user_id = r.user_id \
                   AND t.state IN ('queued', 'requested', 'creating', 'starting', 'ready')) AS live \
         FROM returning_runtimes r JOIN users u ON u.id = r.user_id \
         ORDER BY r.created_at DESC",
    )
    .load(conn)
    .await
}

impl Tenants {
    /// After a stop: makes the person's next container if their pool makes them ahead, and
    /// starts it if they are active recently and the pool has room for it.
    pub(super) async fn prepare_next(&self, user: UserId) -> anyhow::Result<()> {
        if let Some(next) = self.make_next(user, None).await? {
            self.start_ahead(&next).await?;
        }
        Ok(())
    }

    /// Makes the person's next container (never started), unless they have one, a live
    /// workspace, or a pool that does not make them. `expires_at` keeps a remade one's time
    /// to live; `None` gives a fresh one.
    #[tracing::instrument(skip(self))]
    async fn make_next(
        &self,
        user: UserId,
        expires_at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Option<NextContainer>> {
        let mut conn = self.db.get().await?;
        let Some(account) = users::find(&mut conn, user).await? else {
            return Ok(None);
        };
        if account.is_disabled() || store::live(&mut conn, user).await?.is_some() {
            return Ok(None);
        }
        let Some(level) = access_levels::get(&mut conn, &account.access_level).await? else {
            return Ok(None);
        };
        let pool = pools::store::serving(&mut conn, &level.name).await?;
        if !pool.returning_ahead || pool.draining {
            return Ok(None);
        }
        let Some(workspace) = store::find_workspace(&mut conn, user).await? else {
            return Ok(None);
        };
        let id = Uuid::new_v4();
        let expires_at = expires_at.unwrap_or_else(|| {
            Utc::now() + chrono::Duration::seconds(i64::from(pool.returning_ttl_seconds))
        });
        let name = format!("websplat-{}-next-{}", self.config.deployment, id.simple());
        let made = diesel::insert_into(returning_runtimes::table)
            .values((
                returning_runtimes::id.eq(id),
                returning_runtimes::user_id.eq(user.0),
                returning_runtimes::pool.eq(&*pool.name),
                returning_runtimes::access_level.eq(&level.name),
                returning_runtimes::image.eq(&self.config.image),
                returning_runtimes::spec_hash.eq(self.spec_hash(&level)),
                returning_runtimes::container_name.eq(&name),
                returning_runtimes::volume.eq(&workspace.volume),
                returning_runtimes::state.eq("creating"),
                returning_runtimes::expires_at.eq(expires_at),
            ))
            .on_conflict(returning_runtimes::user_id)
            .do_nothing()
            .execute(&mut conn)
            .await?;
        drop(conn);
        if made == 0 {
            return Ok(None);
        }
        match self
            .create_next(id, user, &name, &pool.name, &workspace.volume, &level)
            .await
        {
            Ok(Some(next)) => Ok(Some(next)),
            Ok(None) => Ok(None),
            Err(e) => {
                self.remove_next_by_id(id, Some(&name)).await;
                Err(e)
            }
        }
    }

    async fn create_next(
        &self,
        id: Uuid,
        user: UserId,
        name: &str,
        pool: &str,
        volume: &str,
        level: &AccessLevel,
    ) -> anyhow::Result<Option<NextContainer>> {
        let claim_key = self.keys.claim_key(id);
        let spec = self.unclaimed_spec(
            name,
            volume,
            level,
            &claim_key,
            HashMap::from([
                (label::RETURNING.to_owned(), id.to_string()),
                (label::USER.to_owned(), user.to_string()),
                (label::POOL.to_owned(), pool.to_owned()),
            ]),
        )?;
        let container = self.orchestrator.create(&spec).await?;
        let mut conn = self.db.get().await?;
        let next: Option<NextContainer> = diesel::update(
            returning_runtimes::table
                .find(id)
                .filter(returning_runtimes::state.eq("creating")),
        )
        .set((
            returning_runtimes::container_id.eq(&container),
            returning_runtimes::state.eq("created"),
        ))
        .returning(NextContainer::as_returning())
        .get_result(&mut conn)
        .await
        .optional()?;
        if next.is_none() {
            // Its person came back (or the keeper removed it) while it was being made.
            drop(conn);
            let _ = self.orchestrator.remove(&container).await;
        }
        Ok(next)
    }

    /// Starts a made next container and leaves it unclaimed, if its person is active
    /// recently and its pool keeps room for one more (decided under the admission lock, so
    /// the pool's capacity holds across replicas). Returns whether it started one.
    #[tracing::instrument(skip_all, fields(next = %next.id))]
    async fn start_ahead(&self, next: &NextContainer) -> anyhow::Result<bool> {
        let Some(container) = next.container_id.clone() else {
            return Ok(false);
        };
        let mut conn = self.db.get().await?;
        let go = conn
            .transaction(async |conn| {
                diesel::sql_query("SELECT pg_advisory_xact_lock(72010002)")
                    .execute(conn)
                    .await?;
                let Some(pool) = pools::store::get(conn, &next.pool).await? else {
                    return Ok(false);
                };
                let starts: i64 = crate::schema::tenants::table
                    .filter(crate::schema::tenants::user_id.eq(next.user_id))
                    .filter(
                        crate::schema::tenants::ready_at
                            .gt(Utc::now() - chrono::Duration::days(i64::from(REGULAR_DAYS))),
                    )
                    .count()
                    .get_result(conn)
                    .await?;
                let figures = pools::store::figures(conn)
                    .await?
                    .into_iter()
                    .find(|(p, _)| *p == next.pool)
                    .map(|(_, f)| f)
                    .unwrap_or_default();
                if starts < REGULAR_STARTS
                    || pool.draining
                    || figures.warm_returning >= i64::from(pool.returning_warm)
                    || figures.in_use() >= i64::from(pool.max_running)
                {
                    return Ok(false);
                }
                let moved = diesel::update(
                    returning_runtimes::table
                        .find(next.id)
                        .filter(returning_runtimes::state.eq("created")),
                )
                .set(returning_runtimes::state.eq("starting"))
                .execute(conn)
                .await?;
                Ok::<_, diesel::result::Error>(moved == 1)
            })
            .await?;
        drop(conn);
        if !go {
            return Ok(false);
        }
        let claim_key = self.keys.claim_key(next.id);
        let address = match self.start_unclaimed(&container, &claim_key).await {
            Ok(address) => address,
            Err(e) => {
                self.remove_next(next).await;
                return Err(e);
            }
        };
        let mut conn = self.db.get().await?;
        let ready = diesel::update(
            returning_runtimes::table
                .find(next.id)
                .filter(returning_runtimes::state.eq("starting")),
        )
        .set((
            returning_runtimes::state.eq("ready"),
            returning_runtimes::address.eq(address.to_string()),
        ))
        .execute(&mut conn)
        .await?;
        drop(conn);
        if ready == 0 {
            // Removed by the keeper meanwhile (its person came back, it expired).
            let _ = self.orchestrator.remove(&container).await;
        }
        Ok(ready == 1)
    }

    /// One pass of the keeper over the next containers: removes those no one should get,
    /// makes the stale ones again from the current spec, and starts ahead the made ones of
    /// people active recently while their pools keep room. Returns (removed, made, started).
    #[tracing::instrument(skip_all)]
    pub async fn tend_returning(&self) -> anyhow::Result<(usize, usize, usize)> {
        let mut conn = self.db.get().await?;
        let all = tended(&mut conn).await?;
        let pools: HashMap<String, pools::Pool> = pools::store::list(&mut conn)
            .await?
            .into_iter()
            .map(|p| (p.name.to_string(), p))
            .collect();
        let mut levels: HashMap<String, Option<AccessLevel>> = HashMap::new();
        for t in &all {
            if !levels.contains_key(&t.user_level) {
                let level = access_levels::get(&mut conn, &t.user_level).await?;
                levels.insert(t.user_level.clone(), level);
            }
        }
        drop(conn);
        let now = Utc::now();
        let (mut removed, mut made, mut started) = (0, 0, 0);
        let mut created = Vec::new();
        for Tended {
            next,
            user_level,
            disabled,
            live,
        } in all
        {
            let wanted = pools
                .get(&next.pool)
                .is_some_and(|p| p.returning_ahead && !p.draining);
            let stuck = matches!(next.state.as_str(), "creating" | "starting")
                && now - next.created_at > STUCK;
            if !wanted || disabled || live || stuck || next.expires_at <= now {
                self.remove_next(&next).await;
                removed += 1;
                continue;
            }
            let current = levels
                .get(&user_level)
                .and_then(|l| l.as_ref())
                .map(|l| self.spec_hash(l));
            if next.access_level != user_level || current.as_ref() != Some(&next.spec_hash) {
                self.remove_next(&next).await;
                removed += 1;
                match self
                    .make_next(UserId(next.user_id), Some(next.expires_at))
                    .await
                {
                    Ok(Some(fresh)) => {
                        made += 1;
                        created.push(fresh);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot make a next container again"),
                }
                continue;
            }
            if next.state == "created" {
                created.push(next);
            }
        }
        for next in created {
            let room = pools.get(&next.pool).is_some_and(|p| p.returning_warm > 0);
            if !room {
                continue;
            }
            match self.start_ahead(&next).await {
                Ok(true) => started += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot start a next container ahead"),
            }
        }
        Ok((removed, made, started))
    }

    /// Forgets the next containers the engine no longer has (removed by hand, lost with
    /// the engine, or started and dead), so their people start cold rather than fail. `listed` is every
    /// container of this deployment.
    pub(super) async fn forget_vanished_next(
        &self,
        listed: &[ContainerInfo],
    ) -> anyhow::Result<usize> {
        let mut conn = self.db.get().await?;
        let rows: Vec<NextContainer> = returning_runtimes::table
            .filter(returning_runtimes::state.eq_any(["created", "ready"]))
            .select(NextContainer::as_select())
            .load(&mut conn)
            .await?;
        drop(conn);
        let mut gone = 0;
        for next in rows {
            // A started one that died unclaimed is as good as gone.
            let on_engine = next.container_id.as_ref().is_some_and(|id| {
                listed
                    .iter()
                    .any(|c| c.id == *id && (next.state != "ready" || c.running))
            });
            if !on_engine && Utc::now() - next.created_at > STUCK {
                self.remove_next(&next).await;
                gone += 1;
            }
        }
        Ok(gone)
    }

    /// Removes a next container and its row and key; never the person's volume.
    pub(super) async fn remove_next(&self, next: &NextContainer) {
        self.remove_next_by_id(
            next.id,
            next.container_id.as_deref().or(Some(&next.container_name)),
        )
        .await;
    }

    async fn remove_next_by_id(&self, id: Uuid, container: Option<&str>) {
        if let Some(container) = container
            && let Err(e) = self.orchestrator.remove(container).await
        {
            tracing::warn!(error = %e, next = %id, "cannot remove a next container");
        }
        if let Ok(mut conn) = self.db.get().await {
            let _ = diesel::delete(returning_runtimes::table.find(id))
                .execute(&mut conn)
                .await;
        }
    }
}
