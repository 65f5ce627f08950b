//! Workspaces and tenants in PostgreSQL. A tenant's state only moves along the lifecycle
//! (`State::predecessors`), each move one conditional UPDATE, so two replicas (or a stop
//! racing a spawn) can never both win the same transition.

use chrono::{DateTime, Utc};
use diesel::deserialize::{FromSql, FromSqlRow};
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

pub use super::ids::{PoolName, Slug, TenantId};
use crate::schema::{tenants, workspaces};
use crate::users::UserId;

/// The lifecycle of one tenant (one container's life). Read from PostgreSQL, a name that
/// is not one of these is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, FromSqlRow)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting in its pool's start queue (a durable row, served first come, first served).
    Queued,
    Requested,
    Creating,
    Starting,
    Ready,
    Stopping,
    Stopped,
    Failed,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Queued,
        State::Requested,
        State::Creating,
        State::Starting,
        State::Ready,
        State::Stopping,
        State::Stopped,
        State::Failed,
    ];
    /// Queued, on the way up or serving: at most one per user.
    pub const LIVE: [State; 5] = [
        State::Queued,
        State::Requested,
        State::Creating,
        State::Starting,
        State::Ready,
    ];
    /// On the way up.
    pub const SPAWNING: [State; 3] = [State::Requested, State::Creating, State::Starting];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Requested => "requested",
            State::Creating => "creating",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// The states a tenant may move to this one from.
    pub fn predecessors(self) -> &'static [State] {
        match self {
            State::Queued => &[],
            State::Requested => &[State::Queued],
            State::Creating => &[State::Requested],
            State::Starting => &[State::Creating],
            State::Ready => &[State::Starting],
            State::Stopping => &[
                State::Queued,
                State::Requested,
                State::Creating,
                State::Starting,
                State::Ready,
            ],
            State::Stopped => &[State::Stopping],
            State::Failed => &[
                State::Queued,
                State::Requested,
                State::Creating,
                State::Starting,
                State::Ready,
                State::Stopping,
            ],
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, State::Stopped | State::Failed)
    }
}

impl FromSql<sql_types::Text, Pg> for State {
    fn from_sql(bytes: PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let raw = <String as FromSql<sql_types::Text, Pg>>::from_sql(bytes)?;
        State::parse(&raw).ok_or_else(|| format!("{raw:?} is not a tenant state").into())
    }
}

