//! The workspace origins: every request whose `Host` is `{slug}.{workspace domain}` is
//! served here instead of by the platform's routes. The browser must hold that host's
//! workspace cookie (made by a one-time-code handoff from the platform's origin, tied to a
//! live platform session), casbin must allow it (only the owner), and then the request is
//! relayed to the user's tenant: bodies streamed both ways, WebSockets frame by frame,
//! hop-by-hop headers stripped, `X-Forwarded-*` set, the user's identity signed with the
//! tenant's secret. The lookups on this path are one or two Redis round trips, never
//! PostgreSQL.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures_util::{SinkExt, StreamExt};

use super::app::AppState;
use super::pages::{escape_html, wants_html};
use crate::authz::subject;
use crate::config::TenantsConfig;
use crate::error::ApiError;
use crate::tenants::identity;
use crate::tenants::lifecycle::Trigger;
use crate::tenants::routing::{Route, WorkspaceSession};

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
/// redirects followed, no decompression (bodies pass through as they are).
pub struct Upstream {
    client: awc::Client,
    max_body: u64,
    idle: Duration,
}

impl Upstream {
    pub fn new(config: &TenantsConfig) -> Self {
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
            .and_then(|h| state.tenants.slug_of_host(&h).map(str::to_owned)),
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
    slug: &str,
    req: &HttpRequest,
    payload: Payload,
) -> HttpResponse {
    let tenants = &state.tenants;
    if req.path() == HANDOFF_PATH {
        return redeem(state, slug, req).await;
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
    if session.slug != slug {
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
    let Some(route) = lookup.route else {
        return starting(state, &session, req).await;
    };
    tenants.routing.touch(route.tenant);
    let started = Instant::now();
    let response = if websocket {
        relay_websocket(state, upstream, &route, req, payload).await
    } else {
        forward(state, upstream, &route, req, payload).await
    };
    state.metrics.proxied(
        req.method().as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
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

/// No `Origin` (a program, or a same-origin GET) or this workspace's own.
fn same_origin(req: &HttpRequest, own: &str) -> bool {
    match req.headers().get(header::ORIGIN) {
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

async fn redeem(state: &AppState, slug: &str, req: &HttpRequest) -> HttpResponse {
    let code = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let handoff = match state.tenants.routing.redeem_handoff(&code).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot redeem a workspace handoff");
            return refuse(state, req, ApiError::Unavailable("the session store"));
        }
    };
    let Some(handoff) = handoff.filter(|h| h.slug == slug) else {
        return refuse(
            state,
            req,
            ApiError::BadRequest(
                "this link to your workspace has expired or was already used; open the workspace again from your dashboard"
                    .to_owned(),
            ),
        );
    };
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
    let https = state.config.public_url.is_https();
    let cookie = Cookie::build(cookie_name(https), token)
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .finish();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, handoff.next))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .finish()
}

/// No tenant serves this workspace: start one and say so.
async fn starting(state: &AppState, session: &WorkspaceSession, req: &HttpRequest) -> HttpResponse {
    match state.tenants.start(session.user, Trigger::Demand).await {
        Err(e) => refuse(state, req, e),
        Ok(status) => {
            let words = match status.state {
                crate::tenants::State::Failed => "Your workspace stopped; a new one is starting.",
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

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the `Connection` header names.
fn hop_by_hop(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("proxy-connection"),
    ]
    .into();
    for value in headers.get_all(header::CONNECTION) {
        if let Ok(value) = value.to_str() {
            names.extend(
                value
                    .split(',')
                    .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok()),
            );
        }
    }
    names
}

/// The headers a tenant gets: the browser's, minus hop-by-hop ones, platform credentials
/// (the workspace cookie, `Authorization`) and anything claiming to be from the platform;
/// plus `X-Forwarded-*`, `Host` and the signed identity.
pub fn upstream_headers(
    req: &HttpRequest,
    https: bool,
    route: &Route,
    trust_forwarded_for: bool,
) -> Vec<(HeaderName, HeaderValue)> {
    let incoming = req.headers();
    let dropped = hop_by_hop(incoming);
    let mut out = Vec::new();
    let ours = cookie_name(https);
    for (name, value) in incoming {
        let n = name.as_str();
        if dropped.contains(name)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::AUTHORIZATION
            || name == header::COOKIE
            || name == header::FORWARDED
            // The platform's server already answered it; the tenant gets the body as is.
            || name == header::EXPECT
            || n.starts_with("x-forwarded-")
            || n.starts_with("x-websplat-")
        {
            continue;
        }
        out.push((name.clone(), value.clone()));
    }
    // Cookies of the workspace's own pages pass; the platform's workspace cookie does not.
    let cookies: Vec<String> = incoming
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.split('=').next() != Some(ours))
        .map(str::to_owned)
        .collect();
    if !cookies.is_empty()
        && let Ok(v) = HeaderValue::from_str(&cookies.join("; "))
    {
        out.push((header::COOKIE, v));
    }
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let forwarded_for = match incoming
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .filter(|_| trust_forwarded_for)
    {
        Some(chain) => format!("{chain}, {peer}"),
        None => peer,
    };
    let host = incoming
        .get(header::HOST)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("workspace"));
    if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
        out.push((HeaderName::from_static("x-forwarded-for"), v));
    }
    out.push((
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if https { "https" } else { "http" }),
    ));
    out.push((HeaderName::from_static("x-forwarded-host"), host.clone()));
    out.push((header::HOST, host));
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let signed = identity::sign_now(&route.secret, route.user, req.method().as_str(), path);
    if let Ok(v) = HeaderValue::from_str(&signed) {
        out.push((HeaderName::from_static(identity::HEADER), v));
    }
    out
}

/// Relays one HTTP exchange, streaming the request and response bodies.
async fn forward(
    state: &AppState,
    upstream: &Upstream,
    route: &Route,
    req: &HttpRequest,
    payload: Payload,
) -> HttpResponse {
    let declared: Option<u64> = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > upstream.max_body) {
        return too_large(state, req, upstream.max_body);
    }
    let has_body =
        declared.is_some_and(|n| n > 0) || req.headers().contains_key(header::TRANSFER_ENCODING);
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://{}{}", route.address, path);
    let https = state.config.public_url.is_https();
    let mut request = upstream.client.request(req.method().clone(), url);
    for (name, value) in upstream_headers(req, https, route, state.config.trust_forwarded_for) {
        request = request.append_header((name, value));
    }
    if let Some(n) = declared.filter(|_| has_body) {
        // Sent as is, so the tenant sees the size up front (no chunking).
        request = request.insert_header((header::CONTENT_LENGTH, n));
    }
    let tripped = Rc::new(Cell::new(false));
    let sent = if has_body {
        let body = bounded(
            payload,
            upstream.max_body,
            upstream.idle,
            Rc::clone(&tripped),
        );
        request.send_stream(body).await
    } else {
        request.send().await
    };
    let answer = match sent {
        Ok(a) => a,
        Err(_) if tripped.get() => return too_large(state, req, upstream.max_body),
        Err(e) => {
            tracing::warn!(tenant = %route.tenant, error = %e, "the workspace did not answer");
            return refuse(state, req, ApiError::Unavailable("your workspace"));
        }
    };
    let mut response = HttpResponse::build(answer.status());
    let dropped = hop_by_hop(answer.headers());
    let ours = cookie_name(https);
    for (name, value) in answer.headers() {
        if dropped.contains(name) || name == header::CONTENT_LENGTH {
            continue;
        }
        if name == header::SET_COOKIE
            && value
                .to_str()
                .ok()
                .and_then(|v| v.split('=').next())
                .is_some_and(|n| n.trim() == ours)
        {
            continue;
        }
        response.append_header((name.clone(), value.clone()));
    }
    let length: Option<u64> = answer
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let status = answer.status();
    if *req.method() == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        if let Some(n) = length {
            response.insert_header((header::CONTENT_LENGTH, n));
        }
        return response.finish();
    }
    let tenants = state.tenants.clone();
    let tenant = route.tenant;
    let idle = upstream.idle;
    let body = futures_util::stream::unfold(answer, move |mut answer| {
        let tenants = tenants.clone();
        async move {
            match tokio::time::timeout(idle, answer.next()).await {
                Err(_) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the workspace went quiet",
                    )),
                    answer,
                )),
                Ok(None) => None,
                Ok(Some(Ok(chunk))) => {
                    tenants.routing.touch(tenant);
                    Some((Ok::<Bytes, std::io::Error>(chunk), answer))
                }
                Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e.to_string())), answer)),
            }
        }
    });
    match length {
        Some(n) => response.no_chunking(n).streaming(body),
        None => response.streaming(body),
    }
}

