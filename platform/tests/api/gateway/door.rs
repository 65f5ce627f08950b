//! The door: only a live tenant's signed calls pass; OpenAI-compatible calls pass through
//! whole and streamed, tools included; the provider's key goes to the provider and nowhere
//! else.

use reqwest::Method;
use serde_json::{Value, json};

use super::upstream::{COMPLETION_TOKENS, PIECES, PROMPT_TOKENS};
use super::{PROVIDER_KEY, Tenant, Upstream, events, gateway_app, hello, ledger};

async fn error_of(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    let b: Value = r.json().await.expect("an error body");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{b}"
    );
    assert!(b["error"]["request_id"].is_string(), "{b}");
    b
}

#[tokio::test]
async fn only_a_call_signed_by_the_users_live_tenant_passes_the_door() {
    let upstream = Upstream::start();
    let app = gateway_app(&upstream, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    let bob = Tenant::start(&app, "bob@example.com").await;
    let now = chrono::Utc::now().timestamp();
    let sign = websplat_contract::identity::sign;
    let refused = [
        ("unsigned", None),
        ("garbage", Some("v1;user=nobody".to_owned())),
        // Alice's user, signed with Bob's secret (another tenant's).
        (
            "another tenant's secret",
            Some(sign(
                bob.secret.as_bytes(),
                alice.user.0,
                now,
                "GET",
                "/v1/models",
            )),
        ),
        // Signed with Alice's secret but for Bob.
        (
            "for another user",
            Some(sign(
                alice.secret.as_bytes(),
                bob.user.0,
                now,
                "GET",
                "/v1/models",
            )),
        ),
        (
            "stale",
            Some(sign(
                alice.secret.as_bytes(),
                alice.user.0,
                now - 600,
                "GET",
                "/v1/models",
            )),
        ),
        (
            "for another path",
            Some(sign(
                alice.secret.as_bytes(),
                alice.user.0,
                now,
                "GET",
                "/v1/embeddings",
            )),
        ),
    ];
    for (what, header) in refused {
        let r = alice
            .call_with(Method::GET, "/v1/models", None, header)
            .await;
        let b = error_of(r, 401).await;
        assert_eq!(b["error"]["code"], "unauthorized", "{what}: {b}");
    }
    let r = alice.call(Method::GET, "/v1/models", None).await;
    assert_eq!(r.status(), 200);
    let models: Value = r.json().await.expect("models");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["embed", "fast"],
        "the aliases, and no provider's own names"
    );
    assert!(!models.to_string().contains(PROVIDER_KEY));
    // A stopped workspace's secret opens nothing.
    let session = crate::support::browser_client();
    let r = session
        .post(app.url("/api/v1/auth/login"))
        .header("Origin", &app.base)
        .json(&json!({"email": "alice@example.com", "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let r = session
        .post(app.url("/api/v1/workspace/stop"))
        .header("Origin", &app.base)
        .send()
        .await
        .expect("stop");
    assert!(r.status().is_success(), "{}", r.status());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = alice.call(Method::GET, "/v1/models", None).await.status();
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a stopped tenant's secret still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Nothing of the platform's own API is served at the door.
    let r = alice.call(Method::GET, "/api/v1/me", None).await;
    assert_eq!(error_of(r, 404).await["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_chat_completion_passes_through_whole_and_streamed_and_the_key_goes_only_to_the_provider()
{
    let upstream = Upstream::start();
    let app = gateway_app(&upstream, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;

    // Whole, with fields the gateway does not know of: they reach the provider as sent.
    let mut body = hello(false);
    body["temperature"] = json!(0.2);
    body["seed"] = json!(7);
    body["x_custom"] = json!({"kept": true});
    let r = alice.chat(&body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-websplat-provider"], "fake");
    let overhead: f64 = r.headers()["x-websplat-gateway-overhead-ms"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("ms");
    assert!(overhead >= 0.0);
    // Where the call's time went, stage by stage, the gateway's own time first.
    let timing = r.headers()["server-timing"].to_str().expect("ascii");
    let stages: Vec<&str> = timing
        .split(", ")
        .map(|entry| entry.split(";dur=").next().unwrap_or_default())
        .collect();
    assert_eq!(
        stages,
        ["gateway", "auth", "body", "pool", "redis", "upstream"],
        "{timing}"
    );
    assert!(
        timing.starts_with(&format!("gateway;dur={overhead:.3}")),
        "{timing}"
    );
    let answer: Value = r.json().await.expect("answer");
    assert_eq!(answer["id"], "chatcmpl-fake");
    assert_eq!(
        answer["system_fingerprint"], "fp_fake",
        "the provider's fields are kept"
    );
    assert_eq!(answer["choices"][0]["message"]["content"], PIECES.concat());
    assert_eq!(answer["usage"]["prompt_tokens"], PROMPT_TOKENS);
    let seen = upstream.seen();
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
    assert_eq!(
        seen[0].body["model"], "fake-chat",
        "the alias became the provider's model"
    );
    assert_eq!(seen[0].body["x_custom"], json!({"kept": true}));
    assert_eq!(seen[0].body["seed"], 7);
    assert!(
        !seen[0]
            .headers
            .iter()
            .any(|(k, _)| k == "x-websplat-identity"),
        "the tenant's identity stays in the platform"
    );

    // Streamed: the chunks as the provider sent them, usage asked for, [DONE] at the end.
    let r = alice.chat(&hello(true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.expect("stream");
    let events = events(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    let said: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|e| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(said, PIECES.concat());
    assert_eq!(
        upstream.seen()[1].body["stream_options"]["include_usage"],
        true
    );

    // Tools pass through, and the tool call comes back, whole and streamed.
    let mut with_tools = hello(false);
    with_tools["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    with_tools["tool_choice"] = json!("auto");
    let r = alice.chat(&with_tools).await;
    let answer: Value = r.json().await.expect("answer");
    assert_eq!(
        answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(upstream.seen()[2].body["tools"], with_tools["tools"]);
    with_tools["stream"] = json!(true);
    let text = alice.chat(&with_tools).await.text().await.expect("stream");
    assert!(
        text.contains("\"tool_calls\"") && text.contains("get_weather"),
        "{text}"
    );

    // The same exchange is metered the same, whole or streamed.
    let rows = ledger(&app, &alice.user, 4).await;
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert_eq!(row["outcome"], "ok", "{row}");
        assert_eq!(row["provider"], "fake");
        assert_eq!(row["alias"], "fast");
        assert_eq!(row["tokens_in"], PROMPT_TOKENS);
        assert_eq!(row["tokens_out"], COMPLETION_TOKENS);
    }
    assert_eq!(rows[0]["streamed"], false);
    assert_eq!(rows[1]["streamed"], true);

    // Refusals name no key either.
    upstream.then(&[super::Fault::Status(400, None)]);
    let r = alice.chat(&hello(false)).await;
    let b = error_of(r, 400).await;
    assert_eq!(b["error"]["code"], "provider_refused");
    assert!(!b.to_string().contains(PROVIDER_KEY));
}

#[tokio::test]
async fn embeddings_pass_through_and_are_metered() {
    let upstream = Upstream::start();
    let app = gateway_app(&upstream, &[]).await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    let r = alice
        .call(
            Method::POST,
            "/v1/embeddings",
            Some(&json!({"model": "embed", "input": ["one", "three"]})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("answer");
    assert_eq!(answer["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(answer["data"][1]["embedding"][0], 5.0);
    assert_eq!(upstream.seen()[0].body["model"], "fake-embed");
    let rows = ledger(&app, &alice.user, 1).await;
    assert_eq!(rows[0]["endpoint"], "embeddings");
    assert_eq!(rows[0]["tokens_in"], 10);
    // Mistakes are answered in words, before any provider is asked.
    for (body, field) in [
        (json!({"model": "embed"}), "input"),
        (json!({"input": "x"}), "model"),
    ] {
        let r = alice
            .call(Method::POST, "/v1/embeddings", Some(&body))
            .await;
        let b = error_of(r, 400).await;
        assert_eq!(b["error"]["field"], field, "{b}");
    }
    let r = alice
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(&json!({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await;
    assert_eq!(error_of(r, 404).await["error"]["code"], "model_not_found");
    let r = alice.call(Method::POST, "/v1/chat/completions", None).await;
    error_of(r, 400).await;
    assert_eq!(upstream.seen().len(), 1);
}
