//! Pools: named sets of capacity that operators size live. A pool serves one or more
//! access levels (a level no pool names is served by `default`) and sets how many of their
//! workspaces may run and start at once, how long the start queue may grow, an idle timeout
//! that overrides the levels', and whether it is draining (no new starts; running
//! workspaces finish). Stored in PostgreSQL and read fresh by every admission, so a change
//! made through any replica is in force on all of them at the next start.
//!
//! The functions here are the use-cases the API (`/api/v1/pools`) and the command line
//! (`platform pools …`) both call; every change is audited, also when it is refused. They
//! decide nothing about who may call them (the policy does) and never touch a container.

pub mod cli;
pub mod store;

use std::collections::BTreeMap;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::admin::audited;
use crate::audit::{Action, Audit};
use crate::authz::access_levels;
use crate::config::TenantsConfig;
use crate::db;
use crate::error::ApiError;
use crate::tenants::PoolName;
pub use store::{DEFAULT, Figures, Pool};

/// A pool as operators see it: its settings, the access levels it serves and what it is
/// doing now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PoolView {
    #[serde(flatten)]
    pub pool: Pool,
    /// The access levels it serves (for `default`: every level no other pool names).
    pub access_levels: Vec<String>,
    pub figures: Figures,
    /// What runs its workspaces: `docker` (the platform's own engine) or `swarm`.
    #[schema(example = "docker")]
    pub engine: String,
    /// For a swarm pool, a manager's API (`unix:///…`, `tcp://host:port`).
    pub endpoint: Option<String>,
}

/// What an operator sends to create a pool.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Access levels it serves (taken from the pool that served them).
    #[serde(default)]
    pub access_levels: Vec<String>,
    pub max_running: i32,
    pub max_starting: i32,
    #[serde(default = "default_queue_max")]
    pub queue_max: i32,
    #[serde(default)]
    pub idle_timeout_seconds: Option<i32>,
    /// Started, unclaimed runtimes to keep for first sign-ins.
    #[serde(default)]
    pub warm_new: i32,
    #[serde(default = "default_warm_ttl")]
    pub warm_ttl_seconds: i32,
    /// Make each returning person's next container as their workspace stops.
    #[serde(default)]
    pub returning_ahead: bool,
    /// Of those, how many to keep started for people active recently.
    #[serde(default)]
    pub returning_warm: i32,
    #[serde(default = "default_warm_ttl")]
    pub returning_ttl_seconds: i32,
    /// What runs its workspaces: `docker` (the platform's own engine, the default) or
    /// `swarm` (a Docker Swarm cluster).
    #[serde(default = "default_engine")]
    pub engine: String,
    /// For a swarm pool: a manager's API, `unix:///path` or `tcp://host:port`.
    #[serde(default)]
    pub endpoint: Option<String>,
}

fn default_engine() -> String {
    DOCKER.to_owned()
}

/// The engines a pool may run on.
pub const DOCKER: &str = "docker";
pub const SWARM: &str = "swarm";

fn default_queue_max() -> i32 {
    100
}

fn default_warm_ttl() -> i32 {
    3600
}

/// What an operator sends to change a pool: only the fields to change
/// (`idle_timeout_seconds: null` removes the override).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolChange {
    pub description: Option<String>,
    /// Replaces the access levels it serves; the ones it no longer names go to `default`.
    pub access_levels: Option<Vec<String>>,
    pub max_running: Option<i32>,
    pub max_starting: Option<i32>,
    pub queue_max: Option<i32>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>)]
    pub idle_timeout_seconds: Option<Option<i32>>,
    pub warm_new: Option<i32>,
    pub warm_ttl_seconds: Option<i32>,
    pub returning_ahead: Option<bool>,
    pub returning_warm: Option<i32>,
    pub returning_ttl_seconds: Option<i32>,
    /// `docker` or `swarm`; only while nothing runs, starts or waits in the pool.
    pub engine: Option<String>,
    /// A swarm pool's manager API (`null` for a docker pool).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub endpoint: Option<Option<String>>,
}

/// A field that is present (possibly `null`) is `Some`; an absent one stays `None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A pool's name (the same grammar as an access level's, so a pool may be named after the
/// level it serves).
pub fn parse_name(raw: &str) -> Result<PoolName, ApiError> {
    PoolName::parse(raw).map_err(|_| {
        ApiError::validation(
            "name",
            "a pool's name is 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter",
        )
    })
}

