//! Users and their identities. An identity is keyed by (provider, subject) and nothing else:
//! an e-mail address never links a sign-in to an existing account (see the README,
//! "Identities and e-mail"). Queries live here; handlers never build SQL. What a new
//! account starts with (access level, bootstrap admin) is `auth::onboarding`'s business:
//! this module knows nothing of roles, policy or the audit log.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::schema::{identities, users};

mod id;
pub use id::UserId;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: UserId,
    pub display_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// The name of the user's access level.
    pub access_level: String,
}

impl User {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = identities, check_for_backend(diesel::pg::Pg))]
pub struct Identity {
    #[serde(skip)]
    pub user_id: UserId,
    /// The provider id (`local`, `github` or a configured OIDC provider).
    pub provider: String,
    #[serde(skip)]
    pub subject: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// What an identity provider told us about the person signing in.
#[derive(Debug, Clone)]
pub struct ExternalProfile {
    pub provider: String,
    pub subject: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
}

/// Longest display name kept; longer names from a provider are cut, never refused.
pub const MAX_DISPLAY_NAME: usize = 128;

impl ExternalProfile {
    /// The name a new account gets: the provider's, else the e-mail, else the subject.
    pub fn display_name(&self) -> String {
        let name = self
            .display_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .or(self.email.as_deref())
            .unwrap_or(&self.subject);
        name.chars().take(MAX_DISPLAY_NAME).collect()
    }
}

pub async fn find(conn: &mut AsyncPgConnection, id: UserId) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// All users, and the disabled ones.
pub async fn counts(conn: &mut AsyncPgConnection) -> QueryResult<(i64, i64)> {
    let total = users::table.count().get_result(conn).await?;
    let disabled = users::table
        .filter(users::disabled_at.is_not_null())
        .count()
        .get_result(conn)
        .await?;
    Ok((total, disabled))
}

/// Enabled users per access level.
pub async fn enabled_by_access_level(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Vec<(String, i64)>> {
    users::table
        .filter(users::disabled_at.is_null())
        .group_by(users::access_level)
        .select((users::access_level, diesel::dsl::count_star()))
        .load(conn)
        .await
}

pub async fn identities_of(conn: &mut AsyncPgConnection, id: UserId) -> QueryResult<Vec<Identity>> {
    identities::table
        .filter(identities::user_id.eq(id))
        .order(identities::created_at.asc())
        .select(Identity::as_select())
        .load(conn)
        .await
}

/// Inserts a user (no identity yet) with the access level `access_level`.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    user: (UserId, &str, Option<&str>, bool),
    access_level: &str,
) -> QueryResult<User> {
    let (id, display_name, email, email_verified) = user;
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::display_name.eq(display_name),
            users::email.eq(email),
            users::email_verified.eq(email_verified),
            users::access_level.eq(access_level),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Gives `user` the identity `profile` describes, signed in now.
pub async fn insert_identity(
    conn: &mut AsyncPgConnection,
    user: UserId,
    profile: &ExternalProfile,
) -> QueryResult<()> {
    diesel::insert_into(identities::table)
        .values((
            identities::id.eq(Uuid::new_v4()),
            identities::user_id.eq(user),
            identities::provider.eq(&profile.provider),
            identities::subject.eq(&profile.subject),
            identities::email.eq(&profile.email),
            identities::last_login_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The user behind (provider, subject), if any; the identity's e-mail and last sign-in time
/// are refreshed, the user's chosen display name is left alone.
pub async fn touch_identity(
    conn: &mut AsyncPgConnection,
    profile: &ExternalProfile,
) -> QueryResult<Option<User>> {
    let user_id: Option<UserId> = diesel::update(
        identities::table
            .filter(identities::provider.eq(&profile.provider))
            .filter(identities::subject.eq(&profile.subject)),
    )
    .set((
        identities::last_login_at.eq(Utc::now()),
        identities::email.eq(&profile.email),
    ))
    .returning(identities::user_id)
    .get_result(conn)
    .await
    .optional()?;
    match user_id {
        Some(id) => find(conn, id).await,
        None => Ok(None),
    }
}
