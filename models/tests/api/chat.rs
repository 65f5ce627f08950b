//! Chat completions from the real SmolLM2, plain and streamed.

use serde_json::{Value, json};

use crate::helpers::{TestServer, sse_data};

fn ask(question: &str) -> Value {
    json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": question}],
        "temperature": 0,
    })
}

#[tokio::test]
async fn a_chat_completion_answers_text_with_usage() {
    let server = TestServer::spawn().await;
    let mut body = ask("What is the capital of France?");
    body["max_tokens"] = json!(48);
    let r = server.post("/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-websplat-model")
            .and_then(|v| v.to_str().ok()),
        Some("local-small")
    );
    let answer: Value = r.json().await.expect("JSON");
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "smollm2-135m-instruct");
    let choice = &answer["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    let text = choice["message"]["content"].as_str().expect("text");
    assert!(!text.trim().is_empty(), "an answer: {answer}");
    assert!(text.contains("Paris"), "the model knows this one: {text:?}");
    let usage = &answer["usage"];
    let (prompt, completion) = (
        usage["prompt_tokens"].as_u64().expect("prompt_tokens"),
        usage["completion_tokens"]
            .as_u64()
            .expect("completion_tokens"),
    );
    assert!(prompt > 10, "the template and the question: {usage}");
    assert!((1..=48).contains(&completion), "{usage}");
    assert_eq!(usage["total_tokens"].as_u64(), Some(prompt + completion));
    // Ended by the model itself: its end-of-turn token is counted as generated.
    if choice["finish_reason"] == "stop" {
        assert!(completion < 48);
    }
}

#[tokio::test]
async fn max_tokens_bounds_the_answer_and_usage_counts_the_tokens_generated() {
    let server = TestServer::spawn().await;
    for n in [1, 7] {
        let mut body = ask("Write a long story about a dragon who learns to bake bread.");
        body["max_tokens"] = json!(n);
        let (status, answer) = server.chat(&body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["choices"][0]["finish_reason"], "length", "{answer}");
        assert_eq!(answer["usage"]["completion_tokens"], n, "{answer}");
        assert!(
            !answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn the_streamed_answer_is_the_same_answer_in_chunks_with_usage_when_asked() {
    let server = TestServer::spawn().await;
    let mut body = ask("Name three colours.");
    body["max_tokens"] = json!(24);
    body["seed"] = json!(7);
    let (status, whole) = server.chat(&body).await;
    assert_eq!(status, 200, "{whole}");

    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = server.stream(&body).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("each event is JSON"))
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!text.trim().is_empty());
    assert_eq!(
        text, whole["choices"][0]["message"]["content"],
        "greedy decoding gives the same text streamed or not"
    );
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .expect("a finish chunk");
    assert_eq!(finish, whole["choices"][0]["finish_reason"]);
    let usage_chunk = chunks.last().expect("a usage chunk");
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], whole["usage"], "metered alike");

    // Without stream_options there is no usage chunk.
    body.as_object_mut().map(|b| b.remove("stream_options"));
    let events = server.stream(&body).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(
        events
            .iter()
            .filter(|e| *e != "[DONE]")
            .all(|e| !e.contains("\"usage\""))
    );
}

#[tokio::test]
async fn a_stop_sequence_cuts_the_answer_before_it() {
    let server = TestServer::spawn().await;
    let mut body = ask("Describe the sea in two sentences.");
    body["max_tokens"] = json!(40);
    let (_, whole) = server.chat(&body).await;
    let text = whole["choices"][0]["message"]["content"]
        .as_str()
        .expect("text")
        .to_owned();
    // A word from the middle of the greedy answer becomes the stop sequence.
    let word = text
        .split_whitespace()
        .nth(3)
        .expect("an answer of a few words")
        .to_owned();
    body["stop"] = json!([word.clone()]);
    let (status, cut) = server.chat(&body).await;
    assert_eq!(status, 200, "{cut}");
    let cut_text = cut["choices"][0]["message"]["content"]
        .as_str()
        .expect("text");
    assert_eq!(cut["choices"][0]["finish_reason"], "stop");
    assert_eq!(cut_text, &text[..text.find(&word).expect("the word")]);
}

#[tokio::test]
async fn tools_are_accepted_and_answered_in_text() {
    let server = TestServer::spawn().await;
    let mut body = ask("What is the weather in Paris?");
    body["max_tokens"] = json!(16);
    body["tools"] = json!([{"type": "function", "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
    }}]);
    let (status, answer) = server.chat(&body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["choices"][0]["message"]["tool_calls"].is_null());
    assert!(answer["choices"][0]["message"]["content"].is_string());
}

#[tokio::test]
async fn a_client_that_leaves_stops_its_generation() {
    let server = TestServer::spawn().await;
    let mut body = ask("Write a very long story about a lighthouse keeper, in many chapters.");
    body["max_tokens"] = json!(2000);
    body["stream"] = json!(true);
    let mut response = server.post("/v1/chat/completions", &body).await;
    // Read until the model has written some text, then hang up.
    let mut seen = String::new();
    while !sse_data(&seen)
        .iter()
        .any(|e| e.contains("\"content\":\"") && !e.contains("\"role\""))
    {
        let chunk = response.chunk().await.expect("the stream goes on");
        seen.push_str(&String::from_utf8_lossy(
            &chunk.expect("more of the stream"),
        ));
    }
    drop(response);
    let started = std::time::Instant::now();
    while server
        .metric("websplat_models_generations_cancelled_total")
        .await
        < 1.0
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the generation went on after the client left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let generated = server
        .metric("websplat_models_completion_tokens_total")
        .await;
    assert!(generated < 2000.0, "stopped early: {generated} tokens");
}
