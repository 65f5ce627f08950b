//! Users as admins see them: search with pagination, one user in full, disable and enable.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::authz::roles;
use crate::error::ApiError;
use crate::schema::users;
use crate::users::{Identity, User, UserId};

/// A user in the admin's list.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSummary {
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    pub display_name: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub access_level: String,
    /// Roles held besides `member`.
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    /// Users matching the search, over all pages.
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// One user in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserSummary,
    pub email_verified: bool,
    pub updated_at: DateTime<Utc>,
    pub identities: Vec<Identity>,
    /// Live browser sessions.
    pub sessions: usize,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Matches names, e-mail addresses and ids (case-insensitive, substring).
    pub q: Option<String>,
    /// Only users with this access level.
    pub access_level: Option<String>,
    /// Only disabled (`true`) or enabled (`false`) users.
    pub disabled: Option<bool>,
    /// From 1 (default 1).
    pub page: Option<i64>,
    /// 1 to 200 (default 50).
    pub per_page: Option<i64>,
}

pub fn summary(user: User, roles: Vec<String>) -> UserSummary {
    UserSummary {
        id: user.id,
        display_name: user.display_name,
        email: user.email,
        created_at: user.created_at,
        disabled_at: user.disabled_at,
        access_level: user.access_level,
        roles,
    }
}

pub async fn search(conn: &mut AsyncPgConnection, q: &UserQuery) -> Result<UserPage, ApiError> {
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(50);
    if !(1..=1_000_000).contains(&page) {
        return Err(ApiError::validation("page", "page starts at 1"));
    }
    if !(1..=200).contains(&per_page) {
        return Err(ApiError::validation(
            "per_page",
            "per_page must be 1 to 200",
        ));
    }
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > 200) {
        return Err(ApiError::validation(
            "q",
            "the search is at most 200 characters",
        ));
    }
    let filtered = || {
        let mut query = users::table.into_boxed();
        if let Some(text) = text {
            let escaped = crate::db::escape_like(text);
            let pattern = format!("%{escaped}%");
            query = query.filter(
                users::display_name
                    .ilike(pattern.clone())
                    .or(users::email.ilike(pattern.clone()))
                    .or(
                        diesel::dsl::sql::<diesel::sql_types::Bool>("users.id::text ILIKE ")
                            .bind::<diesel::sql_types::Text, _>(pattern),
                    ),
            );
        }
        if let Some(level) = &q.access_level {
            query = query.filter(users::access_level.eq(level.clone()));
        }
        match q.disabled {
            Some(true) => query = query.filter(users::disabled_at.is_not_null()),
            Some(false) => query = query.filter(users::disabled_at.is_null()),
            None => {}
        }
        query
    };
    let total: i64 = filtered().count().get_result(conn).await?;
    let found: Vec<User> = filtered()
        .order((users::created_at.desc(), users::id.asc()))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(User::as_select())
        .load(conn)
        .await?;
    let ids: Vec<UserId> = found.iter().map(|u| u.id).collect();
    let mut held = roles::of_users(conn, &ids).await?;
    Ok(UserPage {
        users: found
            .into_iter()
            .map(|u| {
                let r = held.remove(&u.id).unwrap_or_default();
                summary(u, r)
            })
            .collect(),
        total,
        page,
        per_page,
    })
}

pub async fn require(conn: &mut AsyncPgConnection, id: UserId) -> Result<User, ApiError> {
    crate::users::find(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no user {id}")))
}

/// Disables or enables an account, in one transaction holding the roles lock, so the last
/// admin cannot be disabled. Returns false when it already was in that state.
pub async fn set_disabled(
    conn: &mut AsyncPgConnection,
    id: UserId,
    disabled: bool,
) -> Result<bool, ApiError> {
    conn.transaction(async move |conn| {
        roles::lock(conn).await?;
        let user = require(conn, id).await?;
        if user.is_disabled() == disabled {
            return Ok(false);
        }
        if disabled {
            roles::ensure_not_last_admin(conn, id, "disable this account").await?;
        }
        let now = Utc::now();
        diesel::update(users::table.find(id))
            .set((
                users::disabled_at.eq(disabled.then_some(now)),
                users::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(true)
    })
    .await
}

/// Deletes an account and everything of it in PostgreSQL (identities, credentials, tokens,
/// workspace and tenant rows go with it; its roles are removed). The last admin cannot be
/// deleted. Returns the deleted user.
pub async fn delete(conn: &mut AsyncPgConnection, id: UserId) -> Result<User, ApiError> {
    conn.transaction(async move |conn| {
        roles::lock(conn).await?;
        let user = require(conn, id).await?;
        roles::ensure_not_last_admin(conn, id, "delete this account").await?;
        diesel::delete(
            crate::schema::casbin_rule::table
                .filter(crate::schema::casbin_rule::ptype.eq("g"))
                .filter(crate::schema::casbin_rule::v0.eq(crate::authz::subject(id))),
        )
        .execute(conn)
        .await?;
        diesel::delete(users::table.find(id)).execute(conn).await?;
        Ok(user)
    })
    .await
}
