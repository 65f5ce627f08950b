//! What handlers take from a request. [`authenticate`] reads the credential (an API token,
//! `Authorization: Bearer`, or the session cookie) and is called once per request, by the
//! guard; it refuses disabled accounts (403, and their session ends) and cookie requests
//! that fail the CSRF check (403). The guard leaves its [`Decision`] in the request;
//! handlers take `CurrentUser` from it (401 when the request is anonymous, 500 if the guard
//! never saw it) and `Audit` (who acts, from where, in which request).

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};

use super::app::AppState;
use crate::audit::Audit;
pub use crate::auth::principal::{Credential, CurrentUser};
use crate::auth::{csrf, principal, tokens};
use crate::config::proxies::{TrustedProxies, rate_key};
use crate::error::ApiError;
use crate::telemetry::current_request_id;

/// What the guard decided for a request, left in its extensions for the handler: who is
/// asking (`None`: anonymous). Its absence means the request skipped the guard — a bug
/// that [`CurrentUser`] turns into a 500 rather than an open door.
#[derive(Debug, Clone)]
pub struct Decision {
    pub principal: Option<CurrentUser>,
}

/// The decision for a request, or `None` if no handler of the guard's saw it.
pub fn decision_of(req: &HttpRequest) -> Option<Decision> {
    req.extensions().get::<Decision>().cloned()
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
        csrf::verify_for_session(
            req.method(),
            req.headers(),
            &state.config.public_url.origin(),
            &session,
        )?;
        (session.record.user_id, Credential::Session(session))
    };
    let current = principal::resolve(&state.db, &state.sessions, user_id, credential).await?;
    tracing::Span::current().record("user_id", tracing::field::display(current.user.id));
    Ok(current)
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

/// The client's address: the TCP peer, or behind trusted proxies the rightmost
/// `X-Forwarded-For` address none of them claims.
pub fn client_ip(req: &HttpRequest, proxies: &TrustedProxies) -> Option<IpAddr> {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    proxies.client(req.peer_addr().map(|a| a.ip()), forwarded)
}

/// The client's name in rate limits: its address, or its /64 for IPv6.
pub fn client_key(req: &HttpRequest, proxies: &TrustedProxies) -> String {
    client_ip(req, proxies).map_or_else(|| "unknown".to_owned(), rate_key)
}

/// The audit context of a request: its user (if the guard found one), address and id.
pub fn audit_of(req: &HttpRequest) -> Audit {
    let proxies = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.config.trusted_proxies.clone())
        .unwrap_or_default();
    let principal = decision_of(req).and_then(|d| d.principal.map(|p| p.user));
    Audit {
        actor_id: principal.as_ref().map(|u| u.id),
        actor: principal
            .map(|u| u.email.unwrap_or(u.display_name))
            .unwrap_or_else(|| "anonymous".to_owned()),
        ip: client_ip(req, &proxies).map(|ip| ip.to_string()),
        request_id: Some(current_request_id()),
    }
}

impl FromRequest for Audit {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(audit_of(req)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use actix_web::{FromRequest, HttpMessage};

    use super::*;

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