fn in_range(field: &'static str, value: i32, min: i32, max: i32) -> Result<(), ApiError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ApiError::validation(
            field,
            format!("{} must be between {min} and {max}", label(field)),
        ))
    }
}

/// A setting's name in a sentence for people.
fn label(field: &str) -> &'static str {
    match field {
        "max_running" => "The most workspaces running at once",
        "max_starting" => "The most workspaces starting at once",
        "queue_max" => "The longest start queue",
        "idle_timeout_seconds" => "The idle timeout",
        "warm_new" => "The number of warm runtimes",
        "warm_ttl_seconds" => "A warm runtime's lifetime",
        "minutes" => "The window",
        _ => "The value",
    }
}

/// Checks the settings a pool would have; the same bounds as the database's, in words.
fn validate(pool: &store::Row<'_>) -> Result<(), ApiError> {
    if pool.description.chars().count() > 500 || pool.description.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "description",
            "the description is at most 500 printable characters",
        ));
    }
    in_range("max_running", pool.max_running, 0, 100_000)?;
    in_range("max_starting", pool.max_starting, 1, 1_000)?;
    in_range("queue_max", pool.queue_max, 0, 100_000)?;
    if let Some(seconds) = pool.idle_timeout_seconds {
        in_range("idle_timeout_seconds", seconds, 60, 2_592_000)?;
    }
    in_range("warm_new", pool.warm_new, 0, 1_000)?;
    in_range("warm_ttl_seconds", pool.warm_ttl_seconds, 60, 604_800)?;
    if pool.warm_new > pool.max_running {
        return Err(ApiError::validation(
            "warm_new",
            "warm runtimes count against the pool's capacity: warm_new must not exceed max_running",
        ));
    }
    in_range("returning_warm", pool.returning_warm, 0, 1_000)?;
    in_range(
        "returning_ttl_seconds",
        pool.returning_ttl_seconds,
        60,
        604_800,
    )?;
    if pool.warm_new + pool.returning_warm > pool.max_running {
        return Err(ApiError::validation(
            "returning_warm",
            "started warm runtimes count against the pool's capacity: warm_new and returning_warm together must not exceed max_running",
        ));
    }
    if pool.returning_warm > 0 && !pool.returning_ahead {
        return Err(ApiError::validation(
            "returning_warm",
            "only next containers made ahead can be started ahead: set returning_ahead too",
        ));
    }
    Ok(())
}

/// The engine and its endpoint: a swarm pool names a manager's API; a docker pool runs
/// on the platform's own engine and names none.
fn validate_engine(
    pool: &store::Row<'_>,
    engine: &str,
    endpoint: Option<&str>,
) -> Result<(), ApiError> {
    match (engine, endpoint) {
        (DOCKER, None) => Ok(()),
        (DOCKER, Some(_)) => Err(ApiError::validation(
            "endpoint",
            "a docker pool runs on the platform's own Docker Engine; only a swarm pool takes an endpoint",
        )),
        (SWARM, None) => Err(ApiError::validation(
            "endpoint",
            "a swarm pool needs the API of one of the cluster's managers: unix:///path/to/docker.sock or tcp://host:port",
        )),
        (SWARM, Some(endpoint)) => {
            if !endpoint_is_valid(endpoint) {
                return Err(ApiError::validation(
                    "endpoint",
                    "the endpoint is a manager's API: unix:// and an absolute socket path, or tcp:// (or http://) and host:port, at most 300 characters",
                ));
            }
            if pool.warm_new > 0 {
                return Err(ApiError::validation(
                    "warm_new",
                    "a swarm pool keeps no warm runtimes yet (a workspace's data is pinned to one machine): set warm_new to 0",
                ));
            }
            if pool.returning_ahead {
                return Err(ApiError::validation(
                    "returning_ahead",
                    "a swarm pool makes no next containers ahead yet: set returning_ahead to false",
                ));
            }
            Ok(())
        }
        _ => Err(ApiError::validation(
            "engine",
            "the engine is docker (the platform's own Docker Engine) or swarm (a Docker Swarm cluster)",
        )),
    }
}

fn endpoint_is_valid(endpoint: &str) -> bool {
    if endpoint.len() > 300
        || endpoint
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return false;
    }
    if let Some(path) = endpoint.strip_prefix("unix://") {
        return path.starts_with('/') && path.len() > 1;
    }
    let Some(rest) = endpoint
        .strip_prefix("tcp://")
        .or_else(|| endpoint.strip_prefix("http://"))
    else {
        return false;
    };
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

