//! The preview in Chromium: a page with a stylesheet and an image renders them, its script
//! can neither read the workspace cookie nor call the workspace API, and its beacon counts.
//! And the capability it rides on: read-only, per workspace, refused when tampered with.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use websplat_test_support::env_var;
use websplat_test_support::webdriver::Browser;

use crate::helpers::{PASSWORD, TestApp, body};
use crate::workspaces::helpers::{Person, app_with_workspaces, browser};

const WAIT: Duration = Duration::from_secs(30);

/// A 3×2 red PNG.
pub const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x02\x08\x02\x00\x00\x00\x12\x16\xf1\x4d\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63\xf8\xcf\xc0\x00\x41\x0c\x70\x16\x00\x41\xd2\x05\xfb\x87\xf0\xb9\x48\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// A page that links a stylesheet and an image by relative address and, in its script,
/// tries to read the cookie and to call the workspace's API, writing down what happened.
pub const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Corner Bakery</title>
<link rel="stylesheet" href="styles.css"></head>
<body><h1>Corner Bakery</h1><p>Fresh bread every morning.</p>
<img id="loaf" src="images/loaf.png" alt="A loaf">
<script>
let cookie;
try { cookie = 'read:' + document.cookie; } catch (e) { cookie = 'blocked'; }
document.body.dataset.cookie = cookie;
fetch('/api/v1/projects', { credentials: 'include' })
  .then((r) => r.text().then((t) => { document.body.dataset.api = 'status:' + r.status + ':' + t.slice(0, 80); }))
  .catch(() => { document.body.dataset.api = 'blocked'; });
</script>
</body></html>
"#;

pub const STYLES: &str =
    "body { font-family: \"Bakery Serif Test\", monospace; color: rgb(120, 40, 10); }\n";

