//! What a client that sends something wrong sees: a 4xx in OpenAI's error shape with a
//! sentence, and the server still serving. Also the model list and the health probe.

use serde_json::{Value, json};

use crate::helpers::{TestServer, error_message};

fn chat(extra: Value) -> Value {
    let mut body = json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": "Hi"}],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

#[tokio::test]
async fn bad_requests_answer_4xx_in_openai_error_shape() {
    let server = TestServer::spawn().await;
    let long_text = "word ".repeat(5000);
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/v1/chat/completions",
            chat(json!({"model": "gpt-17"})),
            404,
            "gpt-17",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"model": "all-minilm-l6-v2"})),
            400,
            "embedding model",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"messages": []})),
            400,
            "messages is empty",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"max_tokens": 0})),
            400,
            "max_tokens",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"max_tokens": 100000})),
            400,
            "at most",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"temperature": 3})),
            400,
            "temperature",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"n": 2})),
            400,
            "one choice",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"tool_choice": "required"})),
            400,
            "cannot call tools",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"messages": [{"role": "wizard", "content": "x"}]})),
            400,
            "wizard",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"messages": [{"role": "user", "content": long_text}]})),
            400,
            "tokens",
        ),
        (
            "/v1/embeddings",
            json!({"model": "nope", "input": "x"}),
            404,
            "nope",
        ),
        (
            "/v1/embeddings",
            json!({"model": "all-minilm-l6-v2", "input": []}),
            400,
            "empty",
        ),
        (
            "/v1/embeddings",
            json!({"model": "all-minilm-l6-v2", "input": [1, 2, 3]}),
            400,
            "token arrays",
        ),
        (
            "/v1/embeddings",
            json!({"model": "all-minilm-l6-v2", "input": "x", "dimensions": 10}),
            400,
            "384",
        ),
        (
            "/v1/embeddings",
            json!({"model": "all-minilm-l6-v2", "input": ["fine", "word ".repeat(300)]}),
            400,
            "input[1]",
        ),
    ];
    for (path, body, status, words) in cases {
        let r = server.post(path, &body).await;
        assert_eq!(r.status().as_u16(), status, "{path} {body}");
        let answer: Value = r.json().await.expect("a JSON error");
        let message = error_message(&answer);
        assert!(
            message.contains(words),
            "{message:?} should mention {words:?}"
        );
    }
    let over_long = server
        .post(
            "/v1/chat/completions",
            &chat(json!({"messages": [{"role": "user", "content": "word ".repeat(5000)}]})),
        )
        .await;
    let answer: Value = over_long.json().await.expect("JSON");
    assert_eq!(answer["error"]["code"], "context_length_exceeded");

    // Not JSON at all.
    let r = server
        .client
        .post(format!("{}/v1/chat/completions", server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 400);
    error_message(&r.json().await.expect("a JSON error"));

    // Still serving.
    let (status, _) = server.chat(&chat(json!({"max_tokens": 2}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_model_list_says_they_are_small_local_models() {
    let server = TestServer::spawn().await;
    let r = server
        .client
        .get(format!("{}/v1/models", server.base))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.expect("JSON");
    let ids: Vec<_> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["smollm2-135m-instruct", "all-minilm-l6-v2"]);
    for model in list["data"].as_array().expect("data") {
        let description = model["description"].as_str().unwrap_or_default();
        assert!(description.contains("small local"), "{description}");
    }
    let health: Value = server
        .client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let server = TestServer::spawn_with(|c| {
        c.workers = 1;
        c.queue = 1;
    })
    .await;
    let long = chat(json!({
        "messages": [{"role": "user", "content": "Write a very long story about a lighthouse keeper, in many chapters."}],
        "max_tokens": 2000,
        "temperature": 0,
        "stream": true,
    }));
    // The first takes the only worker (it has started writing)…
    let mut first = server.post("/v1/chat/completions", &long).await;
    let mut seen = String::new();
    while !seen.contains("\"content\":\"") || seen.matches("data: ").count() < 3 {
        let chunk = first.chunk().await.expect("the stream").expect("more");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // …the second waits in the queue, and the third finds no room.
    let second = server.post("/v1/chat/completions", &long).await;
    assert_eq!(second.status(), 200);
    let third = server.post("/v1/chat/completions", &long).await;
    assert_eq!(third.status(), 503);
    assert_eq!(
        third
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let answer: Value = third.json().await.expect("JSON");
    assert!(error_message(&answer).contains("busy"));
}
