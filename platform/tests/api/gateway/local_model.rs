//! End to end with the real local model: `platform models` as its own process (SmolLM2 and
//! MiniLM from `WEBSPLAT_TEST_MODELS_DIR`), a platform with no provider configured (so the
//! local model is its default), and a tenant's signed calls through the door: a chat
//! completion whole and streamed, and embeddings, each labelled as a small local model's
//! and written to the ledger with its tokens. Short answers: it runs on CI's two cores.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Tenant, events, ledger, tenants_app};

#[tokio::test]
async fn a_tenant_chats_and_embeds_through_the_door_with_the_real_local_model() {
    let (_guard, models) = crate::models::start_platform_models().await;
    let app = tenants_app(&[
        ("WEBSPLAT_AI_LOCAL_BASE_URL", format!("{models}/v1")),
        // A small model on a busy CI machine: time enough for its first token.
        ("WEBSPLAT_GATEWAY_FIRST_BYTE_TIMEOUT", "60s".to_owned()),
    ])
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    let ask = |stream: bool| {
        json!({"model": "fast", "stream": stream, "max_tokens": 8,
               "messages": [{"role": "user", "content": "Name a colour."}]})
    };

    let r = alice.chat(&ask(false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-websplat-provider"], "local");
    assert_eq!(r.headers()["x-websplat-model"], "local-small");
    let a: Value = r.json().await.expect("json");
    assert_eq!(a["system_fingerprint"], "local-small", "{a}");
    let text = a["choices"][0]["message"]["content"]
        .as_str()
        .expect("text");
    assert!(!text.trim().is_empty(), "{a}");
    assert!(
        a["usage"]["completion_tokens"]
            .as_i64()
            .is_some_and(|n| (1..=8).contains(&n))
    );

    let r = alice.chat(&ask(true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-websplat-model"], "local-small");
    let streamed = r.text().await.expect("stream");
    let chunks = events(&streamed);
    assert_eq!(
        chunks.last().map(String::as_str),
        Some("[DONE]"),
        "{streamed}"
    );
    let said: String = chunks
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|e| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(!said.trim().is_empty(), "{streamed}");

    let r = alice
        .call(
            Method::POST,
            "/v1/embeddings",
            Some(&json!({"model": "embed", "input": [
                "The cat sat on the mat.",
                "A kitten rested on the rug.",
                "Quarterly tax filings are due in April."
            ]})),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-websplat-model"], "local-small");
    let e: Value = r.json().await.expect("json");
    let vectors: Vec<Vec<f64>> = (0..3)
        .map(|i| {
            e["data"][i]["embedding"]
                .as_array()
                .expect("a vector")
                .iter()
                .filter_map(Value::as_f64)
                .collect()
        })
        .collect();
    assert_eq!(vectors[0].len(), 384);
    let cosine = |a: &[f64], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        dot / (norm(a) * norm(b))
    };
    assert!(
        cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]),
        "a related sentence ranks above an unrelated one"
    );

    let rows = ledger(&app, &alice.user, 3).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert_eq!(row["provider"], "local", "{row}");
        assert_eq!(row["outcome"], "ok", "{row}");
        assert!(row["tokens_in"].as_i64().is_some_and(|n| n > 0), "{row}");
    }
    assert_eq!(rows[0]["model"], "smollm2-135m-instruct");
    assert_eq!(rows[1]["streamed"], true);
    for row in &rows[..2] {
        assert!(
            row["tokens_out"]
                .as_i64()
                .is_some_and(|n| (1..=8).contains(&n)),
            "{row}"
        );
    }
    assert_eq!(rows[2]["model"], "all-minilm-l6-v2");
}
