//! People see the gateway: a user's own usage and what is left of their budget, admins the
//! providers (with health, never a key), aliases and usage by user and model, through the
//! API and in Chromium (the console's AI page with its chart, the dashboard's line).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use websplat_test_support::webdriver::Browser;

use super::upstream::{COMPLETION_TOKENS, PROMPT_TOKENS};
use super::{PROVIDER_KEY, Tenant, Upstream, gateway_app, hello, ledger};
use crate::helpers::{PASSWORD, TestApp};

async fn text_contains(browser: &Browser, css: &str, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let element = browser.wait_for(css, Duration::from_secs(30)).await;
    loop {
        let text = browser.text(&element).await.unwrap_or_default();
        if text.contains(expected) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {expected:?}; it shows {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(browser: &Browser, app: &TestApp, email: &str) {
    browser.goto(&app.url("/login")).await;
    let input = browser
        .wait_for_visible("#signin-email", Duration::from_secs(30))
        .await;
    browser.send_keys(&input, email).await;
    let password = browser
        .wait_for_visible("#signin-password", Duration::from_secs(30))
        .await;
    browser.send_keys(&password, PASSWORD).await;
    let submit = browser
        .wait_for_visible("#local-signin", Duration::from_secs(30))
        .await;
    browser.click(&submit).await;
    let dashboard = app.url("/dashboard");
    browser
        .wait_for_url(&dashboard, Duration::from_secs(30), |u| {
            u.as_str() == dashboard
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_shows_to_the_user_and_to_admins_in_the_api_and_in_chromium() {
    let upstream = Upstream::start();
    let app = gateway_app(&upstream, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    for stream in [false, true] {
        let r = alice.chat(&hello(stream)).await;
        assert_eq!(r.status(), 200);
        r.text().await.expect("answer");
    }
    ledger(&app, &alice.user, 2).await;
    let spent = 2 * (PROMPT_TOKENS + COMPLETION_TOKENS);

    let r = alice
        .session
        .get(app.url("/api/v1/me/ai-usage"))
        .send()
        .await
        .expect("usage");
    assert_eq!(r.status(), 200);
    let mine: Value = r.json().await.expect("json");
    assert_eq!(mine["used_tokens"], spent);
    assert_eq!(mine["budget_tokens"], 50_000, "the free level's budget");
    assert_eq!(mine["remaining_tokens"], 50_000 - spent);
    assert_eq!(mine["by_model"][0]["model"], "fake-chat");
    assert_eq!(mine["by_model"][0]["calls"], 2);
    let r = alice
        .session
        .get(app.url("/api/v1/admin/ai/usage"))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), 403, "a member sees only their own");

    let (_, _, admin) = app.user_with_role("admin@example.com", Some("admin")).await;
    let r = app
        .call(Method::GET, "/api/v1/admin/ai/providers", &admin, None)
        .await;
    assert_eq!(r.status(), 200);
    let providers: Value = r.json().await.expect("json");
    assert!(!providers.to_string().contains(PROVIDER_KEY), "{providers}");
    assert_eq!(providers["providers"][0]["id"], "fake");
    assert_eq!(providers["providers"][0]["health"], "healthy");
    assert_eq!(providers["providers"][0]["has_key"], true);
    assert_eq!(providers["aliases"][0]["name"], "embed");
    let r = app
        .call(
            Method::GET,
            "/api/v1/admin/ai/usage?by=user&bucket=hour",
            &admin,
            None,
        )
        .await;
    let usage: Value = r.json().await.expect("json");
    let points = usage["points"].as_array().expect("points");
    let alices: Vec<&Value> = points
        .iter()
        .filter(|p| p["key"] == "alice@example.com")
        .collect();
    let tokens: i64 = alices
        .iter()
        .map(|p| p["tokens_in"].as_i64().unwrap_or(0) + p["tokens_out"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(tokens, spent);
    let r = app.call(Method::GET, "/metrics", &admin, None).await;
    let metrics = r.text().await.expect("metrics");
    assert!(
        metrics.contains(r#"websplat_ai_calls_total{endpoint="chat",model="fake-chat",outcome="ok",provider="fake"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("websplat_ai_gateway_overhead_seconds_bucket"));
    assert!(metrics.contains(
        r#"websplat_ai_tokens_total{direction="output",model="fake-chat",provider="fake"} 6"#
    ));
    let r = app
        .call(
            Method::GET,
            "/api/v1/admin/ai/usage?bucket=week",
            &admin,
            None,
        )
        .await;
    assert_eq!(
        r.status(),
        400,
        "a bucket that is not hour or day is refused in words"
    );

    let browser = Browser::start(
        &crate::support::env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &crate::support::env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    sign_in(&browser, &app, "admin@example.com").await;
    browser.goto(&app.url("/admin")).await;
    let link = browser
        .wait_for_visible("a[href=\"/admin/ai\"]", Duration::from_secs(30))
        .await;
    browser.click(&link).await;
    text_contains(&browser, "#ai-users-body", "alice@example.com").await;
    let row = text_contains(&browser, "#ai-models-body", "fake/fake-chat").await;
    assert!(row.contains(&(2 * PROMPT_TOKENS).to_string()), "{row}");
    text_contains(&browser, "#ai-providers-body", "healthy").await;
    browser
        .wait_for("#ai-chart rect.chart-bar", Duration::from_secs(30))
        .await;
    assert!(!browser.source().await.contains(PROVIDER_KEY));

    // Alice's dashboard shows her line.
    let browser = Browser::start(
        &crate::support::env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &crate::support::env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    sign_in(&browser, &app, "alice@example.com").await;
    let line = text_contains(&browser, "#ai-usage", "tokens used today").await;
    assert!(
        line.contains(&spent.to_string()) && line.contains("50,000"),
        "{line}"
    );
}
