//! The handoff from the platform's origin to a workspace origin, bound to one browser.
//! A workspace cookie is only ever made for the browser that asked for it: the workspace
//! origin first gives the browser a nonce in a short-lived host-only cookie and sends it
//! back to `/workspace/open` with the nonce's hash; the platform mints a one-time code
//! bound to that hash; the workspace origin redeems the code only where the nonce is.
//! So a code minted by someone else (a link into *their* workspace, sent to a victim to
//! make them type into it) is refused. This must never make a session without the nonce,
//! and never tell a caller anything about a code it did not redeem.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::{cookie_name, refuse};
use crate::auth::secret::{random_token, sha256_hex};
use crate::error::ApiError;
use crate::ratelimit;
use crate::tenants::Slug;
use crate::tenants::routing::WorkspaceSession;
use crate::web::app::AppState;
use crate::web::extract::client_key;

const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

/// The nonce cookie lives this long: the round trip through the platform, with a margin.
const NONCE_SECONDS: i64 = 120;

fn nonce_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-websplat_ws_bind"
    } else {
        "websplat_ws_bind"
    }
}

/// `GET /_websplat/handoff?next=…` (no code): gives the browser its nonce and sends it to
/// the platform; `GET /_websplat/handoff?code=…`: redeems the code.
pub(super) async fn serve(state: &AppState, slug: &Slug, req: &HttpRequest) -> HttpResponse {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let value = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match value("code") {
        Some(code) => redeem(state, slug, req, code).await,
        None => begin(state, value("next").unwrap_or("/")),
    }
}

fn begin(state: &AppState, next: &str) -> HttpResponse {
    let https = state.config.public_url.is_https();
    let nonce = random_token(32);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .append_pair("bind", &sha256_hex(&nonce))
        .finish();
    let cookie = Cookie::build(nonce_cookie_name(https), nonce)
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(NONCE_SECONDS))
        .finish();
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            state
                .config
                .public_url
                .join(&format!("/workspace/open?{query}")),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .finish()
}

#[tracing::instrument(name = "workspace_handoff", skip_all)]
async fn redeem(state: &AppState, slug: &Slug, req: &HttpRequest, code: &str) -> HttpResponse {
    let https = state.config.public_url.is_https();
    let ip = client_key(req, &state.config.trusted_proxies);
    let limit = state.config.rate_limits.workspace_opens;
    match ratelimit::hit(
        &state.kv,
        &format!("workspace_handoff:ip:{ip}"),
        limit,
        MINUTE,
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(retry_after)) => return refuse(state, req, ApiError::RateLimited(retry_after)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot count a workspace handoff");
            return refuse(state, req, ApiError::Unavailable("the session store"));
        }
    }
    let handoff = match state.tenants.routing.redeem_handoff(code).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot redeem a workspace handoff");
            return refuse(state, req, ApiError::Unavailable("the session store"));
        }
    };
    let Some(handoff) = handoff.filter(|h| h.slug == *slug) else {
        return refuse(
            state,
            req,
            ApiError::BadRequest(
                "this link to your workspace has expired or was already used; open the workspace again from your dashboard"
                    .to_owned(),
            ),
        );
    };
    let nonce = req
        .cookie(nonce_cookie_name(https))
        .map(|c| sha256_hex(c.value()));
    if handoff.bind.is_empty() || nonce.as_deref() != Some(handoff.bind.as_str()) {
        tracing::warn!(user = %handoff.user, "a handoff code was brought by another browser");
        return refuse(
            state,
            req,
            ApiError::BadRequest(
                "this link to a workspace was not opened in this browser, so it does not sign you in; open your own workspace from your dashboard"
                    .to_owned(),
            ),
        );
    }
    let ttl = state.sessions.max_lifetime();
    let session = WorkspaceSession {
        user: handoff.user,
        slug: handoff.slug.clone(),
        platform_session: handoff.platform_session.clone(),
    };
    let token = match state.tenants.routing.create_session(&session, ttl).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot create a workspace session");
            return refuse(state, req, ApiError::Unavailable("the session store"));
        }
    };
    let cookie = Cookie::build(cookie_name(https), token)
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .finish();
    let mut spent = Cookie::build(nonce_cookie_name(https), "")
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .finish();
    spent.make_removal();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, handoff.next))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .cookie(spent)
        .finish()
}