fn too_large(state: &AppState, req: &HttpRequest, max: u64) -> HttpResponse {
    refuse(
        state,
        req,
        ApiError::TooLarge(format!(
            "the request body is larger than the {} MiB a workspace accepts",
            max / (1024 * 1024)
        )),
    )
}

/// The request body as a stream that fails past `max` bytes or after `idle` without data.
fn bounded(
    payload: Payload,
    max: u64,
    idle: Duration,
    tripped: Rc<Cell<bool>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + 'static {
    futures_util::stream::unfold((payload, 0u64, false), move |(mut payload, seen, done)| {
        let tripped = Rc::clone(&tripped);
        async move {
            if done {
                return None;
            }
            match tokio::time::timeout(idle, payload.next()).await {
                Err(_) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the upload went quiet",
                    )),
                    (payload, seen, true),
                )),
                Ok(None) => None,
                Ok(Some(Err(e))) => Some((
                    Err(std::io::Error::other(e.to_string())),
                    (payload, seen, true),
                )),
                Ok(Some(Ok(chunk))) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > max {
                        tripped.set(true);
                        return Some((
                            Err(std::io::Error::other("the request body is too large")),
                            (payload, seen, true),
                        ));
                    }
                    Some((Ok(chunk), (payload, seen, false)))
                }
            }
        }
    })
}