/// Makes a project with [`PAGE`], its stylesheet and its image in the workspace at
/// `origin`; its id.
pub async fn bakery(person: &Person, origin: &str) -> String {
    let r = person
        .call(
            origin,
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "Bakery"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let project = body(r).await;
    let id = project["id"].as_str().expect("id").to_owned();
    let index = person
        .client
        .get(format!("{origin}/api/v1/projects/{id}/pages/index.html"))
        .send()
        .await
        .expect("GET index.html");
    let etag = index
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_owned();
    for (path, content, if_match) in [
        ("index.html", PAGE.as_bytes().to_vec(), Some(etag)),
        ("styles.css", STYLES.as_bytes().to_vec(), None),
    ] {
        let mut put = person
            .client
            .put(format!("{origin}/api/v1/projects/{id}/pages/{path}"))
            .header("Origin", origin)
            .header("content-type", "text/plain")
            .body(content);
        if let Some(tag) = if_match {
            put = put.header("If-Match", tag);
        }
        let r = put.send().await.expect("PUT a page");
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let r = person
        .client
        .put(format!(
            "{origin}/api/v1/projects/{id}/assets/images/loaf.png"
        ))
        .header("Origin", origin)
        .header("content-type", "application/octet-stream")
        .body(PNG.to_vec())
        .send()
        .await
        .expect("PUT the image");
    assert_eq!(r.status(), 201);
    id
}

/// Signs in on the platform's page in `browser` and opens the workspace there (the
/// handoff gives that origin its cookie).
pub async fn open_in_browser(app: &TestApp, browser: &Browser, email: &str) {
    sign_in_in_browser(app, browser, email).await;
    browser.goto(&app.url("/workspace/open")).await;
    browser
        .wait_for_url("the workspace origin", Duration::from_secs(90), |u| {
            u.host_str().is_some_and(|h| h.ends_with(".ws.localhost"))
        })
        .await;
}

/// Signs in on the platform's page in `browser`, landing on the dashboard.
pub async fn sign_in_in_browser(app: &TestApp, browser: &Browser, email: &str) {
    browser.goto(&app.url("/login")).await;
    let input = browser.wait_for_visible("#signin-email", WAIT).await;
    browser.send_keys(&input, email).await;
    let password = browser.wait_for_visible("#signin-password", WAIT).await;
    browser.send_keys(&password, PASSWORD).await;
    let submit = browser.wait_for_visible("#local-signin", WAIT).await;
    browser.click(&submit).await;
    browser
        .wait_for_url("the dashboard", WAIT, |u| u.path() == "/dashboard")
        .await;
}

/// Polls `script` in the page until it returns a non-null value.
pub async fn wait_js(browser: &Browser, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (value, error) = match browser.execute(script).await {
            Ok(value) => (value, None),
            Err(e) => (Value::Null, Some(e.to_string())),
        };
        if !value.is_null() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never came (the script's error: {error:?}; the page: {})",
            browser.source().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_renders_its_stylesheet_and_image_cannot_act_as_the_workspace_and_counts() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    // Her browser signs in too (which gives her a fresh container) and opens the workspace.
    let browser = Browser::start_as_visitor(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    open_in_browser(&app, &browser, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    assert!(
        browser.cookies().await.iter().any(|c| c == "websplat_ws"),
        "the browser holds the workspace cookie, so the preview had it to steal"
    );
    let origin = alice.open(&app).await;
    let id = bakery(&alice, &origin).await;
    let r = alice
        .call(
            &origin,
            Method::GET,
            &format!("/api/v1/projects/{id}/preview-link?page=index.html"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let link = body(r).await;
    let url = link["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with("/_preview/") && url.ends_with("/index.html"),
        "{link}"
    );

    browser.goto(&format!("{origin}{url}")).await;

    // Styled by its own stylesheet, its image loaded: both came without the cookie.
    let font = wait_js(
        &browser,
        "the stylesheet",
        "const f = getComputedStyle(document.body).fontFamily; return f.includes('Bakery Serif Test') ? f : null;",
    )
    .await;
    assert!(
        font.as_str().is_some_and(|f| f.contains("monospace")),
        "{font}"
    );
    let width = wait_js(
        &browser,
        "the image",
        "const i = document.getElementById('loaf'); return i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : null;",
    )
    .await;
    assert_eq!(width, json!(3), "the image's natural width");

    // Its script ran, and could neither read the cookie nor call the API.
    let cookie = wait_js(
        &browser,
        "the cookie probe",
        "return document.body.dataset.cookie ?? null;",
    )
    .await;
    assert_eq!(
        cookie,
        json!("blocked"),
        "an opaque origin has no cookies to read"
    );
    let api = wait_js(
        &browser,
        "the API probe",
        "return document.body.dataset.api ?? null;",
    )
    .await;
    let api = api.as_str().unwrap_or_default().to_owned();
    assert!(
        api == "blocked" || api.starts_with("status:401"),
        "the preview's script must not reach the workspace API: {api}"
    );
    assert!(!api.contains("Bakery"), "{api}");

    // Its beacon counted the view, as a preview.
    let deadline = Instant::now() + WAIT;
    loop {
        let r = alice
            .call(
                &origin,
                Method::GET,
                &format!("/api/v1/projects/{id}/analytics?source=preview"),
                None,
            )
            .await;
        assert_eq!(r.status(), 200);
        let summary = body(r).await;
        if summary["views"] == 1 {
            assert_eq!(summary["pages"][0]["name"], "index.html", "{summary}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the preview's view was not counted: {summary}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_capability_is_read_only_for_its_own_workspace_and_refused_when_changed() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    alice.wait_for(&app, "ready").await;
    bob.wait_for(&app, "ready").await;
    let alice_origin = alice.open(&app).await;
    let bob_origin = bob.open(&app).await;
    let id = bakery(&alice, &alice_origin).await;
    let link = body(
        alice
            .call(
                &alice_origin,
                Method::GET,
                &format!("/api/v1/projects/{id}/preview-link"),
                None,
            )
            .await,
    )
    .await;
    let base = link["base"].as_str().expect("base").to_owned();

    // Anyone with the link, no cookie at all, reads the files: sandboxed, no cookie set.
    let stranger = browser();
    let r = stranger
        .get(format!("{alice_origin}{base}styles.css"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.starts_with("sandbox") && !csp.contains("allow-same-origin"),
        "{csp}"
    );
    assert_eq!(
        r.headers()
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(r.text().await.expect("text"), STYLES);

    // Nothing but reading: a write under the capability is refused before the workspace.
    let r = stranger
        .put(format!("{alice_origin}{base}styles.css"))
        .body("body{}")
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 400);
    // The API is not under the capability: the path stays inside the preview.
    let r = stranger
        .get(format!("{alice_origin}{base}../../api/v1/projects"))
        .send()
        .await
        .expect("GET");
    assert_ne!(r.status(), 200);

    // Another workspace's origin does not honour it (signed with another tenant's secret).
    let r = stranger
        .get(format!("{bob_origin}{base}styles.css"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    // Changed by one character, it is refused.
    let token = base.trim_start_matches("/_preview/").trim_end_matches('/');
    let last = token.chars().last().expect("a token");
    let changed = format!(
        "/_preview/{}{}/styles.css",
        &token[..token.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let r = stranger
        .get(format!("{alice_origin}{changed}"))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    let error = body(r).await;
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("This preview link has expired or is not valid")),
        "{error}"
    );
}
