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

use crate::authz::access_levels::AccessLevel;
use crate::schema::{access_levels, identities, users};

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

/// What a new account starts with: the default access level, and the admin role if its
/// first identity is one of `WEBSPLAT_BOOTSTRAP_ADMINS`.
#[derive(Debug, Clone)]
pub struct Onboarding {
    pub access_level: String,
    /// `(provider, subject)`; for local accounts the subject is the e-mail address.
    pub bootstrap_admins: Vec<(String, String)>,
}

impl Onboarding {
    /// Whether an account created with this identity becomes admin.
    pub fn is_bootstrap_admin(&self, provider: &str, subject: &str) -> bool {
        self.bootstrap_admins
            .iter()
            .any(|(p, s)| p == provider && s == subject)
    }

    /// Inserts `user` with the default access level and, for a bootstrap admin, grants admin
    /// (and audits it) in the caller's transaction. Returns whether admin was granted.
    pub async fn create_user(
        &self,
        conn: &mut AsyncPgConnection,
        user: (UserId, &str, Option<&str>, bool),
        identity: (&str, &str),
    ) -> QueryResult<(User, bool)> {
        let (id, display_name, email, email_verified) = user;
        let created = diesel::insert_into(users::table)
            .values((
                users::id.eq(id),
                users::display_name.eq(display_name),
                users::email.eq(email),
                users::email_verified.eq(email_verified),
                users::access_level.eq(&self.access_level),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await?;
        let admin = self.is_bootstrap_admin(identity.0, identity.1);
        if admin {
            crate::authz::adapter::insert(
                conn,
                &[crate::authz::adapter::Rule::new(
                    "g",
                    &[
                        crate::authz::subject(id),
                        crate::authz::roles::ADMIN.to_owned(),
                    ],
                )],
            )
            .await?;
            crate::audit::Audit::command_line()
                .as_user(id, email.unwrap_or(display_name))
                .record(
                    conn,
                    crate::audit::Action::RoleGrant,
                    Some(&crate::audit::user_target(id)),
                    crate::audit::Outcome::Success,
                    serde_json::json!({
                        "role": "admin",
                        "reason": "WEBSPLAT_BOOTSTRAP_ADMINS names this identity",
                        "provider": identity.0,
                    }),
                )
                .await?;
        }
        Ok((created, admin))
    }
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

/// A user with their access level, in one query.
pub async fn find_with_access(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> QueryResult<Option<(User, AccessLevel)>> {
    users::table
        .inner_join(access_levels::table)
        .filter(users::id.eq(id))
        .select((User::as_select(), AccessLevel::as_select()))
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

/// Inserts a new user with one identity, in one transaction. Returns whether the new user
/// was made admin by `WEBSPLAT_BOOTSTRAP_ADMINS`.
pub async fn create_with_identity(
    conn: &mut AsyncPgConnection,
    profile: &ExternalProfile,
    onboarding: &Onboarding,
) -> QueryResult<(User, bool)> {
    let profile = profile.clone();
    let onboarding = onboarding.clone();
    conn.transaction(async move |conn| {
        let id = UserId::new();
        let name = profile.display_name();
        let created = onboarding
            .create_user(
                conn,
                (id, &name, profile.email.as_deref(), profile.email_verified),
                (&profile.provider, &profile.subject),
            )
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
        Ok(created)
    })
    .await
}

/// The user behind (provider, subject), created on first sign-in. The identity's e-mail and
/// last sign-in time are refreshed; the user's chosen display name is left alone.
/// Also returns whether the account was just created as a bootstrap admin.
pub async fn sign_in_with_identity(
    conn: &mut AsyncPgConnection,
    profile: &ExternalProfile,
    onboarding: &Onboarding,
) -> QueryResult<(User, bool)> {
    if let Some(user) = touch_identity(conn, profile).await? {
        return Ok((user, false));
    }
    match create_with_identity(conn, profile, onboarding).await {
        Ok(created) => Ok(created),
        // Two first sign-ins raced; the other one created the account.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            let user = touch_identity(conn, profile)
                .await?
                .ok_or(DieselError::NotFound)?;
            Ok((user, false))
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
