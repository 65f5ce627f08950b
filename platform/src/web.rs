//! The platform's own web pages: plain HTML, CSS and JavaScript modules, embedded in the
//! binary so a deployment is one file and no page depends on a CDN. Pages get a strict
//! Content-Security-Policy (no inline script or style), so user-controlled text rendered by
//! the scripts can never run as code.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION};
use actix_web::{HttpResponse, web};

use crate::error::ApiError;

const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const LOGIN: &str = include_str!("../web/login.html");
const DASHBOARD: &str = include_str!("../web/dashboard.html");
const DOCS: &str = include_str!("../web/docs.html");

/// `(name, content type, body)` of every static asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../web/static/app.css"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/api.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/login.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/dashboard.js"),
    ),
    (
        "docs.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/docs.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../web/static/favicon.svg"),
    ),
];

fn page(body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((CACHE_CONTROL, "no-cache"))
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
