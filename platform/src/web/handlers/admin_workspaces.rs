//! Handlers of the console's Workspaces page (admins and operators, as the policy says):
//! the list, stopping one, and its container's last lines. The work is
//! `admin::workspaces`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::admin::workspaces::{self, WorkspaceLogs, WorkspacePage, WorkspaceQuery};
use crate::audit::Audit;
use crate::error::{ApiError, ErrorBody};
use crate::users::UserId;
use crate::web::app::AppState;

type State = web::Data<AppState>;

/// Every user's workspace with its owner, state, uptime, memory and storage; live ones
/// first, at most 200.
#[utoipa::path(get, path = "/api/v1/admin/workspaces", tag = "admin", params(WorkspaceQuery),
    responses((status = 200, body = WorkspacePage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list(
    state: State,
    query: web::Query<WorkspaceQuery>,
) -> Result<web::Json<WorkspacePage>, ApiError> {
    Ok(web::Json(
        workspaces::list(&state.db, &state.tenants, &query).await?,
    ))
}

/// Stops a user's workspace: its container goes, its volume (the user's data) stays, and
/// the user gets a new one when they next open it.
#[utoipa::path(post, path = "/api/v1/admin/workspaces/{id}/stop", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The owner's user id")),
    responses((status = 204, description = "Stopped"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "It was not running"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn stop(
    state: State,
    audit: Audit,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user = UserId(id.into_inner());
    workspaces::stop(&state.db, &state.tenants, &audit, user).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Where to move a workspace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTo {
    /// The machine's id or name, in the workspace's pool.
    pub node: String,
}

/// Moves a user's workspace to another machine of its pool's swarm: it is stopped, its
/// data copied there through helper tasks, and it is pinned there (the next start runs
/// there). Answers when done, with the steps it went through.
#[utoipa::path(post, path = "/api/v1/admin/workspaces/{id}/move", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The owner's user id")),
    request_body = MoveTo,
    responses((status = 200, body = workspaces::WorkspaceMoved), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Nowhere to move it, the machine takes no workspace, or the copy failed (it stays where it was)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn move_to(
    state: State,
    audit: Audit,
    id: web::Path<uuid::Uuid>,
    body: web::Json<MoveTo>,
) -> Result<web::Json<workspaces::WorkspaceMoved>, ApiError> {
    let user = UserId(id.into_inner());
    let node = body.into_inner().node;
    if node.is_empty() || node.len() > 100 || node.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "node",
            "the machine is named by its id or name, 1 to 100 printable characters",
        ));
    }
    Ok(web::Json(
        workspaces::move_to(&state.db, &state.tenants, &audit, user, &node, &|step| {
            tracing::info!(%user, step = %step, "moving a workspace");
        })
        .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// How many of the last lines (1 to 1000, default 200).
    pub lines: Option<usize>,
}

/// The last lines a running workspace's container wrote (secrets masked).
#[utoipa::path(get, path = "/api/v1/admin/workspaces/{id}/logs", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The owner's user id"), LogsQuery),
    responses((status = 200, body = WorkspaceLogs), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No container now"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn logs(
    state: State,
    id: web::Path<uuid::Uuid>,
    query: web::Query<LogsQuery>,
) -> Result<web::Json<WorkspaceLogs>, ApiError> {
    let user = UserId(id.into_inner());
    let lines = query.lines.unwrap_or(200);
    Ok(web::Json(
        workspaces::logs(&state.db, &state.tenants, user, lines).await?,
    ))
}
