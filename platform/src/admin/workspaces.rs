//! The console's Workspaces page, for admins and operators: every user's workspace with its
//! owner, state, uptime, memory and storage; stopping one (audited as `workspace.stop`);
//! and the last lines its container wrote, through the orchestrator, so an operator can
//! see why one failed without a shell on the host. A tenant's secret is never shown: the
//! platform hands it to the container in its environment, which is not part of the logs,
//! and any line that would carry it anyway is masked before it leaves this module.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::{BigInt, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::audited;
use crate::audit::{self, Action, Audit};
use crate::db;
use crate::error::ApiError;
use crate::tenants::{State, Tenants};
use crate::users::UserId;

/// The most workspaces one page lists.
const PAGE: i64 = 200;
/// The most log lines an admin may ask for.
pub const MAX_LOG_LINES: usize = 1_000;
/// How long the engine may take to tell one container's memory.
const MEMORY_WAIT: Duration = Duration::from_secs(3);

/// One user's workspace as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceRow {
    pub user_id: Uuid,
    /// The owner's display name and e-mail.
    pub owner: String,
    pub email: Option<String>,
    /// The first label of the workspace's address.
    pub slug: String,
    pub access_level: String,
    /// The latest tenant's state (`ready`, `starting`, `stopped`, `failed`…); `stopped`
    /// when it never ran.
    pub state: String,
    /// Why it is in that state (a failure's reason, who stopped it).
    pub reason: Option<String>,
    pub pool: Option<String>,
    /// Since when it has served (the latest tenant's readiness).
    pub ready_at: Option<DateTime<Utc>>,
    /// Seconds it has served, while it serves.
    pub uptime_seconds: Option<i64>,
    /// The memory its container may use (its access level's), in MiB.
    pub memory_limit_mib: Option<i32>,
    /// The memory its container uses now, in bytes, when the engine tells.
    pub memory_used_bytes: Option<u64>,
    /// The bytes its volume holds, as last reported, and its quota.
    pub storage_used_bytes: Option<i64>,
    pub storage_quota_bytes: Option<i64>,
    pub storage_reported_at: Option<DateTime<Utc>>,
    /// Whether it can be stopped (it is queued, on its way up or serving).
    pub live: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspacePage {
    pub workspaces: Vec<WorkspaceRow>,
    /// How many workspaces match, of which at most 200 are listed (live ones first).
    pub total: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceQuery {
    /// Part of the owner's name or e-mail, or of the workspace's address.
    pub q: Option<String>,
    /// Only workspaces that are queued, starting or serving.
    #[serde(default)]
    pub live: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceLogs {
    pub user_id: Uuid,
    /// The container the lines come from.
    pub container: String,
    /// Oldest first.
    pub lines: Vec<String>,
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Text)]
    display_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Text)]
    slug: String,
    #[diesel(sql_type = Text)]
    access_level: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    used_bytes: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    quota_bytes: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    usage_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pool: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    ready_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    container_id: Option<String>,
    #[diesel(sql_type = Nullable<Int4>)]
    memory_mib: Option<i32>,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// [`State::LIVE`] in SQL.
const LIVE_STATES: &str = "('queued','requested','creating','starting','ready')";

