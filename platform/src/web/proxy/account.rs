//! The platform's header on a workspace page: on a workspace origin, `/_websplat/me` (who
//! is signed in, and where the dashboard, the admin console and sign-in are) and
//! `/_websplat/sign-out` are answered by the platform itself, never relayed to the tenant,
//! for the workspace's owner — so the workspace page can show the user's name and a menu
//! that leads back to the platform and signs out. The caller has passed the proxy's checks
//! (session, policy, same origin for writes) before it gets here. Nothing here returns a
//! secret, a session id or a token.

use actix_web::http::Method;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::audit::{self, Action, Outcome};
use crate::error::ApiError;
use crate::tenants::routing::WorkspaceSession;
use crate::web::app::AppState;
use crate::web::extract::audit_of;

pub const ME: &str = "/_websplat/me";
pub const SIGN_OUT: &str = "/_websplat/sign-out";

#[tracing::instrument(name = "workspace_account", skip_all, fields(user = %session.user))]
pub(super) async fn serve(
    state: &AppState,
    session: &WorkspaceSession,
    req: &HttpRequest,
) -> HttpResponse {
    let answer = match (req.method().clone(), req.path()) {
        (Method::GET, ME) => me(state, session).await,
        (Method::POST, SIGN_OUT) => sign_out(state, session, req).await,
        _ => Err(ApiError::NotFound(format!(
            "There is no {} {} here; use GET {ME} or POST {SIGN_OUT}.",
            req.method(),
            req.path()
        ))),
    };
    answer.unwrap_or_else(|e| e.error_response())
}

async fn me(state: &AppState, session: &WorkspaceSession) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.get().await?;
    let user = crate::users::find(&mut conn, session.user)
        .await?
        .ok_or_else(|| ApiError::NotFound("Your account no longer exists.".to_owned()))?;
    let capabilities = crate::web::guard::capabilities(state, session.user);
    let may_admin = state
        .authz
        .decide(&crate::authz::subject(session.user), "/admin", "GET", "");
    let url = |path: &str| state.config.public_url.join(path);
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "display_name": user.display_name,
            "email": user.email,
            "capabilities": capabilities,
            "dashboard_url": url("/dashboard"),
            "admin_url": may_admin.then(|| url("/admin")),
            "sign_in_url": url("/login"),
        })))
}

/// Ends the platform session this workspace session came from (so every workspace cookie
/// tied to it dies with it) and stops the workspace, as signing out on the platform does.
async fn sign_out(
    state: &AppState,
    session: &WorkspaceSession,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .sessions
        .revoke(&session.platform_session, session.user)
        .await?;
    state.tenants.stop_in_background(session.user, "signed out");
    tracing::info!("signed out from the workspace");
    let mut conn = state.db.get().await?;
    let label = crate::users::find(&mut conn, session.user)
        .await?
        .map(|u| u.email.unwrap_or(u.display_name))
        .unwrap_or_default();
    audit_of(req)
        .as_user(session.user, &label)
        .record(
            &mut conn,
            Action::SignOut,
            Some(&audit::user_target(session.user)),
            Outcome::Success,
            serde_json::json!({ "from": "workspace" }),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "sign_in_url": state.config.public_url.join("/login") })))
}
