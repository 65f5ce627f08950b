//! The workspace origins: every request whose `Host` is `{slug}.{workspace domain}` is
//! served here instead of by the platform's routes. The browser must hold that host's
//! workspace cookie (made by a one-time-code handoff from the platform's origin, tied to a
//! live platform session), casbin must allow it (only the owner), and then the request is
//! relayed to the user's tenant: bodies streamed both ways, WebSockets frame by frame,
//! hop-by-hop headers stripped, `X-Forwarded-*` set, the user's identity signed with the
//! tenant's secret. The lookups on this path are answered from the replica's cache of
//! routes and sessions (`tenants::cache`) or one or two Redis round trips, never
//! PostgreSQL. What one workspace or one address may take of the proxy is [`limits`]; a
//! route its tenant refuses (401) is read again and the request retried once, or the
//! workspace replaced.
//!
//! This module decides who may pass and answers the handoff and the "starting" page; the
//! streaming itself (bodies, WebSockets, the headers that cross) is [`relay`]; previews,
//! which pass on a capability in their URL instead of the cookie, are [`preview`]; the
//! workspace page's publishing and its account menu, answered by the platform itself, are
//! [`sites`] and [`account`]; the handoff that makes the workspace cookie is [`handoff`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

mod account;
mod handoff;
mod limits;
mod preview;
mod relay;
mod sites;

pub use limits::Limits;
pub use relay::upstream_headers;
use relay::{Relayed, forward, relay_websocket};

use crate::authz::subject;
use crate::config::TenantsConfig;
use crate::error::ApiError;
use crate::tenants::Slug;
use crate::tenants::lifecycle::Trigger;
use crate::tenants::routing::{Route, WorkspaceSession};
use crate::web::app::AppState;
use crate::web::extract::client_key;
use crate::web::pages::{escape_html, wants_html};

/// The path on a workspace origin that redeems a handoff code.
pub const HANDOFF_PATH: &str = "/_websplat/handoff";
/// The casbin object of every request to a workspace origin.
pub const POLICY_OBJECT: &str = "workspace";

/// The workspace cookie: host-only (no `Domain`), so it never reaches another workspace
/// or the platform; `__Host-` when served over TLS.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-websplat_ws"
    } else {
        "websplat_ws"
    }
}

/// The HTTP client of one worker thread for its tenants: keep-alive connections, no
/// redirects followed, no decompression (bodies pass through as they are); and the
/// replica's [`Limits`], shared by every worker.
pub struct Upstream {
    client: awc::Client,
    max_body: u64,
    idle: Duration,
    body_deadline: Duration,
    limits: Arc<Limits>,
}

impl Upstream {
    pub fn new(config: &TenantsConfig, limits: Arc<Limits>) -> Self {
        let connector = awc::Connector::new()
            .timeout(config.proxy_connect_timeout)
            .conn_keep_alive(Duration::from_secs(30))
            .limit(1024);
        let client = awc::Client::builder()
            .connector(connector)
            .disable_redirects()
            // The head of the answer (after the whole upload); bodies have idle timeouts.
            .timeout(Duration::from_secs(600))
            .finish();
        Upstream {
            client,
            max_body: config.proxy_max_body,
            idle: config.proxy_idle_timeout,
            body_deadline: config.proxy_body_deadline,
            limits,
        }
    }
}

/// The middleware in front of everything: workspace hosts to the proxy, the rest on to the
/// platform's routes.
pub async fn dispatch(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static, BoxBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let upstream = req.app_data::<web::Data<Upstream>>().cloned();
    let slug = match (&state, req.headers().get(header::HOST)) {
        (Some(state), Some(host)) => host
            .to_str()
            .ok()
            .map(str::to_ascii_lowercase)
            .and_then(|h| state.tenants.slug_of_host(&h)),
        _ => None,
    };
    let (Some(state), Some(upstream), Some(slug)) = (state, upstream, slug) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let (http, payload) = req.into_parts();
    let response = serve(&state, &upstream, &slug, &http, payload).await;
    Ok(ServiceResponse::new(http, response).map_into_right_body())
}

