//! Users and their identities. An identity is keyed by (provider, subject) and nothing else:
//! an e-mail address never links a sign-in to an existing account (see the README,
//! "Identities and e-mail"). Queries live here; handlers never build SQL.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
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
    fn display_name(&self) -> String {
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

pub async fn identities_of(conn: &mut AsyncPgConnection, id: UserId) -> QueryResult<Vec<Identity>> {
    identities::table
        .filter(identities::user_id.eq(id))
        .order(identities::created_at.asc())
        .select(Identity::as_select())
        .load(conn)
        .await
}

/// Inserts a new user with one identity, in one transaction.
pub async fn create_with_identity(
    conn: &mut AsyncPgConnection,
    profile: &ExternalProfile,
) -> QueryResult<User> {
    let profile = profile.clone();
    conn.transaction(async move |conn| {
        let id = UserId::new();
        let user = diesel::insert_into(users::table)
            .values((
                users::id.eq(id),
                users::display_name.eq(profile.display_name()),
                users::email.eq(&profile.email),
                users::email_verified.eq(profile.email_verified),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await?;
        diesel::insert_into(identities::table)
            .values((
                identities::id.eq(Uuid::new_v4()),
                identities::user_id.eq(id),
                identities::provider.eq(&profile.provider),
                identities::subject.eq(&profile.subject),
                identities::email.eq(&profile.email),
                identities::last_login_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        Ok(user)
    })
    .await
}

/// The user behind (provider, subject), created on first sign-in. The identity's e-mail and
/// last sign-in time are refreshed; the user's chosen display name is left alone.
pub async fn sign_in_with_identity(
    conn: &mut AsyncPgConnection,
    profile: &ExternalProfile,
) -> QueryResult<User> {
    if let Some(user) = touch_identity(conn, profile).await? {
        return Ok(user);
    }
    match create_with_identity(conn, profile).await {
        Ok(user) => Ok(user),
        // Two first sign-ins raced; the other one created the account.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            touch_identity(conn, profile)
                .await?
                .ok_or(DieselError::NotFound)
        }
        Err(e) => Err(e),
    }
}

async fn touch_identity(
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
