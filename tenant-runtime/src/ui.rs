//! The workspace's web UI: one page (`GET /`) and its assets (`GET /static/{name}`), plain
//! HTML, CSS and JavaScript modules embedded in the binary, so the container needs no other
//! file and no page depends on a CDN. The page gets a strict Content-Security-Policy: no
//! inline script or style, frames only from this origin (the sandboxed preview), so text
//! from projects, documents or agents rendered by the scripts can never run as code.
//! The routes (`GET` and `HEAD`) are declared in `routes`.

use actix_web::http::header::{
    self, CACHE_CONTROL, CONTENT_SECURITY_POLICY, ETAG, HeaderValue, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The page's policy. `frame-src 'self'` is for the preview, which the server itself
/// sandboxes (`Content-Security-Policy: sandbox allow-scripts`) and the page's iframe does too.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; \
base-uri 'none'; form-action 'self'";

const INDEX: &str = include_str!("../web/index.html");

const JS: &str = "text/javascript; charset=utf-8";

/// `(name, content type, body)` of every static asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../web/static/app.css"),
    ),
    ("api.js", JS, include_str!("../web/static/api.js")),
    ("app.js", JS, include_str!("../web/static/app.js")),
    ("projects.js", JS, include_str!("../web/static/projects.js")),
    (
        "workspace.js",
        JS,
        include_str!("../web/static/workspace.js"),
    ),
    ("editor.js", JS, include_str!("../web/static/editor.js")),
    ("history.js", JS, include_str!("../web/static/history.js")),
    ("seo.js", JS, include_str!("../web/static/seo.js")),
    ("jobs.js", JS, include_str!("../web/static/jobs.js")),
    ("generate.js", JS, include_str!("../web/static/generate.js")),
    ("export.js", JS, include_str!("../web/static/export.js")),
    ("settings.js", JS, include_str!("../web/static/settings.js")),
    (
        "documents.js",
        JS,
        include_str!("../web/static/documents.js"),
    ),
    ("agents.js", JS, include_str!("../web/static/agents.js")),
    ("chat.js", JS, include_str!("../web/static/chat.js")),
    (
        "analytics.js",
        JS,
        include_str!("../web/static/analytics.js"),
    ),
    ("chooser.js", JS, include_str!("../web/static/chooser.js")),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../web/static/favicon.svg"),
    ),
];

/// A strong validator for an embedded body: its SHA-256, quoted.
fn etag(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether the client already holds `tag` (`If-None-Match`, possibly a list, or `*`).
fn fresh(req: &HttpRequest, tag: &str) -> bool {
    req.headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t == tag)
        })
}

/// An embedded body, revalidated on every use (`no-cache` plus an ETag): an upgraded
/// runtime never serves yesterday's scripts, and an unchanged one answers 304.
fn embedded(req: &HttpRequest, content_type: &str, body: &'static str) -> HttpResponse {
    let tag = etag(body);
    let not_modified = fresh(req, &tag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((CACHE_CONTROL, "no-cache"))
        .insert_header((ETAG, tag))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ));
    if not_modified {
        response.finish()
    } else {
        response.content_type(content_type).body(body)
    }
}

/// The app: one page; the scripts route by the URL's fragment (`#/projects`, …).
pub async fn index(req: HttpRequest) -> HttpResponse {
    let mut response = embedded(&req, "text/html; charset=utf-8", INDEX);
    response
        .headers_mut()
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    response
}

/// A static asset of the web app, by name.
pub async fn asset(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("there is no asset {:?}", name.as_str())))?;
    Ok(embedded(&req, content_type, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_or_a_module_names_is_served() {
        let mut named = Vec::new();
        let sources = std::iter::once(INDEX).chain(ASSETS.iter().map(|(_, _, body)| *body));
        for source in sources {
            for piece in source.split("/static/").skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    .collect();
                named.push(name);
            }
            for piece in source.split("from './").skip(1) {
                named.push(piece.chars().take_while(|c| *c != '\'').collect());
            }
        }
        assert!(named.len() > 5, "{named:?}");
        for name in named {
            assert!(
                ASSETS.iter().any(|(n, _, _)| *n == name),
                "{name:?} is referenced but not embedded"
            );
        }
    }

    #[test]
    fn the_page_has_no_inline_script_style_or_handler() {
        let lower = INDEX.to_ascii_lowercase();
        assert!(!lower.contains("<style"));
        assert!(!lower.contains(" style="));
        assert!(!lower.contains(" onclick=") && !lower.contains(" onload="));
        for tag in lower.split("<script").skip(1) {
            assert!(
                tag.split('>').next().is_some_and(|a| a.contains(" src=")),
                "an inline script: <script{tag}"
            );
        }
    }
}