fn names(states: &[State]) -> Vec<&'static str> {
    states.iter().map(|s| s.as_str()).collect()
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = workspaces, check_for_backend(diesel::pg::Pg))]
pub struct Workspace {
    pub user_id: UserId,
    pub slug: Slug,
    pub volume: String,
    pub used_bytes: Option<i64>,
    pub quota_bytes: Option<i64>,
    pub usage_at: Option<DateTime<Utc>>,
    /// The node holding its volume, on an engine of several machines (see
    /// [`super::orchestrator::Orchestrator::place`]).
    pub node: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub struct Tenant {
    pub id: TenantId,
    pub user_id: UserId,
    pub state: State,
    pub reason: Option<String>,
    pub pool: PoolName,
    /// The owner's access level when it was requested (what sizes its container).
    pub access_level: String,
    pub image: String,
    pub container_name: String,
    pub container_id: Option<String>,
    pub address: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// When it left the queue (or, not queued, was requested).
    pub admitted_at: Option<DateTime<Utc>>,
    pub ready_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The user's workspace, made on first use: a slug for its origin and a volume name.
pub async fn workspace(
    conn: &mut AsyncPgConnection,
    user: UserId,
    hint: &str,
    deployment: &str,
) -> QueryResult<Workspace> {
    if let Some(found) = find_workspace(conn, user).await? {
        return Ok(found);
    }
    let simple = user.0.simple().to_string();
    let base = slug_base(hint);
    for candidate in [
        format!("{base}-{}", &simple[..8]),
        format!("{base}-{simple}"),
    ] {
        let Ok(slug) = Slug::parse(&candidate) else {
            continue;
        };
        let inserted = diesel::insert_into(workspaces::table)
            .values((
                workspaces::user_id.eq(user),
                workspaces::slug.eq(&slug),
                workspaces::volume.eq(format!("websplat-{deployment}-{simple}")),
            ))
            .on_conflict(workspaces::user_id)
            .do_nothing()
            .execute(conn)
            .await;
        match inserted {
            Ok(_) => break,
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
            Err(e) => return Err(e),
        }
    }
    find_workspace(conn, user)
        .await?
        .ok_or(DieselError::NotFound)
}

pub async fn find_workspace(
    conn: &mut AsyncPgConnection,
    user: UserId,
) -> QueryResult<Option<Workspace>> {
    workspaces::table
        .find(user)
        .select(Workspace::as_select())
        .first(conn)
        .await
        .optional()
}

/// The workspaces whose tenant is ready, in one query.
pub async fn running_workspaces(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Workspace>> {
    let ready = tenants::table
        .filter(tenants::state.eq(State::Ready.as_str()))
        .select(tenants::user_id);
    workspaces::table
        .filter(workspaces::user_id.eq_any(ready))
        .select(Workspace::as_select())
        .load(conn)
        .await
}

/// Idle timeout (seconds) of every access level, by name.
pub async fn idle_timeouts(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(String, i32)>> {
    crate::schema::access_levels::table
        .select((
            crate::schema::access_levels::name,
            crate::schema::access_levels::idle_timeout_seconds,
        ))
        .load(conn)
        .await
}

/// A host label from a name or e-mail: lowercase letters, digits and single dashes, at most
/// 20 characters, never empty.
pub fn slug_base(hint: &str) -> String {
    let local = hint.split('@').next().unwrap_or_default();
    let mut out = String::new();
    for c in local.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 20 {
            break;
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "ws".to_owned()
    } else {
        trimmed.to_owned()
    }
}

pub struct NewTenant<'a> {
    pub id: TenantId,
    pub user: UserId,
    pub pool: &'a PoolName,
    pub access_level: &'a str,
    pub image: &'a str,
    pub container_name: &'a str,
    /// `None`: queued (it gets its secret when it leaves the queue); `Some`: requested.
    pub secret_hash: Option<&'a [u8]>,
}

/// Records a requested (or, without a secret yet, queued) tenant. Fails with a unique
/// violation when the user already has a live one.
pub async fn insert(conn: &mut AsyncPgConnection, new: NewTenant<'_>) -> QueryResult<Tenant> {
    let (state, admitted_at) = match new.secret_hash {
        Some(_) => (State::Requested, Some(Utc::now())),
        None => (State::Queued, None),
    };
    diesel::insert_into(tenants::table)
        .values((
            tenants::id.eq(new.id),
            tenants::user_id.eq(new.user),
            tenants::state.eq(state.as_str()),
            tenants::pool.eq(new.pool),
            tenants::access_level.eq(new.access_level),
            tenants::image.eq(new.image),
            tenants::container_name.eq(new.container_name),
            tenants::secret_hash.eq(new.secret_hash),
            tenants::admitted_at.eq(admitted_at),
        ))
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
}

/// Takes a queued tenant out of the queue: `requested`, with its secret's hash. Returns
/// whether it was still queued.
pub async fn promote(
    conn: &mut AsyncPgConnection,
    id: TenantId,
    secret_hash: &[u8],
) -> QueryResult<bool> {
    let now = Utc::now();
    let changed = diesel::update(
        tenants::table
            .filter(tenants::id.eq(id))
            .filter(tenants::state.eq(State::Queued.as_str())),
    )
    .set((
        tenants::state.eq(State::Requested.as_str()),
        tenants::secret_hash.eq(secret_hash),
        tenants::admitted_at.eq(now),
        tenants::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(changed == 1)
}

/// The queued tenants, first come first, per pool.
pub async fn queued(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Tenant>> {
    tenants::table
        .filter(tenants::state.eq(State::Queued.as_str()))
        .order((
            tenants::pool.asc(),
            tenants::requested_at.asc(),
            tenants::id.asc(),
        ))
        .select(Tenant::as_select())
        .load(conn)
        .await
}

/// How many starts of its pool are queued ahead of a queued tenant.
pub async fn ahead_of(conn: &mut AsyncPgConnection, tenant: &Tenant) -> QueryResult<i64> {
    use diesel::dsl::sql;
    tenants::table
        .filter(tenants::state.eq(State::Queued.as_str()))
        .filter(tenants::pool.eq(&tenant.pool))
        .filter(
            sql::<sql_types::Bool>("(requested_at, id) < (")
                .bind::<sql_types::Timestamptz, _>(tenant.requested_at)
                .sql(", ")
                .bind::<sql_types::Uuid, _>(tenant.id.0)
                .sql(")"),
        )
        .count()
        .get_result(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: TenantId) -> QueryResult<Option<Tenant>> {
    tenants::table
        .find(id)
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

/// The user's live tenant (on its way up or serving), if any.
pub async fn live(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<Option<Tenant>> {
    tenants::table
        .filter(tenants::user_id.eq(user))
        .filter(tenants::state.eq_any(names(&State::LIVE)))
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

/// The live tenant and the workspace of an enabled account, read without the admission
/// lock: where there is one, a start on demand changes nothing and needs no lock. `None`
/// for a disabled account too (the locked path says why).
pub async fn live_unlocked(
    conn: &mut AsyncPgConnection,
    user: UserId,
) -> QueryResult<Option<(Workspace, Tenant)>> {
    use crate::schema::users;
    let enabled: bool = diesel::select(diesel::dsl::exists(
        users::table
            .filter(users::id.eq(user))
            .filter(users::disabled_at.is_null()),
    ))
    .get_result(conn)
    .await?;
    if !enabled {
        return Ok(None);
    }
    let Some(tenant) = live(conn, user).await? else {
        return Ok(None);
    };
    Ok(find_workspace(conn, user).await?.map(|w| (w, tenant)))
}

/// The user's most recent tenant, whatever its state.
pub async fn latest(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<Option<Tenant>> {
    tenants::table
        .filter(tenants::user_id.eq(user))
        .order(tenants::requested_at.desc())
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn by_container(
    conn: &mut AsyncPgConnection,
    container_id: &str,
) -> QueryResult<Option<Tenant>> {
    tenants::table
        .filter(tenants::container_id.eq(container_id))
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn in_states(conn: &mut AsyncPgConnection, states: &[State]) -> QueryResult<Vec<Tenant>> {
    tenants::table
        .filter(tenants::state.eq_any(names(states)))
        .select(Tenant::as_select())
        .load(conn)
        .await
}

/// How many tenants are in each of `states`, overall and for one pool.
pub async fn count(
    conn: &mut AsyncPgConnection,
    states: &[State],
    pool: Option<&PoolName>,
) -> QueryResult<i64> {
    let mut query = tenants::table
        .filter(tenants::state.eq_any(names(states)))
        .into_boxed();
    if let Some(pool) = pool {
        query = query.filter(tenants::pool.eq(pool.to_string()));
    }
    query.count().get_result(conn).await
}

/// Workspaces per state — each user's latest tenant — with every state present (zeros
/// included).
pub async fn census(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(State, i64)>> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: State,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<Count> = diesel::sql_query(
        "SELECT state, count(*) AS n FROM \
           (SELECT DISTINCT ON (user_id) state FROM tenants ORDER BY user_id, requested_at DESC) latest \
         GROUP BY state",
    )
    .load(conn)
    .await?;
    let mut out: Vec<(State, i64)> = State::ALL.iter().map(|s| (*s, 0)).collect();
    for row in rows {
        if let Some(slot) = out.iter_mut().find(|(s, _)| *s == row.state) {
            slot.1 = row.n;
        }
    }
    Ok(out)
}

/// Moves a tenant to `to` if it is in a state that may; returns whether it moved.
pub async fn transition(
    conn: &mut AsyncPgConnection,
    id: TenantId,
    to: State,
    reason: Option<&str>,
) -> QueryResult<bool> {
    let now = Utc::now();
    let reason = if matches!(to, State::Failed | State::Stopping | State::Stopped) {
        reason
    } else {
        None
    };
    let target = tenants::table
        .filter(tenants::id.eq(id))
        .filter(tenants::state.eq_any(names(to.predecessors())));
    let changed = match to {
        State::Ready => {
            diesel::update(target)
                .set((
                    tenants::state.eq(to.as_str()),
                    tenants::ready_at.eq(now),
                    tenants::updated_at.eq(now),
                ))
                .execute(conn)
                .await?
        }
        State::Stopping => {
            // A stop keeps the first reason given (e.g. "idle" over a later "sign-out").
            diesel::update(target)
                .set((
                    tenants::state.eq(to.as_str()),
                    tenants::reason.eq(reason),
                    tenants::updated_at.eq(now),
                ))
                .execute(conn)
                .await?
        }
        State::Stopped | State::Failed => match reason {
            Some(reason) => {
                diesel::update(target)
                    .set((
                        tenants::state.eq(to.as_str()),
                        tenants::reason.eq(reason),
                        tenants::ended_at.eq(now),
                        tenants::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?
            }
            // Keeps the reason the stop was asked with.
            None => {
                diesel::update(target)
                    .set((
                        tenants::state.eq(to.as_str()),
                        tenants::ended_at.eq(now),
                        tenants::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?
            }
        },
        _ => {
            diesel::update(target)
                .set((tenants::state.eq(to.as_str()), tenants::updated_at.eq(now)))
                .execute(conn)
                .await?
        }
    };
    Ok(changed == 1)
}

/// Records the storage a workspace's runtime reported.
pub async fn set_usage(
    conn: &mut AsyncPgConnection,
    user: UserId,
    used_bytes: i64,
    quota_bytes: i64,
) -> QueryResult<()> {
    diesel::update(workspaces::table.find(user))
        .set((
            workspaces::used_bytes.eq(used_bytes),
            workspaces::quota_bytes.eq(quota_bytes),
            workspaces::usage_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Makes `volume` the user's (a claimed warm runtime's fresh volume, at their first start).
pub async fn set_volume(
    conn: &mut AsyncPgConnection,
    user: UserId,
    volume: &str,
) -> QueryResult<()> {
    diesel::update(workspaces::table.find(user))
        .set(workspaces::volume.eq(volume))
        .execute(conn)
        .await
        .map(drop)
}

/// Pins a workspace to the node that holds its volume: only where none is recorded yet,
/// so two racing starts agree on the first; returns the node it is pinned to.
pub async fn pin_workspace(
    conn: &mut AsyncPgConnection,
    user: UserId,
    node: &str,
) -> QueryResult<Option<String>> {
    diesel::update(
        workspaces::table
            .find(user)
            .filter(workspaces::node.is_null()),
    )
    .set(workspaces::node.eq(node))
    .execute(conn)
    .await?;
    workspaces::table
        .find(user)
        .select(workspaces::node)
        .first(conn)
        .await
}

/// Moves a workspace's pin to another node (after its data was copied there).
pub async fn repin_workspace(
    conn: &mut AsyncPgConnection,
    user: UserId,
    node: &str,
) -> QueryResult<()> {
    diesel::update(workspaces::table.find(user))
        .set(workspaces::node.eq(node))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn set_container(
    conn: &mut AsyncPgConnection,
    id: TenantId,
    container_id: &str,
) -> QueryResult<()> {
    diesel::update(tenants::table.find(id))
        .set(tenants::container_id.eq(container_id))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn set_address(
    conn: &mut AsyncPgConnection,
    id: TenantId,
    address: &str,
) -> QueryResult<()> {
    diesel::update(tenants::table.find(id))
        .set(tenants::address.eq(address))
        .execute(conn)
        .await
        .map(drop)
}

/// The slugs of the workspaces whose tenant is ready: the routes to keep alive.
pub async fn ready_slugs(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Slug>> {
    let ready = tenants::table
        .filter(tenants::state.eq(State::Ready.as_str()))
        .select(tenants::user_id);
    workspaces::table
        .filter(workspaces::user_id.eq_any(ready))
        .select(workspaces::slug)
        .load::<Slug>(conn)
        .await
}

/// The key tenant secrets are derived from when `WEBSPLAT_TENANT_KEY` is not set: made
/// (32 random bytes) by the first replica to ask, then the same for every replica.
pub async fn stored_tenant_key(conn: &mut AsyncPgConnection) -> QueryResult<Vec<u8>> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = sql_types::Bytea)]
        key: Vec<u8>,
    }
    let fresh: [u8; 32] = rand::random();
    diesel::sql_query(
        "INSERT INTO platform_keys (name, key) VALUES ('tenant', $1) ON CONFLICT (name) DO NOTHING",
    )
    .bind::<sql_types::Bytea, _>(fresh.as_slice())
    .execute(conn)
    .await?;
    let stored: Key = diesel::sql_query("SELECT key FROM platform_keys WHERE name = 'tenant'")
        .get_result(conn)
        .await?;
    Ok(stored.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_host_labels() {
        assert_eq!(slug_base("Alice Smith"), "alice-smith");
        assert_eq!(slug_base("bob.jones+x@example.com"), "bob-jones-x");
        assert_eq!(slug_base("---"), "ws");
        assert_eq!(slug_base("Ünïcødé"), "n-c-d");
        assert!(slug_base("a-very-long-name-that-goes-on-and-on").len() <= 20);
    }

    #[test]
    fn the_lifecycle_only_moves_forward() {
        assert!(State::Ready.predecessors() == [State::Starting]);
        assert!(!State::Requested.predecessors().contains(&State::Stopped));
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert!(!s.predecessors().contains(&State::Stopped));
            assert!(!s.predecessors().contains(&State::Failed));
        }
    }
}
