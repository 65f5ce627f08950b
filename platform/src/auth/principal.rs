//! Who is calling: a user with their access level and the credential they proved it with
//! (a browser session or an API token). The web layer reads the credential from the request
//! and calls [`resolve`]; disabled accounts are refused here, and their session ends.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::session::{Session, SessionStore};
use crate::authz::access_levels::AccessLevel;
use crate::db;
use crate::error::ApiError;
use crate::schema::{access_levels, users};
use crate::users::{User, UserId};

/// How the request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Session(Session),
    ApiToken(uuid::Uuid),
}

#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub credential: Credential,
    /// The user's access level, read with the user.
    pub access: AccessLevel,
}

impl CurrentUser {
    pub fn session(&self) -> Option<&Session> {
        match &self.credential {
            Credential::Session(s) => Some(s),
            Credential::ApiToken(_) => None,
        }
    }
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

/// The caller behind a valid credential of `user_id`: 401 if the account no longer exists,
/// 403 if it is disabled (and then a session credential ends at once).
pub async fn resolve(
    db: &db::Pool,
    sessions: &SessionStore,
    user_id: UserId,
    credential: Credential,
) -> Result<CurrentUser, ApiError> {
    let mut conn = db.get().await?;
    let (user, access) = find_with_access(&mut conn, user_id)
        .await?
        .ok_or(ApiError::Unauthorized("this account no longer exists"))?;
    if user.is_disabled() {
        if let Credential::Session(s) = &credential {
            sessions.revoke(&s.id_hash, user.id).await?;
        }
        return Err(ApiError::Forbidden("this account is disabled".to_owned()));
    }
    Ok(CurrentUser {
        user,
        credential,
        access,
    })
}