async fn rows(conn: &mut AsyncPgConnection, query: &WorkspaceQuery) -> QueryResult<Vec<Row>> {
    let pattern = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| {
            let escaped = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
    let sql = format!(
        "SELECT w.user_id, u.display_name, u.email, w.slug, u.access_level,
                w.used_bytes, w.quota_bytes, w.usage_at,
                t.state, t.reason, t.pool, t.ready_at, t.container_id, l.memory_mib,
                count(*) OVER () AS total
           FROM workspaces w
           JOIN users u ON u.id = w.user_id
           LEFT JOIN LATERAL (
                SELECT state, reason, pool, ready_at, container_id FROM tenants
                 WHERE tenants.user_id = w.user_id
                 ORDER BY requested_at DESC LIMIT 1) t ON true
           LEFT JOIN access_levels l ON l.name = u.access_level
          WHERE ($1::text IS NULL OR u.display_name ILIKE $1 OR u.email ILIKE $1 OR w.slug ILIKE $1)
            AND (NOT $2 OR t.state IN {LIVE_STATES})
          ORDER BY (t.state IN {LIVE_STATES}) DESC NULLS LAST, t.ready_at DESC NULLS LAST,
                   u.display_name, w.user_id
          LIMIT {PAGE}"
    );
    diesel::sql_query(sql)
        .bind::<Nullable<Text>, _>(pattern)
        .bind::<diesel::sql_types::Bool, _>(query.live)
        .load(conn)
        .await
}

/// The workspaces matching `query`, live ones first, with the memory each running one uses.
pub async fn list(
    db: &db::Pool,
    tenants: &Tenants,
    query: &WorkspaceQuery,
) -> Result<WorkspacePage, ApiError> {
    if query.q.as_deref().is_some_and(|q| q.len() > 200) {
        return Err(ApiError::validation(
            "q",
            "The search is longer than 200 characters; shorten it.",
        ));
    }
    let rows = {
        let mut conn = db.get().await?;
        rows(&mut conn, query).await?
    };
    let total = <[Row]>::first(&rows).map_or(0, |r| r.total);
    let now = Utc::now();
    let orchestrator = tenants.orchestrator.clone();
    let workspaces = futures_util::stream::iter(rows)
        .map(|row| {
            let orchestrator = orchestrator.clone();
            async move {
                let live = row
                    .state
                    .as_deref()
                    .and_then(State::parse)
                    .is_some_and(|s| State::LIVE.contains(&s));
                let serving = row.state.as_deref() == Some("ready");
                let memory_used_bytes = match (&row.container_id, serving) {
                    (Some(id), true) => {
                        tokio::time::timeout(MEMORY_WAIT, orchestrator.memory_used(id))
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .flatten()
                    }
                    _ => None,
                };
                WorkspaceRow {
                    user_id: row.user_id,
                    owner: row.display_name,
                    email: row.email,
                    slug: row.slug,
                    access_level: row.access_level,
                    state: row.state.unwrap_or_else(|| "stopped".to_owned()),
                    reason: row.reason,
                    pool: row.pool,
                    uptime_seconds: row
                        .ready_at
                        .filter(|_| serving)
                        .map(|at| (now - at).num_seconds().max(0)),
                    ready_at: row.ready_at,
                    memory_limit_mib: row.memory_mib,
                    memory_used_bytes,
                    storage_used_bytes: row.used_bytes,
                    storage_quota_bytes: row.quota_bytes,
                    storage_reported_at: row.usage_at,
                    live,
                }
            }
        })
        .buffered(8)
        .collect()
        .await;
    Ok(WorkspacePage { workspaces, total })
}

/// Stops `user`'s workspace (its container goes; its volume stays), audited.
pub async fn stop(
    db: &db::Pool,
    tenants: &Tenants,
    audit: &Audit,
    user: UserId,
) -> Result<(), ApiError> {
    let result = async {
        let mut conn = db.get().await?;
        crate::tenants::store::find_workspace(&mut conn, user)
            .await?
            .ok_or_else(|| ApiError::NotFound("This user has no workspace.".to_owned()))?;
        drop(conn);
        if tenants.stop(user, "stopped by an administrator").await? {
            Ok(())
        } else {
            Err(ApiError::Conflict(
                "This workspace is not running; there is nothing to stop.".to_owned(),
            ))
        }
    }
    .await;
    audited(
        db,
        audit,
        Action::WorkspaceStop,
        &audit::user_target(user),
        serde_json::json!({}),
        result,
    )
    .await
}

/// A workspace moved to another machine: where it is now and the steps it went through.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkspaceMoved {
    pub machine: crate::tenants::orchestrator::Machine,
    pub steps: Vec<String>,
}

