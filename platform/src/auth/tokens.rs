//! Personal API tokens for programs, sent as `Authorization: Bearer wsp_…`. The secret is
//! shown once at creation; only its SHA-256 is stored, with a short prefix for people to
//! recognise it by. A token acts as its owner; revoked or expired tokens are refused.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::secret::{random_token, sha256};
use crate::error::ApiError;
use crate::schema::api_tokens;
use crate::users::UserId;

pub const TOKEN_PREFIX: &str = "wsp_";
pub const MAX_TOKENS_PER_USER: i64 = 100;
const MAX_EXPIRY_DAYS: u32 = 3650;

/// A token as its owner sees it (never with the secret, which is not stored).
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = api_tokens, check_for_backend(diesel::pg::Pg))]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the token, to recognise it by.
    #[diesel(column_name = token_prefix)]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// 1 to 64 characters, to tell your tokens apart.
    pub name: String,
    /// Days until the token stops working (1 to 3650); omit for a token that does not expire.
    pub expires_in_days: Option<u32>,
}

/// The response to creating a token: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret. Store it now: it cannot be shown again.
    pub token: String,
    #[serde(flatten)]
    pub meta: ApiToken,
}

impl NewToken {
    fn validate(&self) -> Result<(String, Option<DateTime<Utc>>), ApiError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "name",
                "give the token a name of 1 to 64 printable characters",
            ));
        }
        let expires_at = match self.expires_in_days {
            None => None,
            Some(days) if (1..=MAX_EXPIRY_DAYS).contains(&days) => {
                Some(Utc::now() + ChronoDuration::days(i64::from(days)))
            }
            Some(_) => {
                return Err(ApiError::validation(
                    "expires_in_days",
                    format!("expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}, or omitted"),
                ));
            }
        };
        Ok((name.to_owned(), expires_at))
    }
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    owner: UserId,
    new: &NewToken,
) -> Result<CreatedToken, ApiError> {
    let (name, expires_at) = new.validate()?;
    let live: i64 = api_tokens::table
        .filter(api_tokens::user_id.eq(owner))
        .filter(api_tokens::revoked_at.is_null())
        .count()
        .get_result(conn)
        .await?;
    if live >= MAX_TOKENS_PER_USER {
        return Err(ApiError::Conflict(format!(
            "you already have {MAX_TOKENS_PER_USER} tokens; revoke one you no longer use first"
        )));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_token(32));
    let prefix: String = token.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let meta = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(Uuid::new_v4()),
            api_tokens::user_id.eq(owner),
            api_tokens::name.eq(name),
            api_tokens::token_prefix.eq(prefix),
            api_tokens::token_hash.eq(sha256(&token).to_vec()),
            api_tokens::expires_at.eq(expires_at),
        ))
        .returning(ApiToken::as_returning())
        .get_result(conn)
        .await?;
    Ok(CreatedToken { token, meta })
}

pub async fn list(conn: &mut AsyncPgConnection, owner: UserId) -> QueryResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(owner))
        .filter(api_tokens::revoked_at.is_null())
        .order(api_tokens::created_at.desc())
        .select(ApiToken::as_select())
        .load(conn)
        .await
}

/// Revokes one of `owner`'s tokens. Someone else's token id is "not found", as is an
/// unknown one, so ids cannot be probed.
pub async fn revoke(conn: &mut AsyncPgConnection, owner: UserId, id: Uuid) -> Result<(), ApiError> {
    let updated = diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::user_id.eq(owner))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    if updated == 0 {
        return Err(ApiError::NotFound(format!(
            "you have no token with id {id}"
        )));
    }
    Ok(())
}

/// The owner of a live (not revoked) token, for the authorization guard.
pub async fn owner_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<UserId>> {
    api_tokens::table
        .filter(api_tokens::id.eq(id))
        .filter(api_tokens::revoked_at.is_null())
        .select(api_tokens::user_id)
        .first(conn)
        .await
        .optional()
}

/// Revokes every token of a user (e.g. when the account is disabled).
pub async fn revoke_all(conn: &mut AsyncPgConnection, owner: UserId) -> QueryResult<usize> {
    diesel::update(
        api_tokens::table
            .filter(api_tokens::user_id.eq(owner))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await
}

/// The owner of a live token, recording its use (at most once a minute, in one statement).
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> QueryResult<Option<(UserId, Uuid)>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let now = Utc::now();
    let found: Option<(Uuid, UserId, Option<DateTime<Utc>>)> = api_tokens::table
        .filter(api_tokens::token_hash.eq(sha256(token).to_vec()))
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(now)),
        )
        .select((
            api_tokens::id,
            api_tokens::user_id,
            api_tokens::last_used_at,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((id, owner, last_used)) = found else {
        return Ok(None);
    };
    if last_used.is_none_or(|t| now - t > ChronoDuration::minutes(1)) {
        diesel::update(api_tokens::table.find(id))
            .set(api_tokens::last_used_at.eq(now))
            .execute(conn)
            .await?;
    }
    Ok(Some((owner, id)))
}