#[tracing::instrument(name = "workspace", skip_all, fields(slug = %slug))]
async fn serve(
    state: &AppState,
    upstream: &Upstream,
    slug: &Slug,
    req: &HttpRequest,
    payload: Payload,
) -> HttpResponse {
    let tenants = &state.tenants;
    if let Err(e) = upstream
        .limits
        .client(&client_key(req, &state.config.trusted_proxies))
    {
        state.metrics.proxy_refused("client_rate");
        return refuse(state, req, e);
    }
    if req.path() == HANDOFF_PATH {
        return handoff::serve(state, slug, req).await;
    }
    if let Some((token, _)) = websplat_contract::preview::split(req.path()) {
        return preview::serve(state, upstream, slug, token, req, payload).await;
    }
    let https = state.config.public_url.is_https();
    let token = req.cookie(cookie_name(https)).map(|c| c.value().to_owned());
    let lookup = match tenants.routing.lookup(token.as_deref(), slug).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "Redis unavailable for the workspace proxy");
            return refuse(state, req, ApiError::Unavailable("the session store"));
        }
    };
    let Some(session) = lookup.session else {
        return sign_in_first(state, req);
    };
    if session.slug != *slug {
        // Cookies are host-only: a session for another host here was copied by hand.
        return refuse(
            state,
            req,
            ApiError::NotFound("there is no workspace of yours here".to_owned()),
        );
    }
    let owner = lookup.route.as_ref().map_or(session.user, |r| r.user);
    if !state.authz.decide(
        &subject(session.user),
        POLICY_OBJECT,
        req.method().as_str(),
        &subject(owner),
    ) {
        return refuse(
            state,
            req,
            ApiError::Forbidden("this workspace is not yours".to_owned()),
        );
    }
    let own_origin = tenants.origin_of(slug);
    let websocket = is_websocket(req);
    if (websocket || !is_safe(req.method())) && !same_origin(req, &own_origin) {
        return refuse(
            state,
            req,
            ApiError::Forbidden(
                "cross-origin requests to a workspace are refused (the Origin header is not this workspace's)"
                    .to_owned(),
            ),
        );
    }
    let held = match upstream.limits.enter(slug, websocket) {
        Ok(held) => held,
        Err(e) => {
            state.metrics.proxy_refused(if websocket {
                "websockets"
            } else {
                "requests_or_rate"
            });
            return refuse(state, req, e);
        }
    };
    if req.path() == account::ME || req.path() == account::SIGN_OUT {
        return account::serve(state, &session, req).await;
    }
    if req.path() == sites::PREFIX || req.path().starts_with(&format!("{}/", sites::PREFIX)) {
        return sites::serve(state, &session, req, payload).await;
    }
    let Some(route) = lookup.route else {
        return starting(state, &session, req).await;
    };
    tenants.routing.touch(route.tenant);
    let started = Instant::now();
    let response = if websocket {
        relay(
            state,
            upstream,
            slug,
            &session,
            route,
            req,
            payload,
            Some(held),
        )
        .await
    } else {
        relay(state, upstream, slug, &session, route, req, payload, None)
            .await
            .map_body(|_, body| Holding { body, _held: held })
            .map_into_boxed_body()
    };
    state.metrics.proxied(
        req.method().as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Relays to `route`; where the tenant refuses it (401), reads the route again and retries
/// once if it moved and nothing of the request is spent, or else drops it and replaces the
/// workspace (the answer is then the "starting" one): never the runtime's raw 401.
#[allow(clippy::too_many_arguments)]
async fn relay(
    state: &AppState,
    upstream: &Upstream,
    slug: &Slug,
    session: &WorkspaceSession,
    route: Route,
    req: &HttpRequest,
    payload: Payload,
    mut websocket: Option<limits::Held>,
) -> HttpResponse {
    let mut route = route;
    let mut payload = payload;
    for attempt in 0..2 {
        let relayed = match websocket.take() {
            Some(held) => relay_websocket(state, upstream, &route, req, payload, held).await,
            None => forward(state, upstream, &route, req, payload).await,
        };
        payload = Payload::None;
        let body_sent = match relayed {
            Relayed::Answer(response) => return response,
            Relayed::Refused { body_sent } => body_sent,
        };
        let fresh = match state.tenants.routing.fresh_route(slug).await {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(error = %e, "Redis unavailable for the workspace proxy");
                return refuse(state, req, ApiError::Unavailable("the session store"));
            }
        };
        match fresh {
            Some(fresh) if !same_route(&fresh, &route) => {
                state.metrics.proxy_refused("stale_route_retried");
                if body_sent || attempt > 0 || is_websocket(req) {
                    return retry_soon(state, req);
                }
                route = fresh;
            }
            _ => {
                state.metrics.proxy_refused("stale_route_replaced");
                state.tenants.route_refused(slug, &route).await;
                return starting(state, session, req).await;
            }
        }
    }
    retry_soon(state, req)
}

fn same_route(a: &Route, b: &Route) -> bool {
    // The secret is derived from the tenant and user ids, so these say it all.
    a.tenant == b.tenant && a.user == b.user && a.address == b.address
}