/// Relays a WebSocket: the tenant's side is connected first (so a failure is a plain
/// 502), then the browser's is accepted and frames flow both ways until either closes.
async fn relay_websocket(
    state: &AppState,
    upstream: &Upstream,
    route: &Route,
    req: &HttpRequest,
    payload: Payload,
) -> HttpResponse {
    use awc::ws::{Frame, Message};
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("ws://{}{}", route.address, path);
    let https = state.config.public_url.is_https();
    let mut connect = upstream.client.ws(url).max_frame_size(16 * 1024 * 1024);
    for (name, value) in upstream_headers(req, https, route, state.config.trust_forwarded_for) {
        let skip = name == header::HOST
            || name.as_str().starts_with("sec-websocket-")
            || name == header::ORIGIN;
        if !skip {
            connect = connect.set_header(name, value);
        }
    }
    if let Some(host) = req.headers().get(header::HOST) {
        connect = connect.set_header(header::HOST, host.clone());
    }
    let protocols: Vec<String> = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default();
    if !protocols.is_empty() {
        connect = connect.protocols(protocols);
    }
    let (answer, tenant_side) = match connect.connect().await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(tenant = %route.tenant, error = %e, "the workspace refused a WebSocket");
            return refuse(state, req, ApiError::Unavailable("your workspace"));
        }
    };
    let mut payload = payload;
    let body = match <web::Payload as actix_web::FromRequest>::from_request(req, &mut payload).await
    {
        Ok(body) => body,
        Err(e) => return e.error_response(),
    };
    let (mut response, mut session, mut browser) = match actix_ws::handle(req, body) {
        Ok(parts) => parts,
        Err(e) => return e.error_response(),
    };
    if let Some(chosen) = answer.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, chosen.clone());
    }
    let browser_session = session.clone();
    let tenants = state.tenants.clone();
    let tenant = route.tenant;
    let idle = upstream.idle;
    actix_web::rt::spawn(async move {
        let (mut to_tenant, mut from_tenant) = tenant_side.split();
        let close = loop {
            tokio::select! {
                msg = tokio::time::timeout(idle, browser.next()) => {
                    let Ok(msg) = msg else { break None };
                    let Some(Ok(msg)) = msg else { break None };
                    tenants.routing.touch(tenant);
                    let done = matches!(msg, Message::Close(_));
                    if to_tenant.send(msg).await.is_err() || done {
                        break None;
                    }
                }
                frame = from_tenant.next() => {
                    let Some(Ok(frame)) = frame else { break None };
                    tenants.routing.touch(tenant);
                    let sent = match frame {
                        Frame::Text(b) => match String::from_utf8(b.to_vec()) {
                            Ok(text) => session.text(text).await,
                            Err(_) => break None,
                        },
                        Frame::Binary(b) => session.binary(b).await,
                        Frame::Ping(b) => session.ping(&b).await,
                        Frame::Pong(b) => session.pong(&b).await,
                        Frame::Continuation(item) => session.continuation(item).await,
                        Frame::Close(reason) => break reason,
                    };
                    if sent.is_err() {
                        break None;
                    }
                }
            }
        };
        let _ = to_tenant.close().await;
        let _ = browser_session.close(close).await;
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn tenants_get_no_platform_credentials_and_no_hop_by_hop_headers() {
        let req = TestRequest::get()
            .uri("/x?y=1")
            .insert_header((header::HOST, "alice-1.ws.localhost:8080"))
            .insert_header((header::COOKIE, "websplat_ws=secret; theme=dark"))
            .insert_header((header::AUTHORIZATION, "Bearer wsp_abc"))
            .insert_header((header::CONNECTION, "keep-alive, x-private"))
            .insert_header(("x-private", "1"))
            .insert_header(("keep-alive", "timeout=5"))
            .insert_header(("x-websplat-identity", "forged"))
            .insert_header(("x-forwarded-for", "6.6.6.6"))
            .insert_header(("accept", "text/html"))
            .peer_addr("10.0.0.7:5000".parse().expect("address"))
            .to_http_request();
        let route = Route {
            tenant: crate::tenants::TenantId(uuid::Uuid::nil()),
            user: crate::users::UserId(uuid::Uuid::nil()),
            address: "172.20.0.2:8080".to_owned(),
            secret: "s".repeat(40),
        };
        let out = upstream_headers(&req, false, &route, false);
        let get = |n: &str| -> Vec<&str> {
            out.iter()
                .filter(|(k, _)| k.as_str() == n)
                .filter_map(|(_, v)| v.to_str().ok())
                .collect()
        };
        assert_eq!(get("cookie"), ["theme=dark"]);
        assert!(get("authorization").is_empty());
        assert!(get("connection").is_empty());
        assert!(get("keep-alive").is_empty());
        assert!(get("x-private").is_empty());
        assert_eq!(get("x-forwarded-for"), ["10.0.0.7"]);
        assert_eq!(get("x-forwarded-proto"), ["http"]);
        assert_eq!(get("x-forwarded-host"), ["alice-1.ws.localhost:8080"]);
        assert_eq!(get("host"), ["alice-1.ws.localhost:8080"]);
        assert_eq!(get("accept"), ["text/html"]);
        let identity = get("x-websplat-identity");
        assert_eq!(identity.len(), 1);
        assert!(identity[0].starts_with("v1;user=00000000-0000-0000-0000-000000000000;ts="));
    }
}
