//! The workspace API (`/api/v1/workspace…`, the signed-in user's own) and the handoff from
//! the platform's origin to the workspace origin (`/workspace/open`).

use std::time::Duration;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorBody};
use crate::tenants::State as TenantState;
use crate::tenants::events::Refused;
use crate::tenants::lifecycle::{Trigger, WorkspaceStatus};
use crate::tenants::routing::Handoff;
use crate::web::app::AppState;
use crate::web::extract::CurrentUser;

type State = web::Data<AppState>;

/// How long one progress stream stays open at most (the page reconnects if it needs more).
const EVENTS_MAX: Duration = Duration::from_secs(300);
const HEARTBEAT: Duration = Duration::from_secs(15);
/// When a user with too many streams open is told to try again.
const EVENTS_RETRY: Duration = Duration::from_secs(5);

/// Your projects (the 50 edited last), with where each is published: from your running
/// workspace, or the last list it told while it does not run (`live: false`, `as_of`).
#[utoipa::path(get, path = "/api/v1/workspace/projects", tag = "workspace",
    responses((status = 200, body = crate::sites::projects::ProjectCards), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn projects(
    state: State,
    current: CurrentUser,
) -> Result<web::Json<crate::sites::projects::ProjectCards>, ApiError> {
    Ok(web::Json(
        state.sites.projects(&state.tenants, &current.user).await?,
    ))
}

/// Your workspace: its state and its origin.
#[utoipa::path(get, path = "/api/v1/workspace", tag = "workspace",
    responses((status = 200, body = WorkspaceStatus), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn status(
    state: State,
    current: CurrentUser,
) -> Result<web::Json<WorkspaceStatus>, ApiError> {
    Ok(web::Json(state.tenants.status(&current.user).await?))
}

/// Starts your workspace unless it is up or on its way; progress on `/api/v1/workspace/events`.
#[utoipa::path(post, path = "/api/v1/workspace/start", tag = "workspace",
    responses((status = 202, body = WorkspaceStatus, description = "Starting (or already up)"),
        (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "At capacity: the pool runs as many workspaces as it may, or its start queue is full; says when to retry"),
        (status = 503, body = ErrorBody, description = "The pool that would start it is draining, or the container engine does not answer")),
    security(("session" = []), ("token" = [])))]
pub async fn start(state: State, current: CurrentUser) -> Result<HttpResponse, ApiError> {
    // A start the engine cannot carry out is refused by admission, in words, rather than
    // accepted and failed in the background: nothing is recorded, nothing left half-done.
    let status = state
        .tenants
        .start(current.user.id, Trigger::Demand)
        .await?;
    Ok(HttpResponse::Accepted().json(status))
}

/// Stops your workspace (its data stays in your volume).
#[utoipa::path(post, path = "/api/v1/workspace/stop", tag = "workspace",
    responses((status = 202, body = WorkspaceStatus), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn stop(state: State, current: CurrentUser) -> Result<HttpResponse, ApiError> {
    state
        .tenants
        .stop(current.user.id, "stopped by its owner")
        .await?;
    Ok(HttpResponse::Accepted().json(state.tenants.status(&current.user).await?))
}

/// Server-sent events with your workspace's progress: an event `state` with the current
/// status at once, then one per change, until it is ready, failed or stopped. The
/// replica's one Redis subscription feeds every stream; a user holds a few at most.
#[utoipa::path(get, path = "/api/v1/workspace/events", tag = "workspace",
    responses((status = 200, content_type = "text/event-stream", description = "`event: state` with a WorkspaceStatus as data, per change"),
        (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many progress streams open (other tabs); close one"),
        (status = 503, body = ErrorBody, description = "The event bus does not answer")),
    security(("session" = []), ("token" = [])))]
