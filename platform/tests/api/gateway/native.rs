//! Ollama's native API and OpenAI's Responses format, each against a local server speaking
//! its wire format (Ollama: `/api/chat` as NDJSON lines, `/api/embed`; Responses:
//! `/v1/responses` with its semantic stream events): a plain call, a streamed one and a
//! tool call come back in OpenAI's shapes, metered the same streamed or not.

use std::sync::{Arc, Mutex};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use reqwest::Method;
use serde_json::{Value, json};

use super::formats::four_calls;
use super::{PROVIDER_KEY, Tenant, gateway_app, ledger};
use crate::helpers::LocalServer;

/// What a server was sent: (its path, its Authorization header, its body).
type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

fn record(seen: &Seen, req: &HttpRequest, body: &Bytes) -> Value {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.lock()
        .expect("lock")
        .push((req.path().to_owned(), authorization, body.clone()));
    body
}

fn streamed(content_type: &str, parts: Vec<String>) -> HttpResponse {
    let stream = futures_util::stream::iter(
        parts
            .into_iter()
            .map(|p| Ok::<_, std::io::Error>(Bytes::from(p))),
    );
    HttpResponse::Ok()
        .insert_header(("content-type", content_type.to_owned()))
        .streaming(stream)
}

async fn ollama_chat(seen: web::Data<Seen>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let body = record(&seen, &req, &body);
    let tools = body.get("tools").is_some();
    let model = body["model"].clone();
    let call = json!([{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]);
    let line = |message: Value, done: bool| {
        let mut l = json!({"model": model, "created_at": "2026-12-02T10:00:00Z", "message": message, "done": done});
        if done {
            l["done_reason"] = json!("stop");
            l["prompt_eval_count"] = json!(12);
            l["eval_count"] = json!(3);
            l["total_duration"] = json!(1_000_000);
        }
        l
    };
    if body["stream"] == json!(false) {
        let message = if tools {
            json!({"role": "assistant", "content": "", "tool_calls": call})
        } else {
            json!({"role": "assistant", "content": "Hello from Ollama"})
        };
        return HttpResponse::Ok().json(line(message, true));
    }
    let mut lines: Vec<Value> = if tools {
        vec![line(
            json!({"role": "assistant", "content": "", "tool_calls": call}),
            false,
        )]
    } else {
        ["Hello", " from", " Ollama"]
            .iter()
            .map(|p| line(json!({"role": "assistant", "content": p}), false))
            .collect()
    };
    lines.push(line(json!({"role": "assistant", "content": ""}), true));
    streamed(
        "application/x-ndjson",
        lines.iter().map(|l| format!("{l}\n")).collect(),
    )
}

async fn ollama_embed(seen: web::Data<Seen>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let body = record(&seen, &req, &body);
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => Vec::new(),
    };
    let embeddings: Vec<Value> = inputs
        .iter()
        .map(|t| json!([t.len() as f64, 0.5, -0.25]))
        .collect();
    HttpResponse::Ok().json(json!({"model": body["model"], "embeddings": embeddings,
        "total_duration": 1000, "load_duration": 10, "prompt_eval_count": 5 * inputs.len()}))
}

#[tokio::test]
async fn ollama_native_chat_streams_ndjson_calls_tools_and_embeds_in_openai_shapes() {
    let seen: Seen = Arc::default();
    let shared = seen.clone();
    let server = LocalServer::start(move |cfg| {
        cfg.app_data(web::Data::new(shared.clone()))
            .route("/api/chat", web::post().to(ollama_chat))
            .route("/api/embed", web::post().to(ollama_embed));
    });
    let unused = super::Upstream::start();
    let app = gateway_app(
        &unused,
        &[
            ("WEBSPLAT_AI_OLL_KIND", "ollama-native".to_owned()),
            ("WEBSPLAT_AI_OLL_BASE_URL", format!("{}/api", server.base)),
            ("WEBSPLAT_AI_OLL_MODELS", "llama3.2,nomic-embed".to_owned()),
            ("WEBSPLAT_AI_ALIAS_FAST", "oll/llama3.2".to_owned()),
            ("WEBSPLAT_AI_ALIAS_EMBED", "oll/nomic-embed".to_owned()),
        ],
    )
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    four_calls(&app, &alice, "Hello from Ollama").await;
    {
        let seen = seen.lock().expect("lock");
        let (path, authorization, body) = &seen[0];
        assert_eq!(path, "/api/chat");
        assert_eq!(*authorization, None, "a local Ollama gets no key");
        assert_eq!(body["model"], "llama3.2");
        assert_eq!(body["stream"], false, "Ollama streams unless told not to");
        assert_eq!(body["options"]["num_predict"], 50);
        assert_eq!(seen[1].2["stream"], true);
        let (_, _, tools) = &seen[2];
        assert_eq!(tools["messages"][0]["role"], "system");
        assert_eq!(tools["tools"][0]["function"]["name"], "get_weather");
    }
    let r = alice
        .call(
            Method::POST,
            "/v1/embeddings",
            Some(&json!({"model": "embed", "input": ["a", "bb"]})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["object"], "list");
    assert_eq!(e["data"][1]["embedding"][0], 2.0, "{e}");
    assert_eq!(e["usage"]["prompt_tokens"], 10);
    let rows = ledger(&app, &alice.user, 5).await;
    let row = rows.last().expect("the embeddings row");
    assert_eq!(row["endpoint"], "embeddings");
    assert_eq!(row["tokens_in"], 10, "{row}");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.last().expect("embed").0, "/api/embed");
}

