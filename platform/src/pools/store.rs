//! The pools' rows in PostgreSQL: the pools, which access levels each serves, and what each
//! is doing now (counted from the tenants). Queries only; the rules are in [`super`].

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use crate::schema::{pool_access_levels, pool_engines, pools};
use crate::tenants::PoolName;

/// The pool every access level no other pool names is served by; it always exists.
pub const DEFAULT: &str = "default";

/// A pool's row: its limits and switches.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = pools, check_for_backend(diesel::pg::Pg))]
pub struct Pool {
    #[schema(value_type = String, example = "default")]
    pub name: PoolName,
    pub description: String,
    /// Workspaces running, starting or queued at once, at most.
    pub max_running: i32,
    /// Workspaces starting at once, at most; more wait in the queue.
    pub max_starting: i32,
    /// Starts waiting at most; beyond, a start is refused (429).
    pub queue_max: i32,
    /// Overrides the access levels' idle timeout for this pool's workspaces.
    pub idle_timeout_seconds: Option<i32>,
    /// Started, unclaimed runtimes kept for first sign-ins (of the level new users get).
    pub warm_new: i32,
    /// How long an unclaimed runtime waits before it is remade.
    pub warm_ttl_seconds: i32,
    /// No new starts; running workspaces finish.
    pub draining: bool,
    /// Whether an operator has changed it (start-up settings seed only pools nobody has).
    pub operated: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Makes each returning person's next container (their volume bound, never started) as
    /// their workspace stops.
    pub returning_ahead: bool,
    /// Of those, how many are kept started (unclaimed) for people active recently.
    pub returning_warm: i32,
    /// How long a returning person's next container waits for them before it is removed.
    pub returning_ttl_seconds: i32,
}

/// The pool's settings as they are written (all of them).
#[derive(Debug, Clone, AsChangeset, Insertable)]
#[diesel(table_name = pools, treat_none_as_null = true)]
pub struct Row<'a> {
    pub description: &'a str,
    pub max_running: i32,
    pub max_starting: i32,
    pub queue_max: i32,
    pub idle_timeout_seconds: Option<i32>,
    pub warm_new: i32,
    pub warm_ttl_seconds: i32,
    pub draining: bool,
    pub operated: bool,
    pub returning_ahead: bool,
    pub returning_warm: i32,
    pub returning_ttl_seconds: i32,
}

impl Pool {
    pub fn row(&self) -> Row<'_> {
        Row {
            description: &self.description,
            max_running: self.max_running,
            max_starting: self.max_starting,
            queue_max: self.queue_max,
            idle_timeout_seconds: self.idle_timeout_seconds,
            warm_new: self.warm_new,
            warm_ttl_seconds: self.warm_ttl_seconds,
            draining: self.draining,
            operated: self.operated,
            returning_ahead: self.returning_ahead,
            returning_warm: self.returning_warm,
            returning_ttl_seconds: self.returning_ttl_seconds,
        }
    }
}

pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Pool>> {
    pools::table
        .order(pools::name.asc())
        .select(Pool::as_select())
        .load(conn)
        .await
}

