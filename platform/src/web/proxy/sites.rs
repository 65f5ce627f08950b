//! Publishing from the workspace page: on a workspace origin, `/_websplat/sites…` is
//! answered by the platform itself (never relayed to the tenant), for the workspace's
//! owner, with the same use-cases as `/api/v1/sites…` (`crate::sites`). The page thus
//! publishes same-origin, with its own cookie, and the tenant never holds a way to publish
//! on its own. The caller has passed the proxy's checks (session, policy, same origin for
//! writes) before it gets here.

use actix_web::http::Method;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::sites::SiteName;
use crate::tenants::routing::WorkspaceSession;
use crate::web::app::AppState;

/// The prefix the proxy answers itself.
pub const PREFIX: &str = "/_websplat/sites";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    project: Uuid,
}

/// The largest body this accepts (a project id).
const MAX_BODY: usize = 4096;

#[tracing::instrument(name = "workspace_sites", skip_all, fields(user = %session.user))]
pub(super) async fn serve(
    state: &AppState,
    session: &WorkspaceSession,
    req: &HttpRequest,
    payload: actix_web::dev::Payload,
) -> HttpResponse {
    match handle(state, session, req, payload).await {
        Ok(response) => response,
        Err(e) => e.error_response(),
    }
}

async fn handle(
    state: &AppState,
    session: &WorkspaceSession,
    req: &HttpRequest,
    mut payload: actix_web::dev::Payload,
) -> Result<HttpResponse, ApiError> {
    let rest = req.path().strip_prefix(PREFIX).unwrap_or_default();
    let name = rest.strip_prefix('/').filter(|n| !n.is_empty());
    match (req.method().clone(), name) {
        (Method::GET, None) => Ok(HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(state.sites.list(session.user).await?)),
        (Method::PUT, Some(name)) => {
            let name = SiteName::parse(name)?;
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ApiError::BadRequest("The request's body could not be read.".to_owned())
                })?;
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(ApiError::TooLarge(
                        "The request's body is too large; send {\"project\": \"<id>\"}.".to_owned(),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            let request: PublishRequest = serde_json::from_slice(&body).map_err(|e| {
                ApiError::validation(
                    "project",
                    format!("Send {{\"project\": \"<project id>\"}} ({e})."),
                )
            })?;
            let user = {
                let mut conn = state.db.get().await?;
                crate::users::find(&mut conn, session.user)
                    .await?
                    .ok_or_else(|| {
                        ApiError::NotFound("Your account no longer exists.".to_owned())
                    })?
            };
            let site = state
                .sites
                .publish(&state.tenants, &user, &name, request.project)
                .await?;
            Ok(HttpResponse::Ok()
                .insert_header((CACHE_CONTROL, "no-store"))
                .json(site))
        }
        (Method::DELETE, Some(name)) => {
            let name = SiteName::parse(name).map_err(|_| {
                ApiError::NotFound("You have no published site of that name.".to_owned())
            })?;
            state.sites.unpublish(session.user, &name).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        _ => Err(ApiError::NotFound(format!(
            "There is no {} {} here; use GET {PREFIX}, or PUT or DELETE {PREFIX}/{{name}}.",
            req.method(),
            req.path()
        ))),
    }
}
