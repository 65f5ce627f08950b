//! The published sites' origins: every request whose `Host` is `{name}.{sites domain}` is
//! answered here, from the site's current build in storage (disk or bucket), before any of the platform's
//! routes, cookies or guards — to anyone, whether the owner's workspace runs or not.
//! Answers carry a strict `Content-Security-Policy`, a strong `ETag` (304 on revalidation)
//! and `Cache-Control: public, no-cache`, so a new publish or an unpublish shows at the next
//! request. HTML pages get the analytics beacon (`/_websplat/beacon.js`, a script of this
//! origin, so the policy needs no inline script), whose views are relayed to the owner's
//! workspace analytics by `crate::sites`.
//!
//! This module must never set or read a cookie, serve a file outside the site's build, or
//! relay a visitor's request to a workspace.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::sites::{Site, SiteName, View};
use crate::web::app::AppState;
use crate::web::extract::client_ip;
use crate::web::pages::{escape_html, wants_html};

/// The policy every answer of a site carries: the site's own files only, no inline
/// script, no plug-ins, no framing, forms only to itself.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; media-src 'self'; connect-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'self'; frame-ancestors 'none'";

/// Where a site's beacon script and pixel are served (no site file starts with `_websplat/`
/// that would be reachable: the platform answers these first).
pub const BEACON_SCRIPT: &str = "/_websplat/beacon.js";
pub const BEACON_PIXEL: &str = "/_websplat/a.gif";

const SCRIPT: &str = "(function(){var i=new Image();i.src='/_websplat/a.gif?path='+encodeURIComponent(location.pathname)+'&r='+encodeURIComponent(document.referrer);})();\n";

/// A 1×1 transparent GIF.
const PIXEL: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// The middleware in front of everything: site hosts here, the rest on.
pub async fn dispatch(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static, BoxBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let name = match (&state, req.headers().get(header::HOST)) {
        (Some(state), Some(host)) => host
            .to_str()
            .ok()
            .map(str::to_ascii_lowercase)
            .and_then(|h| state.sites.name_of_host(&h)),
        _ => None,
    };
    let (Some(state), Some(name)) = (state, name) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let (http, _) = req.into_parts();
    let response = serve(&state, &name, &http).await;
    Ok(ServiceResponse::new(http, response).map_into_right_body())
}

#[tracing::instrument(name = "site", skip_all, fields(site = %name))]
async fn serve(state: &AppState, name: &SiteName, req: &HttpRequest) -> HttpResponse {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return secured(
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, "GET, HEAD"))
                .json(error_body(&ApiError::BadRequest(
                    "A published site can only be read (GET or HEAD).".to_owned(),
                ))),
        );
    }
    if req.path() == BEACON_SCRIPT {
        return secured(
            HttpResponse::Ok()
                .content_type("text/javascript; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
                .body(SCRIPT),
        );
    }
    let site = match state.sites.find(name).await {
        Ok(Some(site)) => site,
        Ok(None) => return not_found(req, "No site is published at this address."),
        Err(e) => {
            tracing::warn!(error = %e, "cannot look a site up");
            return secured(
                HttpResponse::ServiceUnavailable()
                    .insert_header((header::RETRY_AFTER, "5"))
                    .json(error_body(&e)),
            );
        }
    };
    if req.path() == BEACON_PIXEL {
        count(state, &site, req).await;
        return secured(
            HttpResponse::Ok()
                .content_type("image/gif")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(PIXEL),
        );
    }
    let found = state.sites.storage.read(site.build, req.path()).await;
    let (file, bytes) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(req, "There is no page at this address of the site."),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a site's file");
            return secured(
                HttpResponse::ServiceUnavailable()
                    .insert_header((header::RETRY_AFTER, "5"))
                    .json(error_body(&ApiError::Unavailable("the sites' storage"))),
            );
        }
    };
    let etag = format!("\"{}-{}\"", site.build.simple(), short_hash(&file));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let content_type = websplat_contract::files::content_type(&file);
    if fresh {
        return secured(
            HttpResponse::NotModified()
                .insert_header((header::ETAG, etag))
                .insert_header((header::CACHE_CONTROL, "public, no-cache"))
                .finish(),
        );
    }
    let body = if content_type.starts_with("text/html") {
        with_beacon(&String::from_utf8_lossy(&bytes)).into_bytes()
    } else {
        bytes
    };
    secured(
        HttpResponse::Ok()
            .content_type(content_type)
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, "public, no-cache"))
            .body(body),
    )
}

/// The page with the beacon script before its closing `</body>` (or at the end).
fn with_beacon(html: &str) -> String {
    let tag = format!("<script src=\"{BEACON_SCRIPT}\" defer></script>");
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{tag}{}", &html[..at], &html[at..]),
        None => format!("{html}{tag}"),
    }
}

fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Relays a page view of `site` to its owner's analytics (only views of the site's pages).
async fn count(state: &AppState, site: &Site, req: &HttpRequest) {
    let query = url::form_urlencoded::parse(req.query_string().as_bytes());
    let (mut path, mut referrer) = (None, None);
    for (k, v) in query {
        match k.as_ref() {
            "path" => path = Some(v.into_owned()),
            "r" if !v.is_empty() => referrer = Some(v.chars().take(500).collect::<String>()),
            _ => {}
        }
    }
    let Some(path) = path else { return };
    let page = state
        .sites
        .storage
        .resolve(site.build, &path)
        .await
        .filter(|file| websplat_contract::files::content_type(file).starts_with("text/html"));
    let Some(page) = page else { return };
    let header = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let view = View {
        project: site.project_id,
        path: page,
        referrer,
        client: client_ip(req, &state.config.trusted_proxies)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        user_agent: header(header::USER_AGENT),
    };
    state
        .sites
        .count_view(&state.tenants, site.user_id, view)
        .await;
}

/// The headers every answer of a site carries.
fn secured(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    headers.remove(header::SET_COOKIE);
    response
}

fn error_body(err: &ApiError) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "code": err.code(),
            "message": err.to_string(),
            "request_id": crate::telemetry::current_request_id(),
        }
    })
}

/// 404: a short page for browsers, the JSON error for programs.
fn not_found(req: &HttpRequest, message: &str) -> HttpResponse {
    let response = if wants_html(req) {
        HttpResponse::build(StatusCode::NOT_FOUND)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Not found</title></head>\n<body><h1>Not found</h1><p>{}</p></body></html>\n",
                escape_html(message)
            ))
    } else {
        HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .json(error_body(&ApiError::NotFound(message.to_owned())))
    };
    secured(response)
}
