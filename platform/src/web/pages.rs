//! The platform's own web pages: plain HTML, CSS and JavaScript modules, embedded in the
//! binary so a deployment is one file and no page depends on a CDN. Pages get a strict
//! Content-Security-Policy (no inline script or style), so user-controlled text rendered by
//! the scripts can never run as code.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION};
use actix_web::{HttpResponse, web};

use crate::error::ApiError;

const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const LOGIN: &str = include_str!("../../web/login.html");
const DASHBOARD: &str = include_str!("../../web/dashboard.html");
const DOCS: &str = include_str!("../../web/docs.html");
const ADMIN: &str = include_str!("../../web/admin.html");

/// `(name, content type, body)` of every static asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../web/static/app.css"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/static/api.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/static/login.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/static/dashboard.js"),
    ),
    (
        "workspace.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/static/workspace.js"),
    ),
    (
        "docs.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/static/docs.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/static/admin.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../web/static/favicon.svg"),
    ),
];

fn page(body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(body)
}

pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether the request comes from a browser navigating (rather than a script or program).
pub fn wants_html(req: &actix_web::HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// A page explaining why a browser sign-in failed, with the error's status, so a person who
/// lands here from a provider reads a sentence and a way back, not JSON.
pub fn sign_in_failed_page(err: &ApiError) -> HttpResponse {
    message_page("Sign-in failed", err, ("/login", "Back to sign-in"))
}

/// A page for a browser refused a page by the policy (or by a failed credential).
pub fn refusal_page(err: &ApiError) -> HttpResponse {
    message_page(
        "Not available to you",
        err,
        ("/dashboard", "Back to your dashboard"),
    )
}

fn message_page(title: &str, err: &ApiError, back: (&str, &str)) -> HttpResponse {
    use actix_web::ResponseError;
    let (back_href, back_label) = back;
    let message = escape_html(&err.to_string());
    let request_id = escape_html(&crate::telemetry::current_request_id());
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} — WebSplat</title>
  <link rel="icon" type="image/svg+xml" href="/static/favicon.svg">
  <link rel="stylesheet" href="/static/app.css">
</head>
<body class="auth-page">
  <main class="auth-card">
    <h1>{title}</h1>
    <p id="error-message" class="alert alert-error" role="alert">{message}</p>
    <p><a class="button" href="{back_href}">{back_label}</a></p>
    <p class="muted">Request id: <code>{request_id}</code></p>
  </main>
</body>
</html>
"#
    );
    HttpResponse::build(err.status_code())
        .content_type("text/html; charset=utf-8")
        .insert_header((CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

pub async fn index() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((LOCATION, "/dashboard"))
        .finish()
}

pub async fn login_page() -> HttpResponse {
    page(LOGIN)
}

pub async fn dashboard_page() -> HttpResponse {
    page(DASHBOARD)
}

/// The admin console; which parts show is decided by the user's capabilities.
pub async fn admin_page() -> HttpResponse {
    page(ADMIN)
}

pub async fn docs_page() -> HttpResponse {
    page(DOCS)
}

pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("no asset named {:?}", name.as_str())))?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(*body))
}
