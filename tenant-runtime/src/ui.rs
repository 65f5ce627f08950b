//! The workspace's web UI: one page (`GET /`) and its assets (`GET /static/{name}`), plain
//! HTML, CSS and JavaScript modules embedded in the binary, so the container needs no other
//! file and no page depends on a CDN. The page gets a strict Content-Security-Policy: no
//! inline script or style, frames only from this origin (the sandboxed preview), so text
//! from projects, documents or agents rendered by the scripts can never run as code.
//! The routes (`GET` and `HEAD`) are declared in `routes`.

use std::sync::LazyLock;

use actix_web::http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use websplat_web_assets::{Asset, Assets};

use crate::error::ApiError;

/// The page's policy. `frame-src 'self'` is for the preview, which the server itself
/// sandboxes (`Content-Security-Policy: sandbox allow-scripts`) and the page's iframe does too.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; \
base-uri 'none'; form-action 'self'";

const INDEX: &str = include_str!("../web/index.html");

/// `(name, body)` of the workspace's own static assets; the shared ones (`base.css`,
/// `shared-api.js`, `favicon.svg`) come from `websplat_web_assets::SHARED`.
const OWN_ASSETS: &[(&str, &[u8])] = &[
    ("app.css", include_bytes!("../web/static/app.css")),
    ("api.js", include_bytes!("../web/static/api.js")),
    ("app.js", include_bytes!("../web/static/app.js")),
    ("projects.js", include_bytes!("../web/static/projects.js")),
    ("workspace.js", include_bytes!("../web/static/workspace.js")),
    ("editor.js", include_bytes!("../web/static/editor.js")),
    (
        "code-editor.js",
        include_bytes!("../web/static/code-editor.js"),
    ),
    ("history.js", include_bytes!("../web/static/history.js")),
    ("seo.js", include_bytes!("../web/static/seo.js")),
    ("jobs.js", include_bytes!("../web/static/jobs.js")),
    ("generate.js", include_bytes!("../web/static/generate.js")),
    ("export.js", include_bytes!("../web/static/export.js")),
    ("settings.js", include_bytes!("../web/static/settings.js")),
    ("documents.js", include_bytes!("../web/static/documents.js")),
    ("agents.js", include_bytes!("../web/static/agents.js")),
    ("chat.js", include_bytes!("../web/static/chat.js")),
    ("analytics.js", include_bytes!("../web/static/analytics.js")),
    ("chooser.js", include_bytes!("../web/static/chooser.js")),
    ("account.js", include_bytes!("../web/static/account.js")),
];

/// Every asset with its ETag, computed on first use.
static ASSETS: LazyLock<Assets> = LazyLock::new(|| Assets::with_shared(OWN_ASSETS));

/// The page, served like an asset (revalidated by its ETag), with the page's policy added.
static INDEX_PAGE: LazyLock<Asset> = LazyLock::new(|| Asset::new("index.html", INDEX.as_bytes()));

/// The app: one page; the scripts route by the URL's fragment (`#/projects`, …).
pub async fn index(req: HttpRequest) -> HttpResponse {
    let mut response = INDEX_PAGE.respond(&req);
    response
        .headers_mut()
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    response
}

/// `GET /static/{name}`: an embedded asset, revalidated by its ETag (the policy is
/// `websplat_web_assets`'); an unknown name is the API's 404.
pub async fn asset(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    ASSETS
        .respond(&req, &name)
        .ok_or_else(|| ApiError::NotFound(format!("there is no asset {:?}", name.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names a page or an asset loads: `/static/…`, `from './…'` and `url("…")`.
    #[test]
    fn every_script_the_page_or_a_module_names_is_served() {
        let named = ASSETS.references(&[INDEX]);
        assert!(named.len() > 5, "{named:?}");
        for module in ["shared-api.js", "base.css", "favicon.svg"] {
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
