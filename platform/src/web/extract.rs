//! `CurrentUser`: who is making this request, from an API token (`Authorization: Bearer`)
//! or the session cookie. [`authenticate`] is called once per request, by the authorization
//! guard; it refuses disabled accounts (403, and their session ends) and cookie requests that
//! fail the CSRF check (403). Handlers take `CurrentUser` from the guard's decision: 401 when
//! the request is anonymous, 500 if the guard never saw it.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload};

use super::csrf;
use super::session::Session;
use super::tokens;
use crate::app::AppState;
use crate::authz::access_levels::AccessLevel;
use crate::authz::guard::decision_of;
use crate::error::ApiError;
use crate::users::{self, User};

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

fn bearer(req: &HttpRequest) -> Option<Result<String, ApiError>> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be \"Bearer <token>\"",
        ));
    Some(parsed)
}

/// Who the request's credential belongs to; an error if it is invalid, expired or revoked,
/// or the account is disabled.
pub async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<CurrentUser, ApiError> {
    let (user_id, credential) = if let Some(token) = bearer(req) {
        let token = token?;
        let mut conn = state.db.get().await?;
        let (owner, token_id) =
            tokens::authenticate(&mut conn, &token)
                .await?
                .ok_or(ApiError::Unauthorized(
                    "the API token is invalid, expired or revoked",
                ))?;
        (owner, Credential::ApiToken(token_id))
    } else {
        let cookie = state
            .cookies
            .session_token(req)
            .ok_or(ApiError::Unauthorized("sign in first"))?;
        let session = state
            .sessions
            .lookup(&cookie)
            .await?
            .ok_or(ApiError::Unauthorized(
                "your session has ended; sign in again",
            ))?;
        csrf::verify_for_session(req, &state.config.public_url.origin(), &session)?;
        (session.record.user_id, Credential::Session(session))
    };

    let mut conn = state.db.get().await?;
    let (user, access) = users::find_with_access(&mut conn, user_id)
        .await?
        .ok_or(ApiError::Unauthorized("this account no longer exists"))?;
    if user.is_disabled() {
        if let Credential::Session(s) = &credential {
            state.sessions.revoke(&s.id_hash, user.id).await?;
        }
        return Err(ApiError::Forbidden("this account is disabled".to_owned()));
    }
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    Ok(CurrentUser {
        user,
        credential,
        access,
    })
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let decided = match decision_of(req) {
            Some(decision) => decision
                .principal
                .ok_or(ApiError::Unauthorized("sign in first")),
            None => Err(ApiError::internal(anyhow::anyhow!(
                "{} {} reached a handler without an authorization decision",
                req.method(),
                req.path()
            ))),
        };
        ready(decided)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use actix_web::{FromRequest, HttpMessage};

    use super::*;
    use crate::authz::Decision;

    #[actix_web::test]
    async fn a_handler_reached_without_a_decision_refuses_to_serve() {
        let req = TestRequest::get().uri("/api/v1/me").to_http_request();
        let err = CurrentUser::extract(&req).await.expect_err("no decision");
        assert!(matches!(err, ApiError::Internal(_)), "{err:?}");
    }

    #[actix_web::test]
    async fn an_anonymous_decision_is_401_in_a_handler_that_needs_a_user() {
        let req = TestRequest::get().uri("/api/v1/me").to_http_request();
        req.extensions_mut().insert(Decision { principal: None });
        let err = CurrentUser::extract(&req).await.expect_err("anonymous");
        assert!(matches!(err, ApiError::Unauthorized(_)), "{err:?}");
    }
}
