//! Routing: retries that honour `Retry-After`, fallback to the next provider only before
//! the first byte, the breaker, and the provider named in a header.

use std::time::Duration;

use serde_json::Value;

use super::{Fault, Tenant, Upstream, events, gateway_app, hello, ledger};

/// Two providers behind `fast`: `fake` first, then `spare`.
async fn two_providers(
    first: &Upstream,
    second: &Upstream,
    extra: &[(&str, String)],
) -> crate::helpers::TestApp {
    let mut env = vec![
        ("WEBSPLAT_AI_SPARE_KIND", "openai".to_owned()),
        ("WEBSPLAT_AI_SPARE_BASE_URL", second.base_url.clone()),
        ("WEBSPLAT_AI_SPARE_MODELS", "spare-chat".to_owned()),
        (
            "WEBSPLAT_AI_ALIAS_FAST",
            "fake/fake-chat,spare/spare-chat".to_owned(),
        ),
    ];
    env.extend(extra.iter().cloned());
    gateway_app(first, &env).await
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_and_a_500_falls_back_before_the_first_byte() {
    let first = Upstream::start();
    let second = Upstream::start();
    let app = two_providers(&first, &second, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;

    first.then(&[Fault::Status(429, Some(1))]);
    let r = alice.chat(&hello(false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-websplat-provider"],
        "fake",
        "retried on the same provider"
    );
    assert_eq!(first.seen().len(), 2);

    // Failing on every attempt: the next provider serves, the header says which.
    first.then(&[Fault::Status(500, None); 3]);
    let r = alice.chat(&hello(true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-websplat-provider"], "spare");
    let text = r.text().await.expect("stream");
    assert_eq!(events(&text).last().map(String::as_str), Some("[DONE]"));
    assert_eq!(second.seen().len(), 1);
    assert_eq!(second.seen()[0].body["model"], "spare-chat");
    assert!(
        second.seen()[0].authorization.is_none(),
        "spare has no key, and gets none of fake's"
    );

    // A slow first byte is a failure before the first byte: the next provider serves.
    first.then(&[Fault::SlowFirstByte(Duration::from_secs(3)); 3]);
    let r = alice.chat(&hello(false)).await;
    assert_eq!(r.headers()["x-websplat-provider"], "spare");

    let rows = ledger(&app, &alice.user, 3).await;
    let providers: Vec<&str> = rows.iter().filter_map(|r| r["provider"].as_str()).collect();
    assert_eq!(
        providers,
        ["fake", "spare", "spare"],
        "one row per call, naming who served it"
    );
}

#[tokio::test]
async fn a_long_retry_after_moves_on_and_when_every_provider_fails_the_tenant_is_told() {
    let first = Upstream::start();
    let second = Upstream::start();
    let app = two_providers(&first, &second, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    first.then(&[Fault::Status(429, Some(120))]);
    second.then(&[Fault::Status(503, None); 3]);
    let r = alice.chat(&hello(false)).await;
    assert_eq!(r.status(), 502);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "provider_error");
    let message = b["error"]["message"].as_str().expect("words");
    assert!(
        message.contains("fake") && message.contains("spare"),
        "{message}"
    );
    assert_eq!(
        first.seen().len(),
        1,
        "a 2-minute Retry-After is not waited for"
    );
    assert_eq!(second.seen().len(), 3, "retried, then given up");
    let rows = ledger(&app, &alice.user, 1).await;
    assert_eq!(rows[0]["outcome"], "provider_error");
    assert_eq!(
        rows[0]["tokens_in"], 0,
        "nothing billed for a call nobody answered"
    );
    let used = app
        .state
        .gateway
        .budget
        .standing(alice.user)
        .await
        .expect("redis")
        .used;
    assert_eq!(used, 0, "the reservation was refunded");
}

#[tokio::test]
async fn a_failing_provider_is_skipped_by_its_breaker() {
    let first = Upstream::start();
    let second = Upstream::start();
    let app = two_providers(
        &first,
        &second,
        &[
            ("WEBSPLAT_GATEWAY_BREAKER_THRESHOLD", "2".to_owned()),
            ("WEBSPLAT_GATEWAY_BREAKER_COOLDOWN", "60s".to_owned()),
            ("WEBSPLAT_GATEWAY_MAX_ATTEMPTS", "1".to_owned()),
        ],
    )
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    first.then(&[Fault::Status(500, None); 2]);
    for _ in 0..2 {
        let r = alice.chat(&hello(false)).await;
        assert_eq!(r.headers()["x-websplat-provider"], "spare");
    }
    // Open: the first provider is not even asked now.
    let r = alice.chat(&hello(false)).await;
    assert_eq!(r.headers()["x-websplat-provider"], "spare");
    assert_eq!(first.seen().len(), 2);
    let health = app.state.gateway.routing.health();
    assert!(
        health.iter().any(|(id, open, _)| id == "fake" && *open),
        "{health:?}"
    );
}
