//! The platform's own web pages: plain HTML, CSS and JavaScript modules, embedded in the
//! binary so a deployment is one file and no page depends on a CDN. Pages get a strict
//! Content-Security-Policy (no inline script or style), so user-controlled text rendered by
//! the scripts can never run as code.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION};
use std::sync::LazyLock;

use actix_web::{HttpRequest, HttpResponse, web};
use websplat_web_assets::Assets;

use crate::error::ApiError;

const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const LOGIN: &str = include_str!("../../web/login.html");
const DASHBOARD: &str = include_str!("../../web/dashboard.html");
const DOCS: &str = include_str!("../../web/docs.html");
const ADMIN: &str = include_str!("../../web/admin.html");
const OPERATOR: &str = include_str!("../../web/operator.html");
const ADMIN_AI: &str = include_str!("../../web/admin-ai.html");

/// `(name, body)` of the pages' own static assets; the shared ones (`base.css`,
/// `shared-api.js`, `favicon.svg`) come from `websplat_web_assets::SHARED`.
const OWN_ASSETS: &[(&str, &[u8])] = &[
    ("app.css", include_bytes!("../../web/static/app.css")),
    ("api.js", include_bytes!("../../web/static/api.js")),
    ("login.js", include_bytes!("../../web/static/login.js")),
    (
        "dashboard.js",
        include_bytes!("../../web/static/dashboard.js"),
    ),
    (
        "workspace.js",
        include_bytes!("../../web/static/workspace.js"),
    ),
    ("docs.js", include_bytes!("../../web/static/docs.js")),
    ("admin.js", include_bytes!("../../web/static/admin.js")),
    (
        "admin-ai.js",
        include_bytes!("../../web/static/admin-ai.js"),
    ),
    (
        "admin-common.js",
        include_bytes!("../../web/static/admin-common.js"),
    ),
    (
        "admin-fleet.js",
        include_bytes!("../../web/static/admin-fleet.js"),
    ),
    (
        "admin-users.js",
        include_bytes!("../../web/static/admin-users.js"),
    ),
    (
        "admin-roles.js",
        include_bytes!("../../web/static/admin-roles.js"),
    ),
    (
        "admin-levels.js",
        include_bytes!("../../web/static/admin-levels.js"),
    ),
    (
        "admin-audit.js",
        include_bytes!("../../web/static/admin-audit.js"),
    ),
    (
        "admin-providers.js",
        include_bytes!("../../web/static/admin-providers.js"),
    ),
    (
        "admin-workspaces.js",
        include_bytes!("../../web/static/admin-workspaces.js"),
    ),
    (
        "admin-invitations.js",
        include_bytes!("../../web/static/admin-invitations.js"),
    ),
    (
        "operator.js",
        include_bytes!("../../web/static/operator.js"),
    ),
    ("sites.js", include_bytes!("../../web/static/sites.js")),
    (
        "projects.js",
        include_bytes!("../../web/static/projects.js"),
    ),
];

/// Every asset with its ETag, computed on first use.
static ASSETS: LazyLock<Assets> = LazyLock::new(|| Assets::with_shared(OWN_ASSETS));

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

/// The page a browser gets for an address the platform does not have (programs get the
/// JSON error).
pub fn not_found_page(err: &ApiError) -> HttpResponse {
    message_page(
        "Page not found",
        err,
        ("/dashboard", "Go to your dashboard"),
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

/// The operator console: the pools, their figures and start latency, resized live.
pub async fn operator_page() -> HttpResponse {
    page(OPERATOR)
}

/// The AI gateway's page of the console: providers, aliases, usage and spend.
pub async fn admin_ai_page() -> HttpResponse {
    page(ADMIN_AI)
}

pub async fn docs_page() -> HttpResponse {
    page(DOCS)
}

/// `GET /static/{name}`: an embedded asset, revalidated by its ETag (the policy is
/// `websplat_web_assets`'); an unknown name is the API's 404.
pub async fn asset(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    ASSETS
        .respond(&req, &name)
        .ok_or_else(|| ApiError::NotFound(format!("no asset named {:?}", name.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names a page or an asset loads: `/static/…`, `from './…'` and `url("…")`.
    #[test]
    fn every_asset_a_page_or_a_module_names_is_served() {
        let named = ASSETS.references(&[LOGIN, DASHBOARD, DOCS, ADMIN, OPERATOR, ADMIN_AI]);
        for module in [
            "admin-users.js",
            "admin-fleet.js",
            "admin-workspaces.js",
            "shared-api.js",
            "base.css",
        ] {
            assert!(named.iter().any(|n| n == module), "{module} is loaded");
        }
        let missing = ASSETS.missing(&named);
        assert!(
            missing.is_empty(),
            "referenced but not embedded: {missing:?}"
        );
    }

    #[actix_web::test]
    async fn a_shared_asset_is_served_with_its_etag_and_revalidates_to_304() {
        let unknown = websplat_web_assets::check_handler(asset).await;
        assert!(matches!(unknown, Err(ApiError::NotFound(_))));
    }
}
