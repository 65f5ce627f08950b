//! Access levels: named profiles of how much of the product and the machine a user gets —
//! workspace features, CPU and memory of their container, storage, upload size, AI budget,
//! request rates and idle timeout. Every user has exactly one. Stored in PostgreSQL and
//! managed by admins; the request rate limits are applied by the authorization guard, the
//! container limits by the tenants' orchestrator.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::schema::{access_levels, users};
use crate::users::UserId;

/// Workspace features an access level can turn on.
pub const FEATURES: [&str; 10] = [
    "sites",
    "documents",
    "chat",
    "seo",
    "export",
    "publish",
    "analytics",
    "agents",
    "generation",
    "web_search",
];

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = access_levels, check_for_backend(diesel::pg::Pg))]
pub struct AccessLevel {
    pub name: String,
    pub description: String,
    /// Workspace features that are on.
    pub features: Vec<String>,
    /// CPU for the user's container, in thousandths of a core.
    pub cpu_millicores: i32,
    /// Memory (and memory plus swap) for the user's container.
    pub memory_mib: i32,
    /// Storage quota of the user's workspace.
    pub storage_mib: i32,
    /// Largest single upload into the workspace.
    pub max_upload_mib: i32,
    /// AI tokens the user may spend per day.
    pub ai_tokens_per_day: i64,
    /// API reads (GET) per minute, per user.
    pub read_requests_per_minute: i32,
    /// API writes (POST, PUT, DELETE) per minute, per user.
    pub write_requests_per_minute: i32,
    /// A workspace with no traffic for this long is stopped.
    pub idle_timeout_seconds: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// AI gateway calls per minute, per user.
    pub ai_requests_per_minute: i32,
    /// AI tokens per minute, per user (what calls may use as they start, then what they used).
    pub ai_tokens_per_minute: i64,
    /// Workspaces of this level's users running (or on their way) at once, at most; none:
    /// only the pool's limit applies.
    pub max_running_workspaces: Option<i32>,
}

/// What an admin sends to create or change an access level (every field, always).
#[derive(Debug, Clone, Deserialize, ToSchema, AsChangeset, Insertable)]
#[diesel(table_name = access_levels, treat_none_as_null = true)]
#[serde(deny_unknown_fields)]
pub struct AccessLevelInput {
    #[serde(default)]
    pub description: String,
    pub features: Vec<String>,
    pub cpu_millicores: i32,
    pub memory_mib: i32,
    pub storage_mib: i32,
    pub max_upload_mib: i32,
    pub ai_tokens_per_day: i64,
    pub read_requests_per_minute: i32,
    pub write_requests_per_minute: i32,
    pub idle_timeout_seconds: i32,
    /// Optional (older clients send none): 60 calls a minute.
    #[serde(default = "default_ai_requests_per_minute")]
    pub ai_requests_per_minute: i32,
    /// Optional (older clients send none): 100 000 tokens a minute.
    #[serde(default = "default_ai_tokens_per_minute")]
    pub ai_tokens_per_minute: i64,
    /// Optional: no cap of the level's own (only the pool's limit).
    #[serde(default)]
    pub max_running_workspaces: Option<i32>,
}

fn default_ai_requests_per_minute() -> i32 {
    60
}

fn default_ai_tokens_per_minute() -> i64 {
    100_000
}

/// An access level's name (see [`super::parse_name`]).
pub fn parse_name(raw: &str) -> Result<String, ApiError> {
    super::parse_name(raw, "name", "an access level")
}

/// How many times its largest upload a workspace's memory must be: the runtime holds the
/// files of one upload (up to four times the largest) in memory while it checks them, and
/// a document whole while it extracts its text. A smaller memory would let an upload the
/// level allows run the workspace out of memory.
const MEMORY_PER_UPLOAD: i64 = 8;

/// The CPU an access level may give a container, in millicores.
const CPU_MILLICORES: (i32, i32) = (100, 64_000);
/// The memory an access level may give a container, in MiB.
const MEMORY_MIB: (i32, i32) = (64, 262_144);

/// An access level's CPU as a container limit (millicores); a value outside the bounds is
/// refused, never replaced.
pub fn cpu_limit(millicores: i32) -> Result<u32, ApiError> {
    let (min, max) = CPU_MILLICORES;
    in_range("cpu_millicores", millicores, min, max, " millicores")?;
    u32::try_from(millicores)
        .map_err(|_| ApiError::validation("cpu_millicores", "The CPU must not be negative"))
}

/// An access level's memory as a container limit (bytes); a value outside the bounds is
/// refused, never replaced.
pub fn memory_limit_bytes(mib: i32) -> Result<i64, ApiError> {
    let (min, max) = MEMORY_MIB;
    in_range("memory_mib", mib, min, max, " MiB")?;
    Ok(i64::from(mib) * 1024 * 1024)
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    field: &'static str,
    value: T,
    min: T,
    max: T,
    unit: &str,
) -> Result<(), ApiError> {
    if value < min || value > max {
        return Err(ApiError::validation(
            field,
            format!("{} must be between {min} and {max}{unit}", label(field)),
        ));
    }
    Ok(())
}

/// A limit's name in a sentence for people.
fn label(field: &str) -> &'static str {
    match field {
        "cpu_millicores" => "The CPU",
        "memory_mib" => "The memory",
        "storage_mib" => "The storage",
        "max_upload_mib" => "The largest upload",
        "ai_tokens_per_day" => "The AI tokens per day",
        "read_requests_per_minute" => "The reads per minute",
        "write_requests_per_minute" => "The writes per minute",
        "idle_timeout_seconds" => "The idle timeout",
        "max_running_workspaces" => "The running workspaces at most",
        _ => "The value",
    }
}

