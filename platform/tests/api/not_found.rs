//! An address the platform does not have: a browser gets a page that says so and leads
//! back, a program gets the JSON error (issue #14).

use std::time::Duration;

use websplat_test_support::env_var;
use websplat_test_support::webdriver::Browser;

use crate::helpers::{TestApp, body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_address_is_a_page_for_a_browser_and_json_for_a_program() {
    let app = TestApp::spawn().await;
    let browser = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    browser.goto(&app.url("/no/such/page")).await;
    browser
        .wait_for_text("h1", "Page not found", Duration::from_secs(30))
        .await;
    let message = browser
        .wait_for("#error-message", Duration::from_secs(5))
        .await;
    let text = browser.text(&message).await.expect("text");
    assert!(
        text.starts_with("There is no page at this address."),
        "{text}"
    );
    let back = browser.wait_for("a.button", Duration::from_secs(5)).await;
    assert_eq!(
        browser.property(&back, "href").await.expect("href"),
        app.url("/dashboard")
    );

    let r = app.get("/no/such/page").await;
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"))
    );
    assert_eq!(body(r).await["error"]["code"], "not_found");
    // A browser's page still gets HTML with the status a program would see.
    let r = app
        .client
        .get(app.url("/no/such/page"))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    assert!(r.text().await.expect("html").contains("Page not found"));
}
