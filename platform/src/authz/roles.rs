//! Roles: which exist, what each may do (casbin `p` rules) and who holds them (`g` rules).
//! Every change runs in one transaction holding a PostgreSQL advisory lock, so two admins
//! acting at once cannot, between them, remove the last admin. After a change the caller
//! asks every replica to reload (`Authz::changed`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::adapter::{self, Rule};
use super::subject;
use crate::error::ApiError;
use crate::schema::{casbin_rule, roles, users};
use crate::users::UserId;

pub const ADMIN: &str = "admin";
pub const MEMBER: &str = "member";
/// The subject of requests without a user; not a role anyone can hold.
pub const ANONYMOUS: &str = "anonymous";

const METHODS: [&str; 6] = ["*", "GET", "POST", "PUT", "PATCH", "DELETE"];

/// Serializes every change of roles and their holders across replicas.
pub async fn lock(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(72010001)")
        .execute(conn)
        .await
        .map(drop)
}

/// One thing a role may do: a route pattern (`*` matches the rest), a method (or `*`), and
/// whether it applies to what the user owns (`own`) or to everything (`any`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub object: String,
    pub action: String,
    pub scope: String,
}

impl Permission {
    fn validate(&self) -> Result<(), ApiError> {
        let object_ok = self.object.starts_with('/')
            && self.object.len() <= 200
            && !self
                .object
                .chars()
                .any(|c| c == ',' || c.is_whitespace() || c.is_control());
        if !object_ok {
            return Err(ApiError::validation(
                "permissions",
                format!(
                    "{:?} is not a route pattern: start with '/', at most 200 characters, no commas or spaces",
                    self.object
                ),
            ));
        }
        if !METHODS.contains(&self.action.as_str()) {
            return Err(ApiError::validation(
                "permissions",
                format!(
                    "{:?} is not a method; use one of {}",
                    self.action,
                    METHODS.join(", ")
                ),
            ));
        }
        if !matches!(self.scope.as_str(), "own" | "any") {
            return Err(ApiError::validation(
                "permissions",
                format!("{:?} is not a scope; use own or any", self.scope),
            ));
        }
        Ok(())
    }

    fn rule(&self, role: &str) -> Rule {
        Rule::new("p", &[role, &self.object, &self.action, &self.scope])
    }
}

/// A role as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleInfo {
    pub name: String,
    pub description: String,
    /// Built-in roles cannot be deleted.
    pub builtin: bool,
    /// Roles whose permissions this one has too.
    pub inherits: Vec<String>,
    pub permissions: Vec<Permission>,
    /// How many users hold it directly (`member`: every user).
    pub holders: i64,
    pub created_at: DateTime<Utc>,
}

/// What an admin sends to create or redefine a role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<Permission>,
}

/// A role's name: 1 to 32 lowercase letters, digits, `-` or `_`, starting with a letter.
pub fn parse_name(raw: &str) -> Result<String, ApiError> {
    super::parse_name(raw, "role", "a role")?;
    if raw == ANONYMOUS {
        return Err(ApiError::validation(
            "role",
            "\"anonymous\" names requests without a user; it cannot be a role",
        ));
    }
    Ok(raw.to_owned())
}

async fn role_exists(conn: &mut AsyncPgConnection, role: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(roles::table.find(role)))
        .get_result(conn)
        .await
}

async fn user_exists(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.find(user)))
        .get_result(conn)
        .await
}

