//! The static files of the two web UIs: the part both share (`shared/`: the base styles,
//! the `api.js` helpers, the favicon), embedded here at build time, and the one handler
//! that serves a binary's table of embedded assets at `/static/{name}`.
//!
//! The platform's pages and a workspace live on different origins, and each origin's
//! Content-Security-Policy (`default-src 'self'`) forbids loading the other's files, so
//! the shared files are compiled into both binaries rather than served from one place.
//!
//! One cache policy for both: `Cache-Control: no-cache` with a strong `ETag` (a hash of
//! the content, computed once per table), answered `304 Not Modified` when the browser's
//! `If-None-Match` still holds. The URLs carry no version (`/static/app.css`), so any
//! `max-age` would let a browser keep running yesterday's scripts against an upgraded
//! server, or mix old and new ES modules; revalidating on every use costs one bodyless
//! round trip when nothing changed.
//!
//! It never reads a file at run time (a binary is one file) and never answers for a name
//! that is not in its table: an unknown name is `None`, and each binary answers that with
//! its own 404.

use std::fmt::Write as _;

use actix_web::http::header::{
    CACHE_CONTROL, ETAG, HeaderValue, IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// `(name, body)` of the files both UIs serve under `/static/`.
pub const SHARED: &[(&str, &[u8])] = &[
    ("base.css", include_bytes!("../shared/base.css")),
    ("shared-api.js", include_bytes!("../shared/shared-api.js")),
    ("favicon.svg", include_bytes!("../shared/favicon.svg")),
];

/// The content type of an embedded file, from its name's extension; `None` for a kind
/// this crate does not serve.
pub fn content_type(name: &str) -> Option<&'static str> {
    let (_, extension) = name.rsplit_once('.')?;
    Some(match extension {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

/// One embedded file with its content type and validator.
#[derive(Debug)]
pub struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: String,
}

impl Asset {
    /// An embedded file; its ETag is computed here, once.
    ///
    /// # Panics
    /// When the name's extension has no content type: a build-time table mistake, found
    /// by each binary's test of its table the first time it is built.
    pub fn new(name: &'static str, body: &'static [u8]) -> Self {
        let content_type = content_type(name)
            .unwrap_or_else(|| panic!("no content type for the embedded asset {name:?}"));
        Self {
            name,
            content_type,
            body,
            etag: etag(body),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn body(&self) -> &'static [u8] {
        self.body
    }

    /// The body, or `304 Not Modified` when the request's `If-None-Match` holds this
    /// asset's ETag; both with the cache policy above.
    pub fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let not_modified = matches(req, &self.etag);
        let mut response = if not_modified {
            HttpResponse::NotModified()
        } else {
            HttpResponse::Ok()
        };
        response
            .insert_header((CACHE_CONTROL, "no-cache"))
            .insert_header((ETAG, self.etag.clone()))
            .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((REFERRER_POLICY, HeaderValue::from_static("same-origin")));
        if not_modified {
            response.finish()
        } else {
            response.content_type(self.content_type).body(self.body)
        }
    }
}

/// A binary's table of embedded assets, looked up by name.
#[derive(Debug)]
pub struct Assets(Vec<Asset>);

impl Assets {
    /// The shared files followed by the binary's own. A name given twice is a mistake.
    ///
    /// # Panics
    /// On a name given twice or an extension without a content type (see [`Asset::new`]).
    pub fn with_shared(own: &[(&'static str, &'static [u8])]) -> Self {
        let mut assets: Vec<Asset> = Vec::with_capacity(SHARED.len() + own.len());
        for &(name, body) in SHARED.iter().chain(own) {
            assert!(
                assets.iter().all(|a| a.name != name),
                "the asset {name:?} is listed twice"
            );
            assets.push(Asset::new(name, body));
        }
        Self(assets)
    }

    pub fn get(&self, name: &str) -> Option<&Asset> {
        self.0.iter().find(|a| a.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Asset> {
        self.0.iter()
    }

    /// The named asset's response (see [`Asset::respond`]), or `None` for an unknown name.
    pub fn respond(&self, req: &HttpRequest, name: &str) -> Option<HttpResponse> {
        self.get(name).map(|asset| asset.respond(req))
    }

    /// Every asset name that `pages` or the embedded assets refer to (`/static/x`,
    /// `from './x'`, `url("x")`), so a binary's tests can check that each is embedded.
    pub fn references(&self, pages: &[&str]) -> Vec<String> {
        let mut named = Vec::new();
        for page in pages {
            named.extend(names_in(page));
        }
        for asset in &self.0 {
            named.extend(names_in(&String::from_utf8_lossy(asset.body)));
        }
        named
    }

    /// Of `named`, those that are not embedded.
    pub fn missing<'a>(&self, named: &'a [String]) -> Vec<&'a str> {
        named
            .iter()
            .map(String::as_str)
            .filter(|name| self.get(name).is_none())
            .collect()
    }
}

/// Checks a binary's `GET /static/{name}` handler, for its unit tests: the shared favicon is
/// served with `Cache-Control: no-cache` and an ETag and revalidates to 304; the handler's
/// answer to an unknown name is returned for the caller to check against its own 404.
///
/// # Panics
/// When the handler does not behave so (it is meant for tests).
pub async fn check_handler<F, Fut, E>(handler: F) -> Result<HttpResponse, E>
where
    F: Fn(HttpRequest, actix_web::web::Path<String>) -> Fut,
    Fut: std::future::Future<Output = Result<HttpResponse, E>>,
    E: std::fmt::Debug,
{
    use actix_web::http::StatusCode;
    use actix_web::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
    use actix_web::test::TestRequest;

    let path = |name: &str| actix_web::web::Path::from(name.to_owned());
    let first = handler(TestRequest::get().to_http_request(), path("favicon.svg"))
        .await
        .expect("the favicon");
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers().get(CACHE_CONTROL).expect("Cache-Control"),
        "no-cache"
    );
    let tag = first.headers().get(ETAG).expect("an ETag").clone();

    let req = TestRequest::get()
        .insert_header((IF_NONE_MATCH, tag.clone()))
        .to_http_request();
    let again = handler(req, path("favicon.svg"))
        .await
        .expect("the favicon again");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers().get(ETAG), Some(&tag));

    handler(TestRequest::get().to_http_request(), path("nope.js")).await
}