async fn responses(seen: web::Data<Seen>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let body = record(&seen, &req, &body);
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {PROVIDER_KEY}"))
    {
        return HttpResponse::Unauthorized()
            .json(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}));
    }
    let tools = body.get("tools").is_some();
    let model = body["model"].clone();
    let usage = json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15});
    let call = json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
        "arguments": "{\"city\":\"Paris\"}", "status": "completed"});
    let message = json!({"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello from Responses", "annotations": []}]});
    let whole = |status: &str| {
        json!({"id": "resp_1", "object": "response", "created_at": 1_764_669_600, "status": status,
            "model": model, "output": if status == "completed" { json!([if tools { call.clone() } else { message.clone() }]) } else { json!([]) },
            "usage": if status == "completed" { usage.clone() } else { Value::Null }})
    };
    if body["stream"] != json!(true) {
        return HttpResponse::Ok().json(whole("completed"));
    }
    let mut n = 0;
    let mut ev = |kind: &str, mut data: Value| {
        n += 1;
        data["type"] = json!(kind);
        data["sequence_number"] = json!(n);
        format!("event: {kind}\ndata: {data}\n\n")
    };
    let mut out = vec![
        ev(
            "response.created",
            json!({"response": whole("in_progress")}),
        ),
        ev(
            "response.in_progress",
            json!({"response": whole("in_progress")}),
        ),
    ];
    if tools {
        let mut added = call.clone();
        added["arguments"] = json!("");
        added["status"] = json!("in_progress");
        out.push(ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": added}),
        ));
        for part in ["{\"city\":", "\"Paris\"}"] {
            out.push(ev(
                "response.function_call_arguments.delta",
                json!({"item_id": "fc_1", "output_index": 0, "delta": part}),
            ));
        }
        out.push(ev(
            "response.function_call_arguments.done",
            json!({"item_id": "fc_1", "output_index": 0, "arguments": "{\"city\":\"Paris\"}"}),
        ));
        out.push(ev(
            "response.output_item.done",
            json!({"output_index": 0, "item": call}),
        ));
    } else {
        out.push(ev("response.output_item.added", json!({"output_index": 0, "item": {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}})));
        out.push(ev("response.content_part.added", json!({"item_id": "msg_1", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})));
        for part in ["Hello", " from", " Responses"] {
            out.push(ev(
                "response.output_text.delta",
                json!({"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": part}),
            ));
        }
        out.push(ev("response.output_text.done", json!({"item_id": "msg_1", "output_index": 0, "content_index": 0, "text": "Hello from Responses"})));
        out.push(ev(
            "response.output_item.done",
            json!({"output_index": 0, "item": message}),
        ));
    }
    out.push(ev(
        "response.completed",
        json!({"response": whole("completed")}),
    ));
    streamed("text/event-stream", out)
}

#[tokio::test]
async fn openai_responses_format_answers_in_chat_shapes_whole_streamed_and_with_tools() {
    let seen: Seen = Arc::default();
    let shared = seen.clone();
    let server = LocalServer::start(move |cfg| {
        cfg.app_data(web::Data::new(shared.clone()))
            .route("/v1/responses", web::post().to(responses));
    });
    let unused = super::Upstream::start();
    let app = gateway_app(
        &unused,
        &[
            ("WEBSPLAT_AI_RESP_KIND", "openai-responses".to_owned()),
            ("WEBSPLAT_AI_RESP_BASE_URL", format!("{}/v1", server.base)),
            ("WEBSPLAT_AI_RESP_API_KEY", PROVIDER_KEY.to_owned()),
            ("WEBSPLAT_AI_RESP_MODELS", "gpt-test".to_owned()),
            ("WEBSPLAT_AI_ALIAS_FAST", "resp/gpt-test".to_owned()),
        ],
    )
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    four_calls(&app, &alice, "Hello from Responses").await;
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 4);
    let (path, _, plain) = &seen[0];
    assert_eq!(path, "/v1/responses");
    assert_eq!(plain["model"], "gpt-test");
    assert_eq!(plain["max_output_tokens"], 50);
    assert_eq!(plain["store"], false, "nothing is kept at the provider");
    assert_eq!(plain["input"][0]["role"], "user");
    assert!(plain.get("messages").is_none());
    let (_, _, tools) = &seen[2];
    assert_eq!(tools["instructions"], "Be brief.");
    assert_eq!(tools["tools"][0]["name"], "get_weather");
    assert_eq!(
        tools["tools"][0]["parameters"]["properties"]["city"]["type"],
        "string"
    );
}
