//! Previews on a workspace origin without the workspace cookie. A sandboxed preview is an
//! opaque origin, so the browser sends no `SameSite` cookie with the requests its page makes
//! (stylesheets, images, fonts, the analytics beacon); instead the preview's URL carries a
//! short-lived, read-only capability the tenant minted with its secret
//! (`websplat_contract::preview`). Here the proxy checks that capability with the tenant's
//! secret from its route, lets through only `GET`/`HEAD` under the capability's prefix, and
//! forces the sandbox, `no-referrer` and `nosniff` onto the answer whatever the tenant sent,
//! so a preview never runs as the workspace origin. It must never accept a capability for
//! another workspace (each is signed with its own tenant's secret), relay anything else
//! without the cookie, or pass a `Set-Cookie` back.

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use websplat_contract::preview as capability;

use super::relay::{Relayed, forward};
use super::{Upstream, refuse};
use crate::error::ApiError;
use crate::tenants::Slug;
use crate::web::app::AppState;

/// What every answer under a capability carries, whatever the tenant said.
pub const SANDBOX: &str = "sandbox allow-scripts allow-forms allow-popups";

/// Serves `GET`/`HEAD {capability::PREFIX}{token}/…` on `slug`'s origin.
#[tracing::instrument(name = "workspace_preview", skip_all, fields(slug = %slug))]
pub(super) async fn serve(
    state: &AppState,
    upstream: &Upstream,
    slug: &Slug,
    token: &str,
    req: &HttpRequest,
    payload: Payload,
) -> HttpResponse {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return refuse(
            state,
            req,
            ApiError::BadRequest("A preview can only be read (GET or HEAD).".to_owned()),
        );
    }
    let route = match state
        .tenants
        .routing
        .lookup(None, slug)
        .await
        .map(|l| l.route)
    {
        Ok(Some(route)) => route,
        Ok(None) => {
            return refuse(
                state,
                req,
                ApiError::NotFound(
                    "This preview is not available: its workspace is not running. Open your workspace and reload the preview.".to_owned(),
                ),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "Redis unavailable for a preview");
            return refuse(state, req, ApiError::Unavailable("the session store"));
        }
    };
    let now = chrono::Utc::now().timestamp();
    let secret = state.tenants.keys.of_route(&route);
    if let Err(refusal) = capability::verify(secret.expose_secret().as_bytes(), token, now) {
        tracing::info!(%refusal, "refused a preview capability");
        return refuse(
            state,
            req,
            ApiError::NotFound(
                "This preview link has expired or is not valid; reload the preview from your workspace."
                    .to_owned(),
            ),
        );
    }
    let mut response = match forward(state, upstream, &route, req, payload).await {
        Relayed::Answer(response) => response,
        Relayed::Refused { .. } => {
            // The route is out of date; the workspace's own requests replace it.
            let _ = state.tenants.routing.fresh_route(slug).await;
            return refuse(
                state,
                req,
                ApiError::Unavailable("this preview's workspace"),
            );
        }
    };
    let headers = response.headers_mut();
    headers.remove(header::SET_COOKIE);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
