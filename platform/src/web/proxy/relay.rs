//! The relay itself: a request and its answer streamed between the browser and the tenant
//! (bodies bounded by the proxy's limit and cut when idle), or a WebSocket relayed frame by
//! frame; the headers that cross are filtered here ([`upstream_headers`]). Nothing here
//! decides who may pass: [`super::serve`] has done that before a relay starts.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::{SinkExt, StreamExt};

use super::{Upstream, cookie_name, refuse};
use crate::config::proxies::TrustedProxies;
use crate::error::ApiError;
use crate::tenants::identity::{self, TenantKeys};
use crate::tenants::routing::Route;
use crate::web::app::AppState;
use crate::web::extract::client_ip;

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
    proxies: &TrustedProxies,
    keys: &TenantKeys,
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
    // The runtime's analytics take the first hop as the visitor: give it only the client
    // the platform decided on (never a chain a client could have written).
    let forwarded_for = client_ip(req, proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
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
    let signed = identity::sign_route(keys, route, req.method().as_str(), path);
    if let Ok(v) = HeaderValue::from_str(&signed) {
        out.push((HeaderName::from_static(identity::HEADER), v));
    }
    out
}

/// What came of relaying one exchange.
pub(super) enum Relayed {
    Answer(HttpResponse),
    /// The tenant refused the route's signature (401): the route is stale. Nothing of its
    /// answer was passed on; `body_sent` says whether the request's body is spent.
    Refused {
        body_sent: bool,
    },
}

/// Why a request body was cut.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    No,
    /// The whole body went to the runtime.
    Whole,
    TooLarge,
    Quiet,
    Late,
}

/// Relays one HTTP exchange, streaming the request and response bodies.
pub(super) async fn forward(
    state: &AppState,
    upstream: &Upstream,
    route: &Route,
    req: &HttpRequest,
    payload: Payload,
) -> Relayed {
    let declared: Option<u64> = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > upstream.max_body) {
        return Relayed::Answer(too_large(state, req, upstream.max_body));
    }
    let has_body =
        declared.is_some_and(|n| n > 0) || req.headers().contains_key(header::TRANSFER_ENCODING);
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://{}{}", route.address, path);
    let https = state.config.public_url.is_https();
    let mut request = upstream.client.request(req.method().clone(), url);
    for (name, value) in upstream_headers(
        req,
        https,
        route,
        &state.config.trusted_proxies,
        &state.tenants.keys,
    ) {
        request = request.append_header((name, value));
    }
    if let Some(n) = declared.filter(|_| has_body) {
        // Sent as is, so the tenant sees the size up front (no chunking).
        request = request.insert_header((header::CONTENT_LENGTH, n));
    }
    let cut = Rc::new(Cell::new(Cut::No));
    let sent = if has_body {
        let body = bounded(
            payload,
            upstream.max_body,
            upstream.idle,
            tokio::time::Instant::now() + upstream.body_deadline,
            Rc::clone(&cut),
        );
        // A runtime may answer before it has read the whole body (a quota refusal): that
        // connection is left mid-body, so it is never handed to the next request.
        request.force_close().send_stream(body).await
    } else {
        request.send().await
    };
    let answer = match (sent, cut.get()) {
        (_, Cut::TooLarge) => return Relayed::Answer(too_large(state, req, upstream.max_body)),
        (_, Cut::Quiet) => {
            let words = format!(
                "the upload stopped for {} seconds, so it was cut; send it again",
                upstream.idle.as_secs()
            );
            return Relayed::Answer(timed_out(state, req, &words));
        }
        (_, Cut::Late) => {
            let words = format!(
                "the upload did not arrive whole within {} seconds, so it was cut; send it again over a faster connection, or in smaller parts",
                upstream.body_deadline.as_secs()
            );
            return Relayed::Answer(timed_out(state, req, &words));
        }
        (Ok(a), Cut::No | Cut::Whole) => a,
        (Err(e), Cut::No | Cut::Whole) => {
            tracing::warn!(tenant = %route.tenant, error = %e, "the workspace did not answer");
            return Relayed::Answer(refuse(state, req, ApiError::Unavailable("your workspace")));
        }
    };
    if answer.status() == StatusCode::UNAUTHORIZED {
        // Only the runtime's trust check answers 401: it does not take this route's
        // signature, so the route no longer leads to this workspace's runtime.
        return Relayed::Refused {
            body_sent: has_body,
        };
    }
    let mut response = HttpResponse::build(answer.status());
    if has_body && cut.get() != Cut::Whole {
        // Answered before the browser's body was read to its end: the rest of it is still
        // on this connection, so the connection ends with this answer.
        response.force_close();
    }
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
        return Relayed::Answer(response.finish());
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
    Relayed::Answer(match length {
        Some(n) => response.no_chunking(n).streaming(body),
        None => response.streaming(body),
    })
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