/// The workspace moved while a request that cannot be replayed was on its way.
fn retry_soon(state: &AppState, req: &HttpRequest) -> HttpResponse {
    let words = "Your workspace moved while this request was on its way; send it again.";
    if wants_html(req) {
        return workspace_page(
            state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Your workspace moved",
            words,
            true,
        );
    }
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "1"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(websplat_contract::ErrorBody::new(
            "workspace_moved",
            words,
            crate::telemetry::current_request_id(),
        ))
}

/// A response body that holds the request's place among its workspace's requests in
/// progress until the last byte is sent (or the browser goes).
struct Holding<B> {
    body: B,
    _held: limits::Held,
}

impl<B: MessageBody + Unpin> MessageBody for Holding<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<actix_web::web::Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_websocket(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// No `Origin` (a program, or a same-origin GET) or this workspace's own; and where the
/// browser says where the request comes from (`Sec-Fetch-Site`), this very origin. A
/// browser that leaves `Origin` out of a write still says `cross-site` or `same-site`.
fn same_origin(req: &HttpRequest, own: &str) -> bool {
    let fetch_site_ok = req
        .headers()
        .get("sec-fetch-site")
        .is_none_or(|site| site.as_bytes() == b"same-origin");
    fetch_site_ok
        && match req.headers().get(header::ORIGIN) {
            None => !is_websocket(req),
            Some(origin) => origin.as_bytes() == own.as_bytes(),
        }
}

/// A browser is sent through the handoff; a program is told how to get in.
fn sign_in_first(state: &AppState, req: &HttpRequest) -> HttpResponse {
    if matches!(*req.method(), Method::GET | Method::HEAD) && wants_html(req) {
        let next = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .finish();
        let location = state
            .config
            .public_url
            .join(&format!("/workspace/open?{query}"));
        return HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    }
    refuse(
        state,
        req,
        ApiError::Unauthorized(
            "open your workspace from the platform (it hands this origin a cookie of its own)",
        ),
    )
}

/// No tenant serves this workspace: start one and say so.
async fn starting(state: &AppState, session: &WorkspaceSession, req: &HttpRequest) -> HttpResponse {
    match state.tenants.start(session.user, Trigger::Demand).await {
        Err(e) => refuse(state, req, e),
        Ok(status) => {
            let queued = match status.ahead {
                Some(0) => Some("Your workspace is next to start…".to_owned()),
                Some(1) => {
                    Some("Your workspace will start soon: 1 person is ahead of you.".to_owned())
                }
                Some(n) => Some(format!(
                    "Your workspace will start soon: {n} people are ahead of you."
                )),
                None => None,
            };
            let words = match (status.state, &queued) {
                (_, Some(words)) => words.as_str(),
                (crate::tenants::State::Failed, _) => {
                    "Your workspace stopped; a new one is starting."
                }
                _ => "Your workspace is starting…",
            };
            if wants_html(req) {
                return workspace_page(
                    state,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Starting your workspace",
                    words,
                    true,
                );
            }
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "1"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(serde_json::json!({
                    "error": {
                        "code": "workspace_starting",
                        "message": format!("{words} Retry in a moment."),
                        "state": status.state,
                        "request_id": crate::telemetry::current_request_id(),
                    }
                }))
        }
    }
}

fn refuse(state: &AppState, req: &HttpRequest, err: ApiError) -> HttpResponse {
    if wants_html(req) {
        let title = match err.status_code() {
            StatusCode::TOO_MANY_REQUESTS => "The platform is busy",
            s if s.is_server_error() => "Workspace unavailable",
            _ => "Not available to you",
        };
        return workspace_page(state, err.status_code(), title, &err.to_string(), false);
    }
    err.error_response()
}

/// A page on a workspace origin (so nothing relative: the origin belongs to the tenant).
fn workspace_page(
    state: &AppState,
    status: StatusCode,
    title: &str,
    message: &str,
    refresh: bool,
) -> HttpResponse {
    let dashboard = escape_html(&state.config.public_url.join("/dashboard"));
    let refresh_tag = if refresh {
        r#"<meta http-equiv="refresh" content="1">"#
    } else {
        ""
    };
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh_tag}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — WebSplat</title>
<style>body{{font:16px system-ui,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh;background:#f6f7fb;color:#1d2330}}main{{background:#fff;padding:2rem 2.5rem;border-radius:12px;box-shadow:0 2px 12px #0001;max-width:32rem}}a{{color:#4450d8}}</style>
</head><body><main>
<h1>{title}</h1>
<p id="workspace-message" role="status">{message}</p>
<p><a href="{dashboard}">Back to your dashboard</a></p>
</main></body></html>
"#,
        title = escape_html(title),
        message = escape_html(message),
    );
    let mut response = HttpResponse::build(status);
    if refresh {
        response.insert_header((header::RETRY_AFTER, "1"));
    }
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .body(body)
}
