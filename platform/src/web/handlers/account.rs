//! The HTTP handlers of a signed-in user's API tokens and browser sessions: list, create and
//! revoke. Each parses its input, calls the logic in `auth`, and maps the result; no SQL here.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{self, Action, Audit, Outcome};
use crate::auth::tokens::{self, ApiToken, CreatedToken, NewToken};
use crate::error::{ApiError, ErrorBody};
use crate::web::app::AppState;
use crate::web::extract::CurrentUser;

type State = web::Data<AppState>;

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<ApiToken>,
}

/// Your API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_tokens(
    state: State,
    current: CurrentUser,
) -> Result<web::Json<TokenList>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(web::Json(TokenList {
        tokens: tokens::list(&mut conn, current.user.id).await?,
    }))
}

/// Creates an API token. Its secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody, description = "Too many tokens")),
    security(("session" = []), ("token" = [])))]
pub async fn create_token(
    state: State,
    current: CurrentUser,
    audit: Audit,
    body: web::Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.get().await?;
    let created = tokens::create(&mut conn, current.user.id, &body).await?;
    tracing::info!(token_id = %created.meta.id, "API token created");
    audit
        .record(
            &mut conn,
            Action::TokenCreate,
            Some(&format!("token:{}", created.meta.id)),
            Outcome::Success,
            serde_json::json!({ "name": created.meta.name, "owner": current.user.id }),
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(created))
}

/// Revokes one of your API tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "You have no such token")),
    security(("session" = []), ("token" = [])))]
pub async fn revoke_token(
    state: State,
    current: CurrentUser,
    audit: Audit,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.get().await?;
    let id = id.into_inner();
    tokens::revoke(&mut conn, current.user.id, id).await?;
    tracing::info!(token_id = %id, "API token revoked");
    audit
        .record(
            &mut conn,
            Action::TokenRevoke,
            Some(&format!("token:{id}")),
            Outcome::Success,
            serde_json::json!({ "owner": current.user.id }),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One of your browser sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Pass to `DELETE /api/v1/sessions/{id}` to end it.
    pub id: String,
    /// How it signed in (`local`, `github` or an OIDC provider id).
    pub provider: String,
    pub created_at: Option<DateTime<Utc>>,
    /// Whether this is the session making the request.
    pub current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// Your live browser sessions, newest first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "account",
    responses((status = 200, body = SessionList), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_sessions(
    state: State,
    current: CurrentUser,
) -> Result<web::Json<SessionList>, ApiError> {
    let this = current.session().map(|s| s.id_hash.clone());
    let sessions = state
        .sessions
        .list(current.user.id)
        .await?
        .into_iter()
        .map(|(id, record)| SessionInfo {
            current: this.as_deref() == Some(id.as_str()),
            id,
            provider: record.provider,
            created_at: DateTime::from_timestamp_millis(record.created_at_ms),
        })
        .collect();
    Ok(web::Json(SessionList { sessions }))
}

/// Ends one of your sessions (signs that browser out).
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "account", params(("id" = String, Path)),
    responses((status = 204, description = "Ended"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "You have no such session")),
    security(("session" = []), ("token" = [])))]
pub async fn revoke_session(
    state: State,
    current: CurrentUser,
    audit: Audit,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.sessions.revoke(&id, current.user.id).await?;
    let mut conn = state.db.get().await?;
    audit
        .record(
            &mut conn,
            Action::SessionRevoke,
            Some(&audit::user_target(current.user.id)),
            Outcome::Success,
            serde_json::json!({ "session": id.as_str() }),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