/// 408 in words: the request body did not arrive in time. The connection is closed, since
/// the rest of the body may still be on its way.
fn timed_out(state: &AppState, req: &HttpRequest, words: &str) -> HttpResponse {
    tracing::info!(request_id = %crate::telemetry::current_request_id(), "an upload was cut: {words}");
    state.metrics.proxy_refused("body_timeout");
    if crate::web::pages::wants_html(req) {
        let mut page = super::workspace_page(
            state,
            StatusCode::REQUEST_TIMEOUT,
            "The upload took too long",
            &websplat_contract::sentence(words),
            false,
        );
        page.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        return page;
    }
    HttpResponse::RequestTimeout()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .force_close()
        .json(websplat_contract::ErrorBody::new(
            "request_timeout",
            websplat_contract::sentence(words),
            crate::telemetry::current_request_id(),
        ))
}

/// The request body as a stream that fails past `max` bytes, after `idle` without data, or
/// at `deadline` however steadily it comes; `cut` says which.
fn bounded(
    payload: Payload,
    max: u64,
    idle: Duration,
    deadline: tokio::time::Instant,
    cut: Rc<Cell<Cut>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + 'static {
    futures_util::stream::unfold((payload, 0u64, false), move |(mut payload, seen, done)| {
        let cut = Rc::clone(&cut);
        async move {
            if done {
                return None;
            }
            let quiet_at = tokio::time::Instant::now() + idle;
            match tokio::time::timeout_at(quiet_at.min(deadline), payload.next()).await {
                Err(_) => {
                    let late = deadline <= quiet_at;
                    cut.set(if late { Cut::Late } else { Cut::Quiet });
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            if late {
                                "the upload took too long"
                            } else {
                                "the upload went quiet"
                            },
                        )),
                        (payload, seen, true),
                    ))
                }
                Ok(None) => {
                    cut.set(Cut::Whole);
                    None
                }
                Ok(Some(Err(e))) => Some((
                    Err(std::io::Error::other(e.to_string())),
                    (payload, seen, true),
                )),
                Ok(Some(Ok(chunk))) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > max {
                        cut.set(Cut::TooLarge);
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
pub(super) async fn relay_websocket(
    state: &AppState,
    upstream: &Upstream,
    route: &Route,
    req: &HttpRequest,
    payload: Payload,
    held: super::limits::Held,
) -> Relayed {
    use awc::ws::{Frame, Message};
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("ws://{}{}", route.address, path);
    let https = state.config.public_url.is_https();
    let mut connect = upstream.client.ws(url).max_frame_size(16 * 1024 * 1024);
    for (name, value) in upstream_headers(
        req,
        https,
        route,
        &state.config.trusted_proxies,
        &state.tenants.keys,
    ) {
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
        Err(awc::error::WsClientError::InvalidResponseStatus(StatusCode::UNAUTHORIZED)) => {
            return Relayed::Refused { body_sent: false };
        }
        Err(e) => {
            tracing::warn!(tenant = %route.tenant, error = %e, "the workspace refused a WebSocket");
            return Relayed::Answer(refuse(state, req, ApiError::Unavailable("your workspace")));
        }
    };
    let mut payload = payload;
    let body = match <web::Payload as actix_web::FromRequest>::from_request(req, &mut payload).await
    {
        Ok(body) => body,
        Err(e) => return Relayed::Answer(e.error_response()),
    };
    let (mut response, mut session, mut browser) = match actix_ws::handle(req, body) {
        Ok(parts) => parts,
        Err(e) => return Relayed::Answer(e.error_response()),
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
        // Counted among the workspace's WebSockets until either side closes.
        let _held = held;
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
    Relayed::Answer(response)
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
        };
        let keys = identity::TenantKeys::new(&[1u8; 32]);
        let out = upstream_headers(&req, false, &route, &TrustedProxies::None, &keys);
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