pub async fn events(state: State, current: CurrentUser) -> Result<HttpResponse, ApiError> {
    let subscription = state
        .events
        .subscribe(
            current.user.id,
            state.tenants.routing.channel(current.user.id),
        )
        .await
        .map_err(|refused| match refused {
            Refused::TooMany => ApiError::TooMany(refused.to_string(), EVENTS_RETRY),
            Refused::Unavailable => ApiError::Unavailable("the event bus"),
        })?;
    // Read after subscribing, so no change falls between the two.
    let first = state.tenants.status(&current.user).await?;
    let messages = futures_util::stream::unfold(subscription, |mut s| async move {
        s.changed().await.map(|()| ((), s))
    });
    let ticks = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(HEARTBEAT).await;
        Some(((), ()))
    });
    let changes =
        futures_util::stream::select(messages.map(|()| true), ticks.map(|()| false)).boxed_local();
    let deadline = tokio::time::Instant::now() + EVENTS_MAX;
    let opening = event(&first);
    let (tenants, user) = (state.tenants.clone(), current.user.clone());
    // Each change is read back from PostgreSQL, so the stream always shows the user's
    // latest tenant (a sign-in's replacement included). It ends right after the workspace
    // settles (ready, failed or stopped), or at the deadline.
    let body = futures_util::stream::unfold(
        (changes, Some(opening), false),
        move |(mut changes, opening, ended)| {
            let (tenants, user) = (tenants.clone(), user.clone());
            async move {
                if let Some(text) = opening {
                    return Some((text, (changes, None, false)));
                }
                if ended {
                    return None;
                }
                match tokio::time::timeout_at(deadline, changes.next()).await {
                    Err(_) | Ok(None) => None,
                    // A heartbeat: a comment line keeps proxies from timing the stream out.
                    Ok(Some(false)) => {
                        Some((": keep-alive\n\n".to_owned(), (changes, None, false)))
                    }
                    Ok(Some(true)) => match tenants.status(&user).await {
                        Ok(status) => {
                            let settled = matches!(
                                status.state,
                                TenantState::Ready | TenantState::Failed | TenantState::Stopped
                            );
                            Some((event(&status), (changes, None, settled)))
                        }
                        Err(_) => None,
                    },
                }
            }
        },
    )
    .map(|text| Ok::<_, std::convert::Infallible>(web::Bytes::from(text)));
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

fn event(status: &WorkspaceStatus) -> String {
    let data = serde_json::to_string(status).unwrap_or_else(|_| "{}".to_owned());
    format!("event: state\ndata: {data}\n\n")
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OpenQuery {
    /// Where to land on the workspace origin (a path), `/` by default.
    next: Option<String>,
    /// The SHA-256 (hex) of the nonce the workspace origin gave this browser in a cookie:
    /// the code is redeemed only where that cookie is. Absent, the browser is first sent
    /// to the workspace origin to get one.
    bind: Option<String>,
}

/// Opens your workspace in this browser: starts it if needed, and hands the workspace
/// origin a one-time code it trades for a cookie of its own. The code is bound to this
/// browser (a nonce the workspace origin set first), so a link minted by someone else
/// cannot plant their workspace session in your browser.
#[utoipa::path(get, path = "/workspace/open", tag = "workspace", params(OpenQuery),
    responses((status = 303, description = "To the workspace origin: for its nonce first, then to redeem the code"),
        (status = 400, body = ErrorBody, description = "Not a browser session, a bad `next` or a bad `bind`"),
        (status = 429, body = ErrorBody, description = "Too many openings in a short time; says when to retry")))]
pub async fn open(
    state: State,
    current: CurrentUser,
    query: web::Query<OpenQuery>,
) -> Result<HttpResponse, ApiError> {
    let OpenQuery { next, bind } = query.into_inner();
    let next = next.unwrap_or_else(|| "/".to_owned());
    let safe_path = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2048
        && !next.chars().any(char::is_control);
    if !safe_path {
        return Err(ApiError::validation(
            "next",
            "must be a path on the workspace, starting with a single /",
        ));
    }
    let Some(session) = current.session() else {
        return Err(ApiError::BadRequest(
            "a workspace opens in a browser signed in to the platform, not with an API token"
                .to_owned(),
        ));
    };
    let workspace = {
        let mut conn = state.db.get().await?;
        state.tenants.workspace(&mut conn, &current.user).await?
    };
    let origin = state.tenants.origin_of(&workspace.slug);
    let Some(bind) = bind else {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .finish();
        return Ok(see_other(format!(
            "{origin}{}?{query}",
            crate::web::proxy::HANDOFF_PATH
        )));
    };
    if bind.len() != 64 || !bind.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::validation(
            "bind",
            "must be the 64 hex digits the workspace origin sent",
        ));
    }
    let bucket = format!("workspace_open:user:{}", current.user.id);
    let limit = state.config.rate_limits.workspace_opens;
    if let Err(retry_after) =
        crate::ratelimit::hit(&state.kv, &bucket, limit, Duration::from_secs(60)).await?
    {
        return Err(ApiError::RateLimited(retry_after));
    }
    match state.tenants.start(current.user.id, Trigger::Demand).await {
        // The workspace origin says so on arrival, and starts it again if it can.
        Err(ApiError::AtCapacity(..) | ApiError::Draining(_)) | Ok(_) => {}
        Err(e) => return Err(e),
    }
    let code = state
        .tenants
        .routing
        .mint_handoff(&Handoff {
            user: current.user.id,
            slug: workspace.slug.clone(),
            platform_session: session.id_hash.clone(),
            next,
            bind: bind.to_ascii_lowercase(),
        })
        .await?;
    Ok(see_other(format!(
        "{origin}{}?code={code}",
        crate::web::proxy::HANDOFF_PATH
    )))
}

fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}
