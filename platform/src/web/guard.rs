//! The guard: the middleware every request passes before any handler. It finds the route,
//! who is asking (session cookie or API token), and whose thing the route acts on; asks the
//! enforcer; applies the rate limits of the caller's access level; and leaves the decision
//! in the request for the handler. A request it cannot place on a route in `routes.rs`
//! never reaches a handler (the router answers 404).

use std::collections::HashMap;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

use super::app::AppState;
use super::extract::{self, CurrentUser, Decision, audit_of, client_key};
use super::pages;
use super::routes::{self, Class, Owner, Route};
use crate::audit::{Action, Outcome};
use crate::authz::{roles, subject};
use crate::error::ApiError;
use crate::ratelimit;
use crate::users::UserId;

/// The route table, indexed for the guard.
pub struct RouteIndex {
    by_pattern: HashMap<&'static str, Vec<(Route, ResourceDef)>>,
}

impl RouteIndex {
    pub fn new() -> Self {
        let mut by_pattern: HashMap<&'static str, Vec<(Route, ResourceDef)>> = HashMap::new();
        for route in routes::table() {
            by_pattern
                .entry(route.pattern)
                .or_default()
                .push((route, ResourceDef::new(route.pattern)));
        }
        RouteIndex { by_pattern }
    }

    fn get(&self, method: &str, pattern: &str) -> Option<&(Route, ResourceDef)> {
        self.by_pattern
            .get(pattern)?
            .iter()
            .find(|(route, _)| route.method == method)
    }
}

impl Default for RouteIndex {
    fn default() -> Self {
        Self::new()
    }
}

const RATE_WINDOW: Duration = Duration::from_secs(60);

pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::internal(anyhow::anyhow!("AppState missing")).into());
    };
    let method = req.method().as_str().to_owned();
    let found = req
        .match_pattern()
        .and_then(|pattern| state.routes.get(&method, &pattern).cloned());
    let Some((route, def)) = found else {
        // Not a route: the router answers 404 or 405 and no handler runs.
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    // Borrowed, never cloned: the router needs the request to itself afterwards.
    let decided = decide(&state, req.request(), &route, &def).await;
    match decided {
        Ok(decision) => {
            req.extensions_mut().insert(decision);
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(Refusal::Redirect(location)) => Ok(req.into_response(
            HttpResponse::SeeOther()
                .insert_header((LOCATION, location))
                .insert_header((CACHE_CONTROL, "no-store"))
                .finish()
                .map_into_right_body(),
        )),
        Err(Refusal::Error(e))
            if route.class == Class::Page && pages::wants_html(req.request()) =>
        {
            Ok(req.into_response(pages::refusal_page(&e).map_into_right_body()))
        }
        // Rendered here, inside the request's scope, so the body carries its request id.
        Err(Refusal::Error(e)) => Ok(req.into_response(e.error_response().map_into_right_body())),
    }
}

enum Refusal {
    Redirect(String),
    Error(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Error(e)
    }
}

/// Whether the request carries a credential at all.
fn has_credential(state: &AppState, req: &HttpRequest) -> bool {
    req.headers()
        .contains_key(actix_web::http::header::AUTHORIZATION)
        || state.cookies.session_token(req).is_some()
}

async fn decide(
    state: &AppState,
    req: &HttpRequest,
    route: &Route,
    def: &ResourceDef,
) -> Result<Decision, Refusal> {
    let (principal, auth_error) = if has_credential(state, req) {
        match extract::authenticate(state, req).await {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    // Limited before the decision, so refused requests count too (and cannot flood the
    // audit log with denials).
    if route.class == Class::Api {
        limit(state, req, route, principal.as_ref()).await?;
    }
    let sub = principal
        .as_ref()
        .map_or_else(|| roles::ANONYMOUS.to_owned(), |p| subject(p.user.id));
    let owner = owner_of(state, req, route.owner, def, principal.as_ref()).await?;
    let allowed = state.authz.decide(
        &sub,
        route.pattern,
        route.method,
        owner.as_deref().unwrap_or(""),
    );
    state
        .metrics
        .authz_decision(route.method, route.pattern, allowed);

    if !allowed {
        // A credential that did not work explains a refusal better than "sign in".
        if let Some(e) = auth_error {
            return Err(e.into());
        }
        return Err(match principal {
            None if route.class == Class::Page && route.method == "GET" => {
                Refusal::Redirect(login_redirect(req))
            }
            None => ApiError::Unauthorized("sign in first").into(),
            Some(p) => refuse_signed_in(state, req, route, &p, &sub, owner.as_deref()).await?,
        });
    }

    Ok(Decision { principal })
}

async fn refuse_signed_in(
    state: &AppState,
    req: &HttpRequest,
    route: &Route,
    principal: &CurrentUser,
    sub: &str,
    owner: Option<&str>,
) -> Result<Refusal, ApiError> {
    let noun = match route.owner {
        Owner::Token => Some("API token"),
        Owner::Session => Some("session"),
        _ => None,
    };
    if let Some(noun) = noun
        && owner != Some(sub)
    {
        // Someone else's (or nobody's): do not confirm that it exists.
        return Ok(ApiError::NotFound(format!("you have no {noun} with this id")).into());
    }
    if route.pattern.starts_with("/api/v1/admin/") {
        let mut conn = state.db.get().await?;
        audit_of(req)
            .as_user(
                principal.user.id,
                principal
                    .user
                    .email
                    .as_deref()
                    .unwrap_or(&principal.user.display_name),
            )
            .record(
                &mut conn,
                Action::AccessDenied,
                Some(&format!("{} {}", route.method, route.pattern)),
                Outcome::Denied,
                serde_json::json!({ "path": req.path() }),
            )
            .await?;
    }
    Ok(ApiError::Forbidden(format!(
        "your roles do not allow {} {}; ask an administrator if you need it",
        route.method, route.pattern
    ))
    .into())
}

fn login_redirect(req: &HttpRequest) -> String {
    let target = match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    };
    let encoded: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    format!("/login?return_to={encoded}")
}

/// The casbin owner of what the request acts on: `user:<id>`, or `None` for nobody (which
/// `own` rules never match).
async fn owner_of(
    state: &AppState,
    req: &HttpRequest,
    owner: Owner,
    def: &ResourceDef,
    principal: Option<&CurrentUser>,
) -> Result<Option<String>, ApiError> {
    let param = || {
        let mut path = req.match_info().clone();
        def.capture_match_info(&mut path);
        path.get("id").map(str::to_owned)
    };
    Ok(match owner {
        Owner::Nobody => None,
        Owner::Caller => principal.map(|p| subject(p.user.id)),
        Owner::User => param()
            .and_then(|raw| raw.parse().ok())
            .map(|id| subject(UserId(id))),
        Owner::Token => match param().and_then(|raw| raw.parse().ok()) {
            Some(id) => {
                let mut conn = state.db.get().await?;
                crate::auth::tokens::owner_of(&mut conn, id)
                    .await?
                    .map(subject)
            }
            None => None,
        },
        Owner::Session => match param() {
            Some(id) => state.sessions.owner_of(&id).await?.map(subject),
            None => None,
        },
    })
}

/// The API's rate limits: per user from their access level, and per address from the
/// configuration, reads and writes counted apart.
async fn limit(
    state: &AppState,
    req: &HttpRequest,
    route: &Route,
    principal: Option<&CurrentUser>,
) -> Result<(), ApiError> {
    let read = route.method == "GET";
    let kind = if read { "api_read" } else { "api_write" };
    let ip = client_key(req, &state.config.trusted_proxies);
    let per_ip = if read {
        state.config.rate_limits.api_reads_per_ip
    } else {
        state.config.rate_limits.api_writes_per_ip
    };
    let mut buckets = vec![(format!("{kind}:ip:{ip}"), per_ip)];
    if let Some(p) = principal {
        let per_user = if read {
            p.access.read_requests_per_minute
        } else {
            p.access.write_requests_per_minute
        };
        buckets.push((
            format!("{kind}:user:{}", p.user.id),
            u32::try_from(per_user).unwrap_or(1),
        ));
    }
    match ratelimit::hit_all(&state.kv, &buckets, RATE_WINDOW).await? {
        Ok(()) => Ok(()),
        Err(retry_after) => Err(ApiError::RateLimited(retry_after)),
    }
}

/// Named things the pages may offer, each decided by the enforcer exactly as the API route
/// behind it would be, so a page never shows a control the API would refuse.
pub const CAPABILITIES: [(&str, &str, &str); 17] = [
    ("admin_console", "GET", "/admin"),
    ("users.read", "GET", "/api/v1/admin/users"),
    ("users.write", "POST", "/api/v1/admin/users/{id}/disable"),
    ("roles.read", "GET", "/api/v1/admin/roles"),
    (
        "roles.write",
        "PUT",
        "/api/v1/admin/users/{id}/roles/{role}",
    ),
    ("access_levels.read", "GET", "/api/v1/admin/access-levels"),
    (
        "access_levels.write",
        "PUT",
        "/api/v1/admin/access-levels/{name}",
    ),
    ("audit.read", "GET", "/api/v1/admin/audit"),
    ("fleet.read", "GET", "/api/v1/admin/fleet"),
    ("workspaces.read", "GET", "/api/v1/admin/workspaces"),
    (
        "workspaces.write",
        "POST",
        "/api/v1/admin/workspaces/{id}/stop",
    ),
    ("metrics.read", "GET", "/metrics"),
    ("providers.read", "GET", "/api/v1/admin/providers"),
    ("pools.read", "GET", "/api/v1/pools"),
    ("pools.write", "PATCH", "/api/v1/pools/{name}"),
    ("ai.read", "GET", "/api/v1/admin/ai/providers"),
    ("invitations.write", "POST", "/api/v1/admin/invitations"),
];

/// The capabilities `user` has now.
pub fn capabilities(state: &AppState, user: UserId) -> Vec<&'static str> {
    let sub = subject(user);
    CAPABILITIES
        .iter()
        .filter(|(_, method, pattern)| state.authz.decide(&sub, pattern, method, ""))
        .map(|(name, _, _)| *name)
        .collect()
}