/// Moves `user`'s workspace to the machine `node` of its pool's engine (stop, copy of its
/// data, new pin), audited as `workspace.move`; `progress` hears each step as it happens.
pub async fn move_to(
    db: &db::Pool,
    tenants: &Tenants,
    audit: &Audit,
    user: UserId,
    node: &str,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<WorkspaceMoved, ApiError> {
    let steps = std::sync::Mutex::new(Vec::new());
    let tell = |step: String| {
        progress(step.clone());
        if let Ok(mut steps) = steps.lock() {
            steps.push(step);
        }
    };
    let result = tenants.move_workspace(user, node, &tell).await;
    let result = audited(
        db,
        audit,
        Action::WorkspaceMove,
        &audit::user_target(user),
        serde_json::json!({ "node": node }),
        result,
    )
    .await?;
    Ok(WorkspaceMoved {
        machine: result,
        steps: steps.into_inner().unwrap_or_default(),
    })
}

/// The last `lines` lines `user`'s running workspace's container wrote.
pub async fn logs(
    db: &db::Pool,
    tenants: &Tenants,
    user: UserId,
    lines: usize,
) -> Result<WorkspaceLogs, ApiError> {
    if !(1..=MAX_LOG_LINES).contains(&lines) {
        return Err(ApiError::validation(
            "lines",
            format!("Ask for 1 to {MAX_LOG_LINES} lines."),
        ));
    }
    let mut conn = db.get().await?;
    let tenant = crate::tenants::store::latest(&mut conn, user).await?;
    drop(conn);
    let Some((container, pool)) = tenant.and_then(|t| Some((t.container_id?, t.pool))) else {
        return Err(ApiError::NotFound(
            "This workspace has no container now: its logs went with it when it stopped."
                .to_owned(),
        ));
    };
    let written = tenants
        .driver(&pool)
        .logs(&container, lines)
        .await
        .map_err(|e| match e {
            crate::tenants::orchestrator::OrchestratorError::NotFound(_) => ApiError::NotFound(
                "This workspace has no container now: its logs went with it when it stopped."
                    .to_owned(),
            ),
            other => {
                tracing::warn!(error = %other, "cannot read a workspace's logs");
                ApiError::Unavailable("the container engine")
            }
        })?;
    Ok(WorkspaceLogs {
        user_id: user.0,
        container,
        lines: written
            .iter()
            .map(|line| mask_secrets(&plain_text(line)))
            .collect(),
    })
}

/// A log line without terminal colours (`ESC [ … letter`) or other control characters.
fn plain_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates up to the final letter.
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

/// A log line with anything that looks like a credential masked: the value after a
/// `secret`, `token`, `password` or `key` setting, and the identity header's signature.
fn mask_secrets(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    for word in [
        "secret",
        "token",
        "password",
        "api_key",
        "apikey",
        "x-websplat-identity",
    ] {
        if let Some(at) = lower.find(word) {
            let rest = &line[at + word.len()..];
            if let Some(sep) = rest.find(['=', ':']) {
                let cut = at + word.len() + sep + 1;
                return format!("{} [hidden]", line[..cut].trim_end());
            }
        }
    }
    line.to_owned()
}

#[cfg(test)]
mod tests {
    use super::{mask_secrets, plain_text};

    #[test]
    fn terminal_colours_are_taken_out_of_a_log_line() {
        assert_eq!(
            plain_text("\u{1b}[2m2026-12-02\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m served\r"),
            "2026-12-02  INFO served"
        );
    }

    #[test]
    fn credentials_in_a_log_line_are_masked() {
        assert_eq!(
            mask_secrets("WEBSPLAT_TENANT_SECRET=abc123 started"),
            "WEBSPLAT_TENANT_SECRET= [hidden]"
        );
        assert_eq!(mask_secrets("{\"token\": \"xyz\"}"), "{\"token\": [hidden]");
        assert_eq!(
            mask_secrets("listening on 0.0.0.0:8080"),
            "listening on 0.0.0.0:8080"
        );
    }
}
