//! Budgets that hold: reserved before the call, settled after, shared by every replica
//! (Redis), renewed with their period; streams billed for what was sent even when cut.

use std::time::Duration;

use serde_json::Value;

use super::upstream::{COMPLETION_TOKENS, PROMPT_TOKENS};
use super::{Fault, Tenant, Upstream, events, gateway_app, hello, ledger, set_budget};

/// What one `hello` call reserves: its estimated input plus its `max_tokens` (50).
async fn reservation_of_one_call(app: &crate::helpers::TestApp, alice: &Tenant) -> i64 {
    set_budget(app, "free", 1_000_000).await;
    let standing = |app: &crate::helpers::TestApp| {
        let gw = app.state.gateway.clone();
        let user = alice.user;
        async move { gw.budget.standing(user).await.expect("redis").used }
    };
    let before = standing(app).await;
    alice
        .chat(&hello(false))
        .await
        .text()
        .await
        .expect("answer");
    let after = standing(app).await;
    assert_eq!(
        after - before,
        PROMPT_TOKENS + COMPLETION_TOKENS,
        "settled to what was used"
    );
    platform::gateway::usage::estimate_chat_input(&hello(false)) + 50
}

#[tokio::test]
async fn twenty_concurrent_calls_against_a_budget_for_five_let_at_most_five_through() {
    let upstream = Upstream::start();
    let app = gateway_app(
        &upstream,
        &[("WEBSPLAT_GATEWAY_FIRST_BYTE_TIMEOUT", "30s".to_owned())],
    )
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    let per_call = reservation_of_one_call(&app, &alice).await;
    // Room for five reservations (and not six), on top of the first call's spend.
    let spent = PROMPT_TOKENS + COMPLETION_TOKENS;
    let budget = spent + 5 * per_call + per_call / 2;
    set_budget(&app, "free", budget).await;
    // Calls take a moment, so all twenty are in flight together.
    upstream.set_delay(Duration::from_secs(1));
    let calls = (0..20).map(|_| async {
        let r = alice.chat(&hello(false)).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.expect("json");
        (status, body)
    });
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(ok + refused.len(), 20, "{results:?}");
    assert!(
        (1..=5).contains(&ok),
        "{ok} calls went through a budget for five"
    );
    for b in &refused {
        assert_eq!(b["error"]["code"], "budget_exceeded");
        let message = b["error"]["message"].as_str().expect("words");
        assert!(
            message.contains("budget") && message.contains("renews"),
            "{message}"
        );
    }
    let rows = ledger(&app, &alice.user, 1 + ok).await;
    let spend: i64 = rows
        .iter()
        .map(|r| r["tokens_in"].as_i64().unwrap_or(0) + r["tokens_out"].as_i64().unwrap_or(0))
        .sum();
    assert!(spend <= budget, "spent {spend} of {budget}");
    assert_eq!(rows.len(), 1 + ok, "one ledger row per call served");
    // Refused calls never reached the provider.
    assert_eq!(upstream.seen().len(), 1 + ok);
}

#[tokio::test]
async fn the_budget_renews_with_its_period() {
    let upstream = Upstream::start();
    let app = gateway_app(
        &upstream,
        &[("WEBSPLAT_GATEWAY_BUDGET_PERIOD", "3s".to_owned())],
    )
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    let per_call = platform::gateway::usage::estimate_chat_input(&hello(false)) + 50;
    set_budget(&app, "free", per_call).await;
    // Start at the beginning of a period, so the first call's spend stays in it.
    let now = chrono::Utc::now().timestamp();
    let to_next = 3 - now.rem_euclid(3);
    tokio::time::sleep(Duration::from_secs(to_next as u64)).await;
    assert_eq!(alice.chat(&hello(false)).await.status(), 200);
    let r = alice.chat(&hello(false)).await;
    assert_eq!(r.status(), 429, "the period's budget is spent");
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        alice.chat(&hello(false)).await.status(),
        200,
        "renewed with the next period"
    );
}

#[tokio::test]
async fn a_level_without_ai_gets_a_sentence_and_no_call() {
    let upstream = Upstream::start();
    let app = gateway_app(&upstream, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    set_budget(&app, "free", 0).await;
    let r = alice.chat(&hello(false)).await;
    assert_eq!(r.status(), 429);
    let b: Value = r.json().await.expect("json");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no AI use")),
        "{b}"
    );
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn a_stream_cut_midway_ends_with_an_error_event_and_is_billed_for_what_was_sent() {
    let upstream = Upstream::start();
    let app = gateway_app(&upstream, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    upstream.then(&[Fault::CutMidStream]);
    let r = alice.chat(&hello(true)).await;
    assert_eq!(r.status(), 200, "the stream had begun");
    let text = r.text().await.unwrap_or_default();
    let events = events(&text);
    assert_ne!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    let last: Value = serde_json::from_str(events.last().expect("events")).expect("json");
    assert_eq!(last["error"]["code"], "provider_error", "{text}");
    assert!(
        text.contains("Hello"),
        "what was generated reached the client: {text}"
    );
    let rows = ledger(&app, &alice.user, 1).await;
    assert_eq!(rows[0]["outcome"], "cut");
    assert!(
        rows[0]["tokens_out"].as_i64().unwrap_or(0) > 0,
        "billed for what was sent: {}",
        rows[0]
    );
    assert!(rows[0]["tokens_in"].as_i64().unwrap_or(0) > 0);
    // One attempt only: nothing is retried once bytes reached the client.
    assert_eq!(upstream.seen().len(), 1);
}