/// The engine of each pool not on the platform's own: (pool, engine, endpoint).
pub async fn engines(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Vec<(String, String, Option<String>)>> {
    pool_engines::table
        .order(pool_engines::pool.asc())
        .select((
            pool_engines::pool,
            pool_engines::engine,
            pool_engines::endpoint,
        ))
        .load(conn)
        .await
}

/// A pool's engine and endpoint (`docker` and none when nothing is recorded).
pub async fn engine(
    conn: &mut AsyncPgConnection,
    name: &str,
) -> QueryResult<(String, Option<String>)> {
    Ok(pool_engines::table
        .find(name)
        .select((pool_engines::engine, pool_engines::endpoint))
        .first::<(String, Option<String>)>(conn)
        .await
        .optional()?
        .unwrap_or_else(|| (super::DOCKER.to_owned(), None)))
}

/// Records a pool's engine: a row for a swarm, none for the platform's own.
pub async fn set_engine(
    conn: &mut AsyncPgConnection,
    name: &str,
    engine: &str,
    endpoint: Option<&str>,
) -> QueryResult<()> {
    if endpoint.is_none() {
        diesel::delete(pool_engines::table.find(name))
            .execute(conn)
            .await?;
        return Ok(());
    }
    diesel::insert_into(pool_engines::table)
        .values((
            pool_engines::pool.eq(name),
            pool_engines::engine.eq(engine),
            pool_engines::endpoint.eq(endpoint),
        ))
        .on_conflict(pool_engines::pool)
        .do_update()
        .set((
            pool_engines::engine.eq(engine),
            pool_engines::endpoint.eq(endpoint),
        ))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn get(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<Pool>> {
    pools::table
        .find(name)
        .select(Pool::as_select())
        .first(conn)
        .await
        .optional()
}

/// The pool serving an access level: the one that names it, else `default`.
pub async fn serving(conn: &mut AsyncPgConnection, access_level: &str) -> QueryResult<Pool> {
    let named: Option<String> = pool_access_levels::table
        .find(access_level)
        .select(pool_access_levels::pool)
        .first(conn)
        .await
        .optional()?;
    get(conn, named.as_deref().unwrap_or(DEFAULT))
        .await?
        .ok_or(diesel::result::Error::NotFound)
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    name: &PoolName,
    row: &Row<'_>,
) -> QueryResult<Pool> {
    diesel::insert_into(pools::table)
        .values((pools::name.eq(name), row))
        .returning(Pool::as_returning())
        .get_result(conn)
        .await
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    name: &PoolName,
    row: &Row<'_>,
) -> QueryResult<Pool> {
    diesel::update(pools::table.find(name))
        .set((row, pools::updated_at.eq(Utc::now())))
        .returning(Pool::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(conn: &mut AsyncPgConnection, name: &PoolName) -> QueryResult<usize> {
    diesel::delete(pools::table.find(name)).execute(conn).await
}

/// The access levels each pool names, by pool (`default` serves the others as well).
pub async fn levels(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(String, String)>> {
    pool_access_levels::table
        .order(pool_access_levels::access_level.asc())
        .select((pool_access_levels::pool, pool_access_levels::access_level))
        .load(conn)
        .await
}

/// Makes `pool` name exactly `access_levels` (taking them from whichever pool had them);
/// the levels it named before and no longer does go back to `default`.
pub async fn set_levels(
    conn: &mut AsyncPgConnection,
    pool: &PoolName,
    access_levels: &[String],
) -> QueryResult<()> {
    diesel::delete(pool_access_levels::table.filter(pool_access_levels::pool.eq(pool)))
        .execute(conn)
        .await?;
    if pool == DEFAULT {
        diesel::delete(
            pool_access_levels::table
                .filter(pool_access_levels::access_level.eq_any(access_levels)),
        )
        .execute(conn)
        .await?;
        return Ok(());
    }
    for level in access_levels {
        diesel::insert_into(pool_access_levels::table)
            .values((
                pool_access_levels::access_level.eq(level),
                pool_access_levels::pool.eq(pool),
            ))
            .on_conflict(pool_access_levels::access_level)
            .do_update()
            .set(pool_access_levels::pool.eq(pool))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// What a pool is doing now, counted from its tenants.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct Figures {
    /// Workspaces ready and serving.
    pub running: i64,
    /// Workspaces on their way up (requested, creating, starting).
    pub starting: i64,
    /// Starts waiting in the queue.
    pub queued: i64,
    /// Workspaces that failed in the last hour.
    pub failed_last_hour: i64,
    /// Warm runtimes for first sign-ins: started and unclaimed (ready), or on their way.
    pub warm: i64,
    /// Returning people's next containers made and not started (they hold no memory).
    pub pre_created: i64,
    /// Returning people's next containers started and unclaimed (or on their way).
    pub warm_returning: i64,
}

impl Figures {
    /// What counts against `max_running`: running, starting, queued and every started warm
    /// runtime (of both kinds). A container made and never started holds no memory or CPU.
    pub fn in_use(&self) -> i64 {
        self.running + self.starting + self.queued + self.warm + self.warm_returning
    }
}

/// The figures of every pool that has any, by pool name.
pub async fn figures(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(String, Figures)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        pool: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        running: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        starting: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        queued: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        failed: i64,
    }
    let warm: Vec<(String, i64)> = crate::schema::warm_runtimes::table
        .group_by(crate::schema::warm_runtimes::pool)
        .select((
            crate::schema::warm_runtimes::pool,
            diesel::dsl::count_star(),
        ))
        .load(conn)
        .await?;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT pool, \
           count(*) FILTER (WHERE state = 'ready') AS running, \
           count(*) FILTER (WHERE state IN ('requested', 'creating', 'starting')) AS starting, \
           count(*) FILTER (WHERE state = 'queued') AS queued, \
           count(*) FILTER (WHERE state = 'failed') AS failed \
         FROM tenants \
         WHERE state NOT IN ('stopped', 'stopping', 'failed') \
            OR (state = 'failed' AND ended_at > now() - interval '1 hour') \
         GROUP BY pool",
    )
    .load(conn)
    .await?;
    let mut out: Vec<(String, Figures)> = rows
        .into_iter()
        .map(|r| {
            (
                r.pool,
                Figures {
                    running: r.running,
                    starting: r.starting,
                    queued: r.queued,
                    failed_last_hour: r.failed,
                    ..Figures::default()
                },
            )
        })
        .collect();
    for (pool, n) in warm {
        figures_of(&mut out, pool).warm = n;
    }
    let returning: Vec<(String, String, i64)> = crate::schema::returning_runtimes::table
        .group_by((
            crate::schema::returning_runtimes::pool,
            crate::schema::returning_runtimes::state,
        ))
        .select((
            crate::schema::returning_runtimes::pool,
            crate::schema::returning_runtimes::state,
            diesel::dsl::count_star(),
        ))
        .load(conn)
        .await?;
    for (pool, state, n) in returning {
        let f = figures_of(&mut out, pool);
        if matches!(state.as_str(), "starting" | "ready") {
            f.warm_returning += n;
        } else {
            f.pre_created += n;
        }
    }
    Ok(out)
}

fn figures_of(out: &mut Vec<(String, Figures)>, pool: String) -> &mut Figures {
    let at = match out.iter().position(|(p, _)| *p == pool) {
        Some(at) => at,
        None => {
            out.push((pool, Figures::default()));
            out.len() - 1
        }
    };
    &mut out[at].1
}

/// Start latency over one bucket of time: how many workspaces of a pool became ready in it,
/// and the median and 95th percentile of their request-to-ready time.
#[derive(Debug, Clone, Serialize, ToSchema, QueryableByName)]
pub struct StartBucket {
    /// The bucket's start.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub count: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub p50_ms: f64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub p95_ms: f64,
}

/// The pool's starts of the last `minutes`, in buckets of `bucket_minutes`, oldest first
/// (only buckets with starts).
pub async fn starts(
    conn: &mut AsyncPgConnection,
    pool: &PoolName,
    minutes: i32,
    bucket_minutes: i32,
) -> QueryResult<Vec<StartBucket>> {
    diesel::sql_query(
        "SELECT date_bin(make_interval(mins => $3), ready_at, timestamptz '2000-01-01') AS at, \
           count(*) AS count, \
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ready_at - requested_at) * 1000) AS p50_ms, \
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ready_at - requested_at) * 1000) AS p95_ms \
         FROM tenants \
         WHERE pool = $1 AND ready_at IS NOT NULL AND ready_at > now() - make_interval(mins => $2) \
         GROUP BY 1 ORDER BY 1",
    )
    .bind::<diesel::sql_types::Text, _>(pool)
    .bind::<diesel::sql_types::Integer, _>(minutes)
    .bind::<diesel::sql_types::Integer, _>(bucket_minutes)
    .load(conn)
    .await
}