impl AccessLevelInput {
    /// Checks every field; the same bounds as the database's, with messages for people.
    pub fn validate(mut self) -> Result<Self, ApiError> {
        if self.description.chars().count() > 200 || self.description.chars().any(char::is_control)
        {
            return Err(ApiError::validation(
                "description",
                "the description is at most 200 printable characters",
            ));
        }
        for feature in &self.features {
            if !FEATURES.contains(&feature.as_str()) {
                return Err(ApiError::validation(
                    "features",
                    format!(
                        "{feature:?} is not a workspace feature; known features: {}",
                        FEATURES.join(", ")
                    ),
                ));
            }
        }
        self.features.sort();
        self.features.dedup();
        cpu_limit(self.cpu_millicores)?;
        memory_limit_bytes(self.memory_mib)?;
        in_range("storage_mib", self.storage_mib, 16, 10_485_760, " MiB")?;
        in_range("max_upload_mib", self.max_upload_mib, 1, 10_240, " MiB")?;
        let needed = i64::from(self.max_upload_mib) * MEMORY_PER_UPLOAD;
        if i64::from(self.memory_mib) < needed {
            return Err(ApiError::validation(
                "max_upload_mib",
                format!(
                    "uploads of up to {} MiB need at least {needed} MiB of memory: a workspace \
                     holds a document whole while it checks and indexes it (raise memory_mib \
                     or lower max_upload_mib)",
                    self.max_upload_mib
                ),
            ));
        }
        in_range("ai_tokens_per_day", self.ai_tokens_per_day, 0, i64::MAX, "")?;
        in_range(
            "read_requests_per_minute",
            self.read_requests_per_minute,
            1,
            1_000_000,
            "",
        )?;
        in_range(
            "write_requests_per_minute",
            self.write_requests_per_minute,
            1,
            1_000_000,
            "",
        )?;
        in_range(
            "ai_requests_per_minute",
            self.ai_requests_per_minute,
            1,
            1_000_000,
            "",
        )?;
        in_range(
            "ai_tokens_per_minute",
            self.ai_tokens_per_minute,
            1,
            i64::MAX,
            "",
        )?;
        if let Some(cap) = self.max_running_workspaces {
            in_range("max_running_workspaces", cap, 1, 1_000_000, "")?;
        }
        in_range(
            "idle_timeout_seconds",
            self.idle_timeout_seconds,
            60,
            604_800,
            " seconds",
        )?;
        Ok(self)
    }
}

/// An access level and how many users have it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLevelSummary {
    #[serde(flatten)]
    pub level: AccessLevel,
    pub users: i64,
}

pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<AccessLevelSummary>> {
    let levels: Vec<AccessLevel> = access_levels::table
        .order(access_levels::name.asc())
        .select(AccessLevel::as_select())
        .load(conn)
        .await?;
    let counts: Vec<(String, i64)> = users::table
        .group_by(users::access_level)
        .select((users::access_level, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    Ok(levels
        .into_iter()
        .map(|level| {
            let users = counts
                .iter()
                .find(|(name, _)| *name == level.name)
                .map_or(0, |(_, n)| *n);
            AccessLevelSummary { level, users }
        })
        .collect())
}

pub async fn get(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<AccessLevel>> {
    access_levels::table
        .find(name)
        .select(AccessLevel::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn require(conn: &mut AsyncPgConnection, name: &str) -> Result<AccessLevel, ApiError> {
    get(conn, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no access level named {name:?}")))
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    name: &str,
    input: &AccessLevelInput,
) -> Result<AccessLevel, ApiError> {
    let result = diesel::insert_into(access_levels::table)
        .values((access_levels::name.eq(name), input))
        .returning(AccessLevel::as_returning())
        .get_result(conn)
        .await;
    match result {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Err(
            ApiError::Conflict(format!("an access level named {name:?} already exists")),
        ),
        other => Ok(other?),
    }
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    name: &str,
    input: &AccessLevelInput,
) -> Result<AccessLevel, ApiError> {
    diesel::update(access_levels::table.find(name))
        .set((input, access_levels::updated_at.eq(Utc::now())))
        .returning(AccessLevel::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or_else(|| ApiError::NotFound(format!("there is no access level named {name:?}")))
}

/// Deletes an access level nobody has and that is not the default for new users.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    name: &str,
    default_for_new_users: &str,
) -> Result<(), ApiError> {
    if name == default_for_new_users {
        return Err(ApiError::Conflict(format!(
            "{name:?} is the access level new users get (WEBSPLAT_DEFAULT_ACCESS_LEVEL); choose another default first"
        )));
    }
    let result = diesel::delete(access_levels::table.find(name))
        .execute(conn)
        .await;
    match result {
        Ok(0) => Err(ApiError::NotFound(format!(
            "there is no access level named {name:?}"
        ))),
        Ok(_) => Ok(()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
            Err(ApiError::Conflict(format!(
                "users still have the access level {name:?}; give them another one first"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives a user an access level; returns the one they had before.
pub async fn assign(
    conn: &mut AsyncPgConnection,
    user: UserId,
    name: &str,
) -> Result<String, ApiError> {
    require(conn, name).await?;
    let previous: Option<String> = users::table
        .find(user)
        .select(users::access_level)
        .first(conn)
        .await
        .optional()?;
    let previous =
        previous.ok_or_else(|| ApiError::NotFound(format!("there is no user {user}")))?;
    diesel::update(users::table.find(user))
        .set((
            users::access_level.eq(name),
            users::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(previous)
}
