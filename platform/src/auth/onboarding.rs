//! What a new account starts with: the default access level, and the admin role when its
//! first identity is one of `WEBSPLAT_BOOTSTRAP_ADMINS` (granted and audited in the same
//! transaction as the account). Also the first sign-in with an external identity, which
//! creates the account. Never grants anything to an account that already exists.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::audit::{self, Action, Audit, Outcome};
use crate::authz::{self, adapter, roles};
use crate::users::{self, ExternalProfile, User, UserId};

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
    ) -> diesel::QueryResult<(User, bool)> {
        let (id, display_name, email, _) = user;
        let created = users::insert(conn, user, &self.access_level).await?;
        let admin = self.is_bootstrap_admin(identity.0, identity.1);
        if admin {
            adapter::insert(
                conn,
                &[adapter::Rule::new(
                    "g",
                    &[authz::subject(id), roles::ADMIN.to_owned()],
                )],
            )
            .await?;
            Audit::command_line()
                .as_user(id, email.unwrap_or(display_name))
                .record(
                    conn,
                    Action::RoleGrant,
                    Some(&audit::user_target(id)),
                    Outcome::Success,
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

/// Inserts a new user with one identity, in one transaction. Returns whether the new user
/// was made admin by `WEBSPLAT_BOOTSTRAP_ADMINS`.
pub async fn create_with_identity(
    conn: &mut AsyncPgConnection,
    profile: &ExternalProfile,
    onboarding: &Onboarding,
) -> diesel::QueryResult<(User, bool)> {
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
        users::insert_identity(conn, id, &profile).await?;
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
) -> diesel::QueryResult<(User, bool)> {
    if let Some(user) = users::touch_identity(conn, profile).await? {
        return Ok((user, false));
    }
    match create_with_identity(conn, profile, onboarding).await {
        Ok(created) => Ok(created),
        // Two first sign-ins raced; the other one created the account.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            let user = users::touch_identity(conn, profile)
                .await?
                .ok_or(DieselError::NotFound)?;
            Ok((user, false))
        }
        Err(e) => Err(e),
    }
}
