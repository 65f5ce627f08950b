//! The console's Workspaces page, in Chromium against a real platform and real workspace
//! containers: an operator sees a running workspace with its owner, state, uptime, memory
//! and storage, reads its container's logs, and stops it after the page's own dialog; a
//! member may not; the console's pages fit a phone's width.

use std::time::{Duration, Instant};

use serde_json::Value;
use websplat_test_support::env_var;
use websplat_test_support::webdriver::Browser;

use crate::helpers::body;
use crate::sites::preview::sign_in_in_browser;
use crate::workspaces::helpers::{Person, app_with_workspaces};

const WAIT: Duration = Duration::from_secs(30);

fn shot(browser_png: &[u8], name: &str) {
    let path = std::env::temp_dir().join(format!("websplat-{name}.png"));
    std::fs::write(&path, browser_png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lists_a_running_workspace_reads_its_logs_and_stops_it() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let (_, operator, _) = app
        .user_with_role("operator@example.com", Some("operator"))
        .await;

    // The API: Alice's workspace is live, ready, with an uptime, a memory limit and a
    // quota; a member may not list workspaces.
    let r = operator
        .get(app.url("/api/v1/admin/workspaces?live=true"))
        .send()
        .await
        .expect("GET workspaces");
    assert_eq!(r.status(), 200);
    let page = body(r).await;
    let row = page["workspaces"]
        .as_array()
        .expect("workspaces")
        .iter()
        .find(|w| w["user_id"] == alice.id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("Alice's workspace is not listed: {page}"));
    assert_eq!(row["state"], "ready", "{row}");
    assert_eq!(row["live"], true, "{row}");
    assert_eq!(row["email"], "alice@example.com", "{row}");
    assert!(row["uptime_seconds"].as_i64().is_some(), "{row}");
    assert!(
        row["memory_limit_mib"].as_i64().is_some_and(|m| m > 0),
        "{row}"
    );
    let r = alice
        .client
        .get(app.url("/api/v1/admin/workspaces"))
        .send()
        .await
        .expect("GET workspaces as a member");
    assert_eq!(r.status(), 403);
    let r = operator
        .get(app.url(&format!(
            "/api/v1/admin/workspaces/{}/logs?lines=5000",
            alice.id
        )))
        .send()
        .await
        .expect("GET logs");
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["field"], "lines");

    // The page: the operator signs in and opens Workspaces from the console's menu.
    let browser = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    sign_in_in_browser(&app, &browser, "operator@example.com").await;
    browser.wait_for_visible("#page-content", WAIT).await;
    browser.goto(&app.url("/admin")).await;
    let link = browser
        .wait_for_visible(r#"#admin-nav a[href="/admin/workspaces"]"#, WAIT)
        .await;
    browser.click(&link).await;
    browser
        .wait_for_url("the Workspaces page", WAIT, |u| {
            u.path() == "/admin/workspaces"
        })
        .await;
    let row = format!(r#"#workspaces-body tr[data-user="{}"]"#, alice.id);
    browser.wait_for_visible(&row, WAIT).await;
    let text = browser
        .text(&browser.wait_for(&row, WAIT).await)
        .await
        .expect("the row's text");
    assert!(
        text.contains("alice@example.com") && text.contains("ready") && text.contains("MiB"),
        "{text}"
    );
    for other in ["#fleet", "#users", "#audit"] {
        if let Some(section) = browser.find(other).await.expect("look") {
            assert!(
                !browser.displayed(&section).await.expect("displayed"),
                "{other} is another page"
            );
        }
    }
    shot(&browser.screenshot().await, "admin-workspaces");

    // Its logs, in the page's dialog.
    let logs = browser
        .wait_for_visible(&format!("{row} button.open-logs"), WAIT)
        .await;
    browser.click(&logs).await;
    browser
        .wait_for_text("#logs-dialog-title", "Logs of alice's workspace", WAIT)
        .await;
    let lines = browser
        .text(&browser.wait_for("#logs-dialog pre", WAIT).await)
        .await
        .expect("the lines");
    assert!(!lines.trim().is_empty(), "the dialog shows lines");
    shot(&browser.screenshot().await, "admin-workspace-logs");
    let close = browser.wait_for_visible("#logs-dialog button", WAIT).await;
    browser.click(&close).await;

    // Stop: the page's own question says what stops and that the data stays.
    let stop = browser
        .wait_for_visible(&format!("{row} button.stop-workspace"), WAIT)
        .await;
    browser.click(&stop).await;
    let dialog = browser.wait_for_visible("#confirm-dialog", WAIT).await;
    let said = browser.text(&dialog).await.expect("the dialog's text");
    assert!(
        said.contains("Stop alice's workspace?") && said.contains("stays"),
        "{said}"
    );
    let ok = browser.wait_for_visible("#confirm-dialog-ok", WAIT).await;
    browser.click(&ok).await;
    browser
        .wait_for_text(
            "#workspaces-status",
            "Stopped alice's workspace. Their data is kept.",
            WAIT,
        )
        .await;
    alice.wait_for(&app, "stopped").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let state = browser
            .execute(&format!(
                "const r = document.querySelector('{}'); return r ? r.dataset.state : null;",
                row.replace('\'', "\\'")
            ))
            .await
            .unwrap_or(Value::Null);
        if state == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "the row says {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        browser
            .find(&format!("{row} button.stop-workspace"))
            .await
            .expect("look")
            .is_none(),
        "a stopped workspace offers no Stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_the_console_fits_a_phone() {
    let app = crate::helpers::TestApp::spawn().await;
    let _ = app.user_with_role("admin@example.com", Some("admin")).await;
    let phone = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    phone.emulate_screen(390, 844).await;
    sign_in_in_browser(&app, &phone, "admin@example.com").await;
    phone.wait_for_visible("#page-content", WAIT).await;
    for (path, ready) in [
        ("/admin", "#fleet-summary"),
        ("/admin/users", "#users-body tr"),
        ("/admin/roles", "#roles-body tr"),
        ("/admin/access-levels", "#levels-body tr"),
        (
            "/admin/workspaces",
            "#workspaces-wrap:not([hidden]), #workspaces-empty:not([hidden])",
        ),
        ("/admin/audit", "#audit-body tr"),
        ("/admin/sign-in-methods", "#providers-body tr"),
    ] {
        phone.goto(&app.url(path)).await;
        phone.wait_for_visible(ready, WAIT).await;
        let widths = phone
            .execute("return [window.innerWidth, document.documentElement.scrollWidth];")
            .await
            .expect("the widths");
        let (inner, scroll) = (widths[0].as_i64(), widths[1].as_i64());
        let name = path.trim_start_matches('/').replace('/', "-");
        shot(&phone.screenshot().await, &format!("phone-{name}"));

        if !(inner == Some(390) && scroll <= inner) {
            // What sticks out, for the failure's message.
            let wide = phone
                .execute(
                    "return [...document.querySelectorAll('body *')].filter((e) => (e.getBoundingClientRect().right > 391 || e.scrollWidth > e.clientWidth + 1) && !(e.parentElement && e.parentElement.closest('.table-wrap'))).slice(0, 8).map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)} ${e.scrollWidth}/${e.clientWidth}`);",
                )
                .await;
            panic!("{path} scrolls sideways at phone width: {widths}; wide: {wide:?}");
        }
    }
}
