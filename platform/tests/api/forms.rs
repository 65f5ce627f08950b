//! Forms say what is wrong beside the field it is about, in a sentence: the sign-in page's
//! registration in Chromium (a check of the page's own and one of the server's), and the
//! API's validation messages, which start with a capital letter and end with a full stop.

use std::time::Duration;

use serde_json::json;
use websplat_test_support::env_var;
use websplat_test_support::webdriver::Browser;

use crate::helpers::{TestApp, body};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_mistake_is_said_beside_its_field_in_a_sentence() {
    let app = TestApp::spawn().await;

    // The API: the field, and a sentence.
    let r = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": "adele@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let e = body(r).await["error"].clone();
    assert_eq!(e["field"], "password", "{e}");
    assert_eq!(
        e["message"], "Use at least 12 characters (a few words make a good password).",
        "{e}"
    );

    let browser = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    browser.goto(&app.url("/login")).await;
    let show = browser.wait_for_visible("#show-register", WAIT).await;
    browser.click(&show).await;
    browser
        .wait_for_text("#page-title", "Create an account", WAIT)
        .await;
    // Said once: the page's heading, not a second one over the form (issue #14).
    let shown = browser
        .execute("return document.body.innerText.split('Create an account').length - 1;")
        .await
        .expect("the page's text");
    assert_eq!(
        shown,
        json!(1),
        "\"Create an account\" is shown {shown} times"
    );
    let name = browser.wait_for_visible("#register-name", WAIT).await;
    browser.send_keys(&name, "   ").await;
    let email = browser.wait_for_visible("#register-email", WAIT).await;
    browser.send_keys(&email, "adele@example.com").await;
    let password = browser.wait_for_visible("#register-password", WAIT).await;
    browser.send_keys(&password, "adele-bakes-bread-7").await;
    let confirm = browser.wait_for_visible("#register-confirm", WAIT).await;
    browser.send_keys(&confirm, "adele-bakes-bread-7").await;
    let submit = browser.wait_for_visible("#local-register", WAIT).await;
    browser.click(&submit).await;

    // The page's own check: beside the name.
    browser
        .wait_for_text(
            "#register-form .field-error",
            "Please enter a display name.",
            WAIT,
        )
        .await;
    let invalid = browser
        .execute("return document.activeElement.id + ' ' + document.getElementById('register-name').getAttribute('aria-invalid');")
        .await
        .expect("the focus");
    assert_eq!(invalid, json!("register-name true"));

    // The server's: the password holds the e-mail's name; said beside the password, not in
    // the banner, and the name's message is gone.
    browser.clear(&name).await;
    browser.send_keys(&name, "Adele").await;
    browser.click(&submit).await;
    browser
        .wait_for_text(
            "#register-form .field-error",
            "The password must not contain your e-mail address.",
            WAIT,
        )
        .await;
    let state = browser
        .execute(
            "return { count: document.querySelectorAll('#register-form .field-error').length, \
               beside: document.querySelector('.field-error').closest('.field').querySelector('input').id, \
               banner: document.getElementById('alert').textContent };",
        )
        .await
        .expect("the form's state");
    assert_eq!(state["count"], 1, "{state}");
    assert_eq!(state["beside"], "register-password", "{state}");
    assert_eq!(state["banner"], "", "{state}");
    let shot = std::env::temp_dir().join("websplat-register-field-error.png");
    std::fs::write(&shot, browser.screenshot().await).expect("screenshot");
    eprintln!("screenshot: {}", shot.display());
}