/// The roles a user holds directly (`member` is implied for everyone and not listed).
pub async fn of_user(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<Vec<String>> {
    casbin_rule::table
        .filter(casbin_rule::ptype.eq("g"))
        .filter(casbin_rule::v0.eq(subject(user)))
        .order(casbin_rule::v1.asc())
        .select(casbin_rule::v1)
        .load(conn)
        .await
}

/// The roles of several users at once.
pub async fn of_users(
    conn: &mut AsyncPgConnection,
    ids: &[UserId],
) -> QueryResult<HashMap<UserId, Vec<String>>> {
    let subjects: Vec<String> = ids.iter().map(|id| subject(*id)).collect();
    let rows: Vec<(String, String)> = casbin_rule::table
        .filter(casbin_rule::ptype.eq("g"))
        .filter(casbin_rule::v0.eq_any(&subjects))
        .order(casbin_rule::v1.asc())
        .select((casbin_rule::v0, casbin_rule::v1))
        .load(conn)
        .await?;
    let mut out: HashMap<UserId, Vec<String>> = HashMap::new();
    for (sub, role) in rows {
        if let Some(id) = super::user_of(&sub) {
            out.entry(id).or_default().push(role);
        }
    }
    Ok(out)
}

/// Users holding `admin` whose accounts are not disabled.
pub async fn active_admins(conn: &mut AsyncPgConnection) -> QueryResult<Vec<UserId>> {
    let subjects: Vec<String> = casbin_rule::table
        .filter(casbin_rule::ptype.eq("g"))
        .filter(casbin_rule::v1.eq(ADMIN))
        .filter(casbin_rule::v0.like("user:%"))
        .select(casbin_rule::v0)
        .load(conn)
        .await?;
    let ids: Vec<UserId> = subjects.iter().filter_map(|s| super::user_of(s)).collect();
    users::table
        .filter(users::id.eq_any(ids))
        .filter(users::disabled_at.is_null())
        .select(users::id)
        .load(conn)
        .await
}

/// Refuses a change that would leave no active admin: `user` is about to lose admin rights.
pub async fn ensure_not_last_admin(
    conn: &mut AsyncPgConnection,
    user: UserId,
    what: &str,
) -> Result<(), ApiError> {
    let admins = active_admins(conn).await?;
    if admins == [user] {
        return Err(ApiError::Conflict(format!(
            "cannot {what}: this is the last admin, and the platform must keep one; make another user admin first"
        )));
    }
    Ok(())
}

/// Grants a role. Run inside a transaction that holds [`lock`]. Returns false if the user
/// already had it.
pub async fn grant(
    conn: &mut AsyncPgConnection,
    user: UserId,
    role: &str,
) -> Result<bool, ApiError> {
    if role == MEMBER {
        return Err(ApiError::Conflict(
            "every signed-in user is a member already; nothing to grant".to_owned(),
        ));
    }
    if !role_exists(conn, role).await? {
        return Err(ApiError::NotFound(format!(
            "there is no role named {role:?}"
        )));
    }
    if !user_exists(conn, user).await? {
        return Err(ApiError::NotFound(format!("there is no user {user}")));
    }
    let added = adapter::insert(conn, &[Rule::new("g", &[subject(user), role.to_owned()])]).await?;
    Ok(added == 1)
}

/// Removes a role. Run inside a transaction that holds [`lock`]; refuses to remove the last
/// admin.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    user: UserId,
    role: &str,
) -> Result<(), ApiError> {
    if role == MEMBER {
        return Err(ApiError::Conflict(
            "every signed-in user is a member; to stop a user, disable the account".to_owned(),
        ));
    }
    if !user_exists(conn, user).await? {
        return Err(ApiError::NotFound(format!("there is no user {user}")));
    }
    if role == ADMIN {
        ensure_not_last_admin(conn, user, "remove the admin role").await?;
    }
    let removed = adapter::delete(conn, &Rule::new("g", &[subject(user), role.to_owned()])).await?;
    if removed == 0 {
        return Err(ApiError::NotFound(format!(
            "this user does not hold the role {role:?}"
        )));
    }
    Ok(())
}