async fn check_levels(
    conn: &mut AsyncPgConnection,
    pool: &PoolName,
    levels: &[String],
) -> Result<Vec<String>, ApiError> {
    if pool == DEFAULT && !levels.is_empty() {
        return Err(ApiError::validation(
            "access_levels",
            "the default pool serves every access level no other pool names; to move a level, name it in another pool",
        ));
    }
    let mut out = Vec::new();
    for level in levels {
        let name = access_levels::parse_name(level)?;
        if access_levels::get(conn, &name).await?.is_none() {
            return Err(ApiError::validation(
                "access_levels",
                format!("there is no access level named {name:?}"),
            ));
        }
        out.push(name);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn no_such_pool(name: &str) -> ApiError {
    ApiError::NotFound(format!("there is no pool named {name:?}"))
}

/// Every pool with the access levels it serves and its figures.
pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<PoolView>, ApiError> {
    let pools = store::list(conn).await?;
    let named = store::levels(conn).await?;
    let figures: BTreeMap<String, Figures> = store::figures(conn).await?.into_iter().collect();
    let all_levels = access_levels::list(conn).await?;
    let engines: BTreeMap<String, (String, Option<String>)> = store::engines(conn)
        .await?
        .into_iter()
        .map(|(pool, engine, endpoint)| (pool, (engine, endpoint)))
        .collect();
    Ok(pools
        .into_iter()
        .map(|pool| {
            let access_levels = if pool.name == DEFAULT {
                all_levels
                    .iter()
                    .map(|l| l.level.name.clone())
                    .filter(|l| !named.iter().any(|(_, n)| n == l))
                    .collect()
            } else {
                named
                    .iter()
                    .filter(|(p, _)| *p == *pool.name)
                    .map(|(_, l)| l.clone())
                    .collect()
            };
            let (engine, endpoint) = engines
                .get(&*pool.name)
                .cloned()
                .unwrap_or_else(|| (DOCKER.to_owned(), None));
            PoolView {
                figures: figures.get(&*pool.name).copied().unwrap_or_default(),
                access_levels,
                pool,
                engine,
                endpoint,
            }
        })
        .collect())
}

pub async fn show(conn: &mut AsyncPgConnection, name: &str) -> Result<PoolView, ApiError> {
    let name = parse_name(name)?;
    list(conn)
        .await?
        .into_iter()
        .find(|p| p.pool.name == name)
        .ok_or_else(|| no_such_pool(&name))
}

/// Creates a pool (audited as `pool.create`).
pub async fn create(db: &db::Pool, audit: &Audit, input: NewPool) -> Result<PoolView, ApiError> {
    let target = format!("pool:{}", input.name);
    let detail = serde_json::json!({
        "max_running": input.max_running, "max_starting": input.max_starting,
        "queue_max": input.queue_max, "access_levels": input.access_levels,
        "engine": input.engine, "endpoint": input.endpoint,
    });
    let result = async {
        let name = parse_name(&input.name)?;
        let row = store::Row {
            description: input.description.trim(),
            max_running: input.max_running,
            max_starting: input.max_starting,
            queue_max: input.queue_max,
            idle_timeout_seconds: input.idle_timeout_seconds,
            warm_new: input.warm_new,
            warm_ttl_seconds: input.warm_ttl_seconds,
            draining: false,
            operated: true,
            returning_ahead: input.returning_ahead,
            returning_warm: input.returning_warm,
            returning_ttl_seconds: input.returning_ttl_seconds,
        };
        let (engine, endpoint) = (
            input.engine.trim(),
            input.endpoint.as_deref().map(str::trim),
        );
        validate(&row)?;
        validate_engine(&row, engine, endpoint)?;
        let mut conn = db.get().await?;
        conn.transaction(async |conn| {
            let levels = check_levels(conn, &name, &input.access_levels).await?;
            match store::insert(conn, &name, &row).await {
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                    return Err(ApiError::Conflict(format!(
                        "a pool named {:?} already exists",
                        &*name
                    )));
                }
                other => other?,
            };
            store::set_levels(conn, &name, &levels).await?;
            store::set_engine(conn, &name, engine, endpoint).await?;
            Ok::<_, ApiError>(())
        })
        .await?;
        show(&mut conn, &name).await
    }
    .await;
    audited(db, audit, Action::PoolCreate, &target, detail, result).await
}

/// Changes a pool's settings (audited as `pool.update`, with the fields sent).
pub async fn change(
    db: &db::Pool,
    audit: &Audit,
    name: &str,
    change: PoolChange,
) -> Result<PoolView, ApiError> {
    let detail = serde_json::json!({
        "description": change.description, "access_levels": change.access_levels,
        "max_running": change.max_running, "max_starting": change.max_starting,
        "queue_max": change.queue_max, "idle_timeout_seconds": change.idle_timeout_seconds,
        "warm_new": change.warm_new, "warm_ttl_seconds": change.warm_ttl_seconds,
        "returning_ahead": change.returning_ahead, "returning_warm": change.returning_warm,
        "returning_ttl_seconds": change.returning_ttl_seconds,
        "engine": change.engine, "endpoint": change.endpoint,
    });
    let detail = serde_json::Value::Object(
        detail
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let result = async {
        let name = parse_name(name)?;
        let mut conn = db.get().await?;
        conn.transaction(async |conn| {
            let current = store::get(conn, &name)
                .await?
                .ok_or_else(|| no_such_pool(&name))?;
            let description = change
                .description
                .as_deref()
                .map_or(current.description.as_str(), str::trim);
            let row = store::Row {
                description,
                max_running: change.max_running.unwrap_or(current.max_running),
                max_starting: change.max_starting.unwrap_or(current.max_starting),
                queue_max: change.queue_max.unwrap_or(current.queue_max),
                idle_timeout_seconds: change
                    .idle_timeout_seconds
                    .unwrap_or(current.idle_timeout_seconds),
                warm_new: change.warm_new.unwrap_or(current.warm_new),
                warm_ttl_seconds: change.warm_ttl_seconds.unwrap_or(current.warm_ttl_seconds),
                draining: current.draining,
                operated: true,
                returning_ahead: change.returning_ahead.unwrap_or(current.returning_ahead),
                returning_warm: change.returning_warm.unwrap_or(current.returning_warm),
                returning_ttl_seconds: change
                    .returning_ttl_seconds
                    .unwrap_or(current.returning_ttl_seconds),
            };
            let (current_engine, current_endpoint) = store::engine(conn, &name).await?;
            let engine = change
                .engine
                .as_deref()
                .map_or(current_engine.as_str(), str::trim);
            let endpoint = match &change.endpoint {
                Some(endpoint) => endpoint.as_deref().map(str::trim),
                None => current_endpoint.as_deref(),
            };
            validate(&row)?;
            validate_engine(&row, engine, endpoint)?;
            if engine != current_engine || endpoint != current_endpoint.as_deref() {
                let in_use = store::figures(conn)
                    .await?
                    .into_iter()
                    .find(|(p, _)| *p == *name)
                    .map_or(0, |(_, f)| f.in_use());
                if in_use > 0 {
                    return Err(ApiError::Conflict(format!(
                        "{in_use} workspaces are still running, starting or queued in the pool {:?}; drain it and wait until they have stopped before changing its engine",
                        &*name
                    )));
                }
            }
            if let Some(levels) = &change.access_levels {
                let levels = check_levels(conn, &name, levels).await?;
                store::set_levels(conn, &name, &levels).await?;
            }
            store::update(conn, &name, &row).await?;
            store::set_engine(conn, &name, engine, endpoint).await?;
            Ok::<_, ApiError>(())
        })
        .await?;
        show(&mut conn, &name).await
    }
    .await;
    let target = format!("pool:{name}");
    audited(db, audit, Action::PoolUpdate, &target, detail, result).await
}

/// Drains a pool (no new starts; running workspaces finish), or ends the draining
/// (audited as `pool.drain` / `pool.undrain`).
pub async fn set_draining(
    db: &db::Pool,
    audit: &Audit,
    name: &str,
    draining: bool,
) -> Result<PoolView, ApiError> {
    let result = async {
        let name = parse_name(name)?;
        let mut conn = db.get().await?;
        let current = store::get(&mut conn, &name)
            .await?
            .ok_or_else(|| no_such_pool(&name))?;
        let mut row = current.row();
        row.draining = draining;
        row.operated = true;
        store::update(&mut conn, &name, &row).await?;
        show(&mut conn, &name).await
    }
    .await;
    let action = if draining {
        Action::PoolDrain
    } else {
        Action::PoolUndrain
    };
    let target = format!("pool:{name}");
    audited(db, audit, action, &target, serde_json::json!({}), result).await
}

/// Deletes a pool with no workspace running, starting or queued in it; the access levels
/// it served go back to `default`, which can never be deleted (audited as `pool.delete`).
pub async fn delete(db: &db::Pool, audit: &Audit, name: &str) -> Result<(), ApiError> {
    let result = async {
        let name = parse_name(name)?;
        if name == DEFAULT {
            return Err(ApiError::Conflict(
                "the default pool serves every access level no other pool names; it cannot be deleted".to_owned(),
            ));
        }
        let mut conn = db.get().await?;
        let figures = store::figures(&mut conn)
            .await?
            .into_iter()
            .find(|(p, _)| *p == *name)
            .map(|(_, f)| f)
            .unwrap_or_default();
        if figures.in_use() > 0 {
            return Err(ApiError::Conflict(format!(
                "{} workspaces are still running, starting or queued in the pool {:?}; drain it and wait until they have stopped",
                figures.in_use(),
                &*name
            )));
        }
        if store::delete(&mut conn, &name).await? == 0 {
            return Err(no_such_pool(&name));
        }
        Ok(())
    }
    .await;
    let target = format!("pool:{name}");
    audited(
        db,
        audit,
        Action::PoolDelete,
        &target,
        serde_json::json!({}),
        result,
    )
    .await
}

/// Seeds the pools nobody has operated yet from the start-up settings: `default` from
/// `WEBSPLAT_MAX_RUNNING_TENANTS` and `WEBSPLAT_MAX_CONCURRENT_SPAWNS`, and a pool per
/// entry of `WEBSPLAT_MAX_RUNNING_TENANTS_PER_LEVEL`, named after its access level and
/// serving it. A pool an operator has changed is never touched.
pub async fn seed(conn: &mut AsyncPgConnection, config: &TenantsConfig) -> anyhow::Result<()> {
    let clamp = |n: u32, max: i32| i32::try_from(n).unwrap_or(max).min(max);
    let max_running = clamp(config.max_running, 100_000);
    let max_starting = clamp(config.max_concurrent_spawns, 1_000).max(1);
    conn.transaction(async |conn| {
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query("SELECT pg_advisory_xact_lock(72010013)"),
            conn,
        )
        .await?;
        if let Some(pool) = store::get(conn, DEFAULT).await?
            && !pool.operated
        {
            let mut row = pool.row();
            row.max_running = max_running;
            row.max_starting = max_starting;
            store::update(conn, &pool.name, &row).await?;
        }
        for (level, cap) in &config.max_running_per_level {
            let Ok(name) = PoolName::parse(level) else {
                anyhow::bail!(
                    "WEBSPLAT_MAX_RUNNING_TENANTS_PER_LEVEL names {level:?}, which is not an access level's name"
                );
            };
            if access_levels::get(conn, level).await?.is_none() {
                anyhow::bail!(
                    "WEBSPLAT_MAX_RUNNING_TENANTS_PER_LEVEL names {level:?}, which is not an access level"
                );
            }
            let row = store::Row {
                description: "Seeded from WEBSPLAT_MAX_RUNNING_TENANTS_PER_LEVEL.",
                max_running: clamp(*cap, 100_000),
                max_starting,
                queue_max: default_queue_max(),
                idle_timeout_seconds: None,
                warm_new: 0,
                warm_ttl_seconds: default_warm_ttl(),
                draining: false,
                operated: false,
                returning_ahead: false,
                returning_warm: 0,
                returning_ttl_seconds: default_warm_ttl(),
            };
            match store::get(conn, level).await? {
                None => {
                    store::insert(conn, &name, &row).await?;
                    store::set_levels(conn, &name, std::slice::from_ref(level)).await?;
                }
                Some(pool) if !pool.operated => {
                    store::update(conn, &name, &row).await?;
                }
                Some(_) => {}
            }
        }
        Ok(())
    })
    .await
}

/// The start latency chart of a pool: its starts over the last `minutes` (5 to 1440), in
/// buckets sized so the chart has about 60 points.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Starts {
    pub minutes: i32,
    pub bucket_minutes: i32,
    pub buckets: Vec<store::StartBucket>,
}

pub async fn starts(
    conn: &mut AsyncPgConnection,
    name: &str,
    minutes: Option<i32>,
) -> Result<Starts, ApiError> {
    let name = parse_name(name)?;
    let minutes = minutes.unwrap_or(60);
    in_range("minutes", minutes, 5, 1440)?;
    if store::get(conn, &name).await?.is_none() {
        return Err(no_such_pool(&name));
    }
    let bucket_minutes = (minutes / 60).max(1);
    Ok(Starts {
        minutes,
        bucket_minutes,
        buckets: store::starts(conn, &name, minutes, bucket_minutes).await?,
    })
}
