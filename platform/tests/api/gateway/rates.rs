//! Rates: calls and tokens per minute, set on the access level, counted per user in Redis
//! so two gateways (two replicas: each its own callers' cache, budget and ledger writer, on
//! the same PostgreSQL and Redis) share them; over a rate, 429 with `Retry-After` and a
//! sentence.

use std::time::Duration;

use chrono::Timelike;
use platform::gateway::{Gateway, GatewayError, caller, calls};
use serde_json::Value;

use super::{Tenant, Upstream, gateway_app, hello};
use crate::helpers::TestApp;

/// Sets an access level's AI rates, as an admin's edit would.
async fn set_rates(app: &TestApp, level: &str, calls: i32, tokens: i64) {
    app.sql(&format!(
        "UPDATE access_levels SET ai_requests_per_minute = {calls}, ai_tokens_per_minute = {tokens} WHERE name = '{level}'"
    ))
    .await;
    app.state.gateway.callers.changed(None).await;
}

/// Waits until a minute has at least 20 seconds left, so a test's calls share one.
async fn early_in_a_minute() {
    let second = chrono::Utc::now().second();
    if second > 40 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
}

/// Another replica's gateway on the same PostgreSQL and Redis.
fn second_replica(app: &TestApp) -> std::sync::Arc<Gateway> {
    let config = platform::Config::from_sources(None, app.env.clone()).expect("config");
    let metrics = platform::metrics::Metrics::new().expect("metrics");
    Gateway::new(
        config.ai.clone(),
        app.state.db.clone(),
        app.state.kv.clone(),
        config.redis.url.clone(),
        app.state.tenants.clone(),
        &metrics,
    )
    .expect("a second gateway")
}

/// A chat call through `gw` as the tenant's runtime would sign it.
async fn chat_on(gw: &std::sync::Arc<Gateway>, tenant: &Tenant) -> Result<(), GatewayError> {
    let path = "/v1/chat/completions";
    let header = platform::tenants::identity::sign_now(&tenant.secret, tenant.user, "POST", path);
    let who = caller::authenticate(
        &gw.callers,
        &gw.db,
        &gw.tenants.routing,
        &gw.tenants.keys,
        Some(&header),
        "POST",
        path,
    )
    .await?;
    calls::chat(
        gw,
        gw.client(),
        &who,
        hello(false),
        std::time::Instant::now(),
    )
    .await
    .map(drop)
}

#[tokio::test]
async fn calls_per_minute_are_counted_per_user_across_replicas_and_refused_in_words() {
    let upstream = Upstream::start();
    let app = gateway_app(&upstream, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    let bob = Tenant::start(&app, "bob@example.com").await;
    set_rates(&app, "free", 3, 1_000_000).await;
    let other = second_replica(&app);
    early_in_a_minute().await;
    for _ in 0..2 {
        assert_eq!(alice.chat(&hello(false)).await.status(), 200);
    }
    chat_on(&other, &alice)
        .await
        .expect("the third call of the minute, on the other replica");
    let r = alice.chat(&hello(false)).await;
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let b: Value = r.json().await.expect("json");
    let message = b["error"]["message"].as_str().expect("a sentence");
    assert!(
        message.contains("too fast") && message.contains("allows 3 a minute"),
        "{message}"
    );
    match chat_on(&other, &alice).await {
        Err(GatewayError::OverBudget { message, .. }) => assert!(message.contains("too fast")),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("the other replica let a fourth call through"),
    }
    // Bob, on the same level, has his own count.
    assert_eq!(bob.chat(&hello(false)).await.status(), 200);
    assert_eq!(
        upstream.seen().len(),
        4,
        "refused calls never reach the provider"
    );
}

#[tokio::test]
async fn tokens_per_minute_count_what_a_call_may_use_then_what_it_used() {
    let upstream = Upstream::start();
    let app = gateway_app(&upstream, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    let reservation = platform::gateway::usage::estimate_chat_input(&hello(false)) + 50;
    let used = super::upstream::PROMPT_TOKENS + super::upstream::COMPLETION_TOKENS;
    // Room for one reservation; after it is settled to what it used, not for another.
    set_rates(&app, "free", 1000, reservation + used - 1).await;
    early_in_a_minute().await;
    assert_eq!(alice.chat(&hello(false)).await.status(), 200);
    let r = alice.chat(&hello(false)).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let b: Value = r.json().await.expect("json");
    let message = b["error"]["message"].as_str().expect("a sentence");
    assert!(message.contains("AI tokens too fast"), "{message}");
    // A call that could never fit a minute says so, rather than "try again".
    let mut huge = hello(false);
    huge["max_tokens"] = serde_json::json!(reservation * 10);
    let b: Value = alice.chat(&huge).await.json().await.expect("json");
    let message = b["error"]["message"].as_str().expect("a sentence");
    assert!(message.contains("Ask for fewer (max_tokens)"), "{message}");
    // Another replica sees the same minute.
    let other = second_replica(&app);
    assert!(matches!(
        chat_on(&other, &alice).await,
        Err(GatewayError::OverBudget { .. })
    ));
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn every_ledger_row_handed_over_is_written_when_flush_returns_even_past_the_channel() {
    use platform::gateway::ledger::{Entry, Outcome};
    let upstream = Upstream::start();
    let app = gateway_app(&upstream, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    let now = chrono::Utc::now();
    // More rows at once than the writer's channel holds (8192).
    for i in 0..10_000 {
        app.state.gateway.ledger.write(Entry {
            user_id: alice.user,
            endpoint: "chat",
            provider: "fake".to_owned(),
            model: "fake-chat".to_owned(),
            alias: None,
            streamed: false,
            tokens_in: i,
            tokens_out: 1,
            tokens_cached: 0,
            cost_nanos: 0,
            latency_ms: 1,
            outcome: Outcome::Ok.as_str(),
            error: None,
            started_at: now,
            ended_at: now,
        });
    }
    app.state.gateway.flush().await;
    let written = app
        .query_one(&format!(
            "SELECT count(DISTINCT tokens_in) FROM ai_ledger WHERE user_id = '{}'",
            alice.user.0
        ))
        .await;
    assert_eq!(written, "10000");
}