/// The asset names a page, script or style sheet refers to.
fn names_in(source: &str) -> Vec<String> {
    let name = |piece: &str| -> String {
        piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect()
    };
    let mut named = Vec::new();
    for marker in ["/static/", "from './", "url(\""] {
        named.extend(source.split(marker).skip(1).map(name));
    }
    named
}

/// A strong validator: the first 128 bits of the body's SHA-256, quoted.
fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest[..16] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    tag
}

/// Whether the client already holds `tag`: `If-None-Match` is `*` or a list naming it
/// (compared weakly, as RFC 9110 asks for `If-None-Match`).
fn matches(req: &HttpRequest, tag: &str) -> bool {
    req.headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t == tag)
        })
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use actix_web::http::StatusCode;
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn references_are_found_in_pages_scripts_and_style_sheets() {
        let assets = Assets::with_shared(&[("app.js", b"import { x } from './extra.js';")]);
        let named =
            assets.references(&[r#"<link href="/static/app.css"><script src="/static/app.js">"#]);
        for name in ["app.css", "app.js", "extra.js"] {
            assert!(named.iter().any(|n| n == name), "{name} in {named:?}");
        }
    }

    fn header<'a>(response: &'a HttpResponse, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[actix_web::test]
    async fn a_shared_asset_has_its_type_and_etag_and_revalidates_to_304() {
        let assets = Assets::with_shared(&[("own.js", b"export const own = 1;\n")]);
        let first = assets
            .respond(&TestRequest::get().to_http_request(), "base.css")
            .expect("base.css is served");
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(header(&first, "content-type"), "text/css; charset=utf-8");
        assert_eq!(header(&first, "cache-control"), "no-cache");
        let tag = header(&first, "etag").to_owned();
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() == 34,
            "{tag}"
        );
        let body = to_bytes(first.into_body()).await.expect("body");
        assert_eq!(&body[..], include_bytes!("../shared/base.css"));

        for held in [
            tag.clone(),
            format!("\"other\", {tag}"),
            format!("W/{tag}"),
            "*".into(),
        ] {
            let req = TestRequest::get()
                .insert_header(("If-None-Match", held.as_str()))
                .to_http_request();
            let again = assets.respond(&req, "base.css").expect("served");
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{held}");
            assert_eq!(header(&again, "etag"), tag);
            assert_eq!(header(&again, "cache-control"), "no-cache");
            assert!(to_bytes(again.into_body()).await.expect("body").is_empty());
        }

        let req = TestRequest::get()
            .insert_header(("If-None-Match", "\"stale\""))
            .to_http_request();
        let changed = assets.respond(&req, "base.css").expect("served");
        assert_eq!(changed.status(), StatusCode::OK);

        let own = assets
            .respond(&TestRequest::get().to_http_request(), "own.js")
            .expect("own.js is served");
        assert_eq!(
            header(&own, "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert_ne!(header(&own, "etag"), tag, "each body has its own ETag");
        assert!(
            assets
                .respond(&TestRequest::get().to_http_request(), "nope.js")
                .is_none()
        );
    }

    #[test]
    fn every_shared_file_has_a_content_type() {
        for (name, _) in SHARED {
            assert!(content_type(name).is_some(), "{name}");
        }
        assert_eq!(content_type("favicon.svg"), Some("image/svg+xml"));
        assert_eq!(content_type("notes.txt"), None);
    }

    #[test]
    #[should_panic(expected = "listed twice")]
    fn a_name_given_twice_is_refused() {
        let _ = Assets::with_shared(&[("favicon.svg", b"<svg/>")]);
    }
}
