//! The preview's sandbox: a previewed page can neither read the workspace's cookie nor call
//! its API.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_preview_can_neither_read_the_workspace_cookie_nor_call_its_api() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Sandbox check").await;

    // A cookie on the workspace's origin, as a session cookie would be.
    let cookie = session
        .js("document.cookie = 'secret=1; path=/'; return document.cookie;")
        .await;
    assert!(
        cookie.as_str().is_some_and(|c| c.contains("secret=1")),
        "{cookie}"
    );

    let probe = "<!doctype html>\n<html><head><title>Probe</title></head>\n<body>\n<p id=\"out\">probing</p>\n<script>\n\
let cookie;\n\
try { cookie = document.cookie === '' ? 'empty' : 'read:' + document.cookie; } catch (e) { cookie = 'denied:' + e.name; }\n\
document.body.dataset.cookie = cookie;\n\
let parentDom;\n\
try { parentDom = 'reachable:' + parent.document.title; } catch (e) { parentDom = 'denied:' + e.name; }\n\
document.body.dataset.parent = parentDom;\n\
fetch('/api/v1/projects').then(r => r.text()).then(t => 'reachable:' + t.slice(0, 60), e => 'blocked:' + e.name)\n\
  .then(v => { document.body.dataset.api = v; document.getElementById('out').textContent = 'done'; });\n\
</script>\n</body>\n</html>\n";
    open_in_editor(&browser, &session, "index.html").await;
    replace_and_save(&browser, &session, probe).await;
    assert_eq!(runtime.page(&project, "index.html").await.0, probe);

    session.enter_frame("#preview-frame").await;
    browser.wait_for_text("#out", "done", TIMEOUT).await;
    let seen = session
        .js(
            "return { origin: window.origin, cookie: document.body.dataset.cookie, \
                      parent: document.body.dataset.parent, api: document.body.dataset.api };",
        )
        .await;
    session.leave_frames().await;
    assert_eq!(seen["origin"], json!("null"), "an opaque origin: {seen}");
    let cookie = seen["cookie"].as_str().unwrap_or_default();
    assert!(
        cookie.starts_with("denied:SecurityError") || cookie == "empty",
        "the preview must not read the workspace's cookie: {seen}"
    );
    assert!(!cookie.contains("secret"), "{seen}");
    assert!(
        seen["parent"]
            .as_str()
            .is_some_and(|p| p.starts_with("denied:")),
        "the preview must not reach the workspace's document: {seen}"
    );
    assert!(
        seen["api"]
            .as_str()
            .is_some_and(|a| a.starts_with("blocked:")),
        "the preview must not call the workspace's API: {seen}"
    );

    // The workspace itself still reads its API (and its cookie) normally.
    let own = session
        .js("return fetch('/api/v1/projects').then(r => r.status)")
        .await;
    assert_eq!(own, json!(200));
}