/// Every role with its permissions, inheritance and number of holders.
pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<RoleInfo>> {
    let defined: Vec<(String, String, bool, DateTime<Utc>)> = roles::table
        .order(roles::name.asc())
        .select((
            roles::name,
            roles::description,
            roles::builtin,
            roles::created_at,
        ))
        .load(conn)
        .await?;
    let rules = adapter::load_all(conn).await?;
    let users_total: i64 = users::table.count().get_result(conn).await?;
    Ok(defined
        .into_iter()
        .map(|(name, description, builtin, created_at)| {
            let permissions = rules
                .iter()
                .filter(|r| r.ptype == "p" && r.v0 == name)
                .map(|r| Permission {
                    object: r.v1.clone(),
                    action: r.v2.clone(),
                    scope: r.v3.clone(),
                })
                .collect();
            let inherits = rules
                .iter()
                .filter(|r| r.ptype == "g" && r.v0 == name)
                .map(|r| r.v1.clone())
                .collect();
            let holders = if name == MEMBER {
                users_total
            } else {
                rules
                    .iter()
                    .filter(|r| r.ptype == "g" && r.v1 == name && r.v0.starts_with("user:"))
                    .count() as i64
            };
            RoleInfo {
                name,
                description,
                builtin,
                inherits,
                permissions,
                holders,
                created_at,
            }
        })
        .collect())
}

/// Creates a role or replaces its description and permissions. Run inside a transaction
/// that holds [`lock`]. `admin`'s permissions are fixed, so the platform can always be
/// administered. Returns true when the role is new.
pub async fn define(
    conn: &mut AsyncPgConnection,
    role: &str,
    input: &RoleInput,
) -> Result<bool, ApiError> {
    if role == ADMIN {
        return Err(ApiError::Conflict(
            "the admin role's permissions are fixed, so the platform can always be administered"
                .to_owned(),
        ));
    }
    if input.description.chars().count() > 200 || input.description.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "description",
            "the description is at most 200 printable characters",
        ));
    }
    if input.permissions.len() > 200 {
        return Err(ApiError::validation(
            "permissions",
            "a role has at most 200 permissions",
        ));
    }
    for p in &input.permissions {
        p.validate()?;
    }
    let existed = role_exists(conn, role).await?;
    diesel::insert_into(roles::table)
        .values((
            roles::name.eq(role),
            roles::description.eq(&input.description),
        ))
        .on_conflict(roles::name)
        .do_update()
        .set(roles::description.eq(&input.description))
        .execute(conn)
        .await?;
    diesel::delete(
        casbin_rule::table
            .filter(casbin_rule::ptype.eq("p"))
            .filter(casbin_rule::v0.eq(role)),
    )
    .execute(conn)
    .await?;
    let rules: Vec<Rule> = input.permissions.iter().map(|p| p.rule(role)).collect();
    adapter::insert(conn, &rules).await?;
    Ok(!existed)
}

/// Deletes a role that is not built in: its permissions go, and every holder loses it.
/// Run inside a transaction that holds [`lock`]. Returns how many users held it.
pub async fn delete(conn: &mut AsyncPgConnection, role: &str) -> Result<usize, ApiError> {
    let builtin: Option<bool> = roles::table
        .find(role)
        .select(roles::builtin)
        .first(conn)
        .await
        .optional()?;
    match builtin {
        None => {
            return Err(ApiError::NotFound(format!(
                "there is no role named {role:?}"
            )));
        }
        Some(true) => {
            return Err(ApiError::Conflict(format!(
                "{role:?} is a built-in role and cannot be deleted; remove its holders or permissions instead"
            )));
        }
        Some(false) => {}
    }
    let holders = diesel::delete(
        casbin_rule::table
            .filter(casbin_rule::ptype.eq("g"))
            .filter(casbin_rule::v1.eq(role)),
    )
    .execute(conn)
    .await?;
    diesel::delete(casbin_rule::table.filter(casbin_rule::v0.eq(role)))
        .execute(conn)
        .await?;
    diesel::delete(roles::table.find(role))
        .execute(conn)
        .await?;
    Ok(holders)
}
