//! Anthropic Messages and Google Gemini / Vertex AI, each against a local server speaking
//! its wire format: a plain call, a streamed one and a tool call come back in OpenAI's
//! shapes, metered the same streamed or not; Vertex's service-account key is exchanged for
//! a token (once, then cached) that the calls carry.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

use super::{PROVIDER_KEY, Tenant, events, gateway_app, hello, ledger};
use crate::helpers::LocalServer;

type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, String, Value)>>>;

fn record(seen: &Seen, req: &HttpRequest, body: &Bytes) -> Value {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    seen.lock()
        .expect("lock")
        .push((headers, req.uri().to_string(), body.clone()));
    body
}

fn sse(events: Vec<String>) -> HttpResponse {
    let stream = futures_util::stream::iter(
        events
            .into_iter()
            .map(|e| Ok::<_, std::io::Error>(Bytes::from(e))),
    );
    HttpResponse::Ok()
        .insert_header(("content-type", "text/event-stream"))
        .streaming(stream)
}

async fn anthropic(seen: web::Data<Seen>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let body = record(&seen, &req, &body);
    if req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) != Some(PROVIDER_KEY) {
        return HttpResponse::Unauthorized().json(json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}));
    }
    let tools = body.get("tools").is_some();
    if body["stream"] != json!(true) {
        let content = if tools {
            json!([{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}])
        } else {
            json!([{"type": "text", "text": "Hello from Claude"}])
        };
        return HttpResponse::Ok().json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": content,
            "stop_reason": if tools {"tool_use"} else {"end_turn"}, "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 0}
        }));
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut out = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": [], "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 2}}}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    if tools {
        out.push(ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}})));
        for part in ["{\"city\":", "\"Paris\"}"] {
            out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": part}})));
        }
    } else {
        out.push(ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
        for part in ["Hello", " from", " Claude"] {
            out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}})));
        }
    }
    out.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": if tools {"tool_use"} else {"end_turn"}}, "usage": {"output_tokens": 3}})));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    sse(out)
}

async fn gemini(
    seen: web::Data<Seen>,
    req: HttpRequest,
    body: Bytes,
    path: web::Path<String>,
) -> HttpResponse {
    let body = record(&seen, &req, &body);
    let call = path.into_inner();
    let tools = body.get("tools").is_some();
    let usage = json!({"promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15});
    let part = |text: &str| json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}], "modelVersion": "gemini-test"});
    if call.ends_with(":generateContent") {
        let parts = if tools {
            json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}])
        } else {
            json!([{"text": "Hello from Gemini"}])
        };
        return HttpResponse::Ok().json(json!({
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": "gemini-test", "responseId": "resp-1"
        }));
    }
    assert!(call.ends_with(":streamGenerateContent"), "{call}");
    assert_eq!(req.query_string(), "alt=sse");
    let mut out: Vec<String> = Vec::new();
    if tools {
        out.push(format!("data: {}\r\n\r\n", json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}, "finishReason": "STOP"}], "usageMetadata": usage})));
    } else {
        out.push(format!("data: {}\r\n\r\n", part("Hello")));
        out.push(format!("data: {}\r\n\r\n", part(" from")));
        let mut last = part(" Gemini");
        last["candidates"][0]["finishReason"] = json!("STOP");
        last["usageMetadata"] = usage;
        out.push(format!("data: {last}\r\n\r\n"));
    }
    sse(out)
}

pub(super) fn text_of_stream(text: &str) -> String {
    events(text)
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|e| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

pub(super) fn with_tools(stream: bool) -> Value {
    let mut b = hello(stream);
    b["messages"] = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"}
    ]);
    b["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    b
}

/// The same four calls (plain and tools, whole and streamed) through one provider.
pub(super) async fn four_calls(app: &crate::helpers::TestApp, alice: &Tenant, greeting: &str) {
    let r = alice.chat(&hello(false)).await;
    assert_eq!(r.status(), 200);
    let a: Value = r.json().await.expect("json");
    assert_eq!(a["object"], "chat.completion");
    assert_eq!(a["choices"][0]["message"]["content"], greeting);
    assert_eq!(a["choices"][0]["finish_reason"], "stop");
    let text = alice.chat(&hello(true)).await.text().await.expect("stream");
    assert_eq!(text_of_stream(&text), greeting, "{text}");
    assert_eq!(events(&text).last().map(String::as_str), Some("[DONE]"));
    let r = alice.chat(&with_tools(false)).await;
    let a: Value = r.json().await.expect("json");
    let call = &a["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{a}");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("arguments"))
            .expect("json");
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(a["choices"][0]["finish_reason"], "tool_calls");
    let text = alice
        .chat(&with_tools(true))
        .await
        .text()
        .await
        .expect("stream");
    let arguments: String = events(&text)
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|e| {
            e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).expect("json"),
        json!({"city": "Paris"}),
        "{text}"
    );
    assert!(text.contains("get_weather"));
    let rows = ledger(app, &alice.user, 4).await;
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert_eq!(row["outcome"], "ok", "{row}");
        assert_eq!(
            (row["tokens_in"].as_i64(), row["tokens_out"].as_i64()),
            (Some(12), Some(3)),
            "metered the same streamed or not: {row}"
        );
    }
}

#[tokio::test]
async fn anthropic_messages_answer_in_openai_shapes_whole_streamed_and_with_tools() {
    let seen: Seen = Arc::default();
    let shared = seen.clone();
    let server = LocalServer::start(move |cfg| {
        cfg.app_data(web::Data::new(shared.clone()))
            .route("/v1/messages", web::post().to(anthropic));
    });
    let unused = super::Upstream::start();
    let app = gateway_app(
        &unused,
        &[
            ("WEBSPLAT_AI_CLAUDE_KIND", "anthropic".to_owned()),
            ("WEBSPLAT_AI_CLAUDE_BASE_URL", format!("{}/v1", server.base)),
            ("WEBSPLAT_AI_CLAUDE_API_KEY", PROVIDER_KEY.to_owned()),
            ("WEBSPLAT_AI_CLAUDE_MODELS", "claude-test".to_owned()),
            ("WEBSPLAT_AI_ALIAS_FAST", "claude/claude-test".to_owned()),
        ],
    )
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    four_calls(&app, &alice, "Hello from Claude").await;
    let seen = seen.lock().expect("lock").clone();
    let (headers, _, body) = &seen[2];
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "anthropic-version" && v == "2023-06-01")
    );
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["max_tokens"], 50);
    assert_eq!(
        body["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(body["messages"][0]["role"], "user");
}

#[tokio::test]
async fn gemini_and_vertex_answer_in_openai_shapes_and_vertex_exchanges_its_key_once() {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let seen: Seen = Arc::default();
    let shared = seen.clone();
    let tokens = Arc::new(Mutex::new(Vec::<String>::new()));
    let token_log = tokens.clone();
    let server = LocalServer::start(move |cfg| {
        let token_log = token_log.clone();
        cfg.app_data(web::Data::new(shared.clone()))
            .route("/v1beta/models/{call}", web::post().to(gemini))
            .route("/v1/projects/p/locations/l/publishers/google/models/{call}", web::post().to(gemini))
            .route(
                "/token",
                web::post().to(move |form: web::Form<Vec<(String, String)>>| {
                    let token_log = token_log.clone();
                    async move {
                        let assertion = form.iter().find(|(k, _)| k == "assertion").map(|(_, v)| v.clone()).unwrap_or_default();
                        token_log.lock().expect("lock").push(assertion);
                        HttpResponse::Ok().json(json!({"access_token": "ya29.test-token", "expires_in": 3600, "token_type": "Bearer"}))
                    }
                }),
            );
    });
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("a key");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
    let dir =
        std::env::temp_dir().join(format!("websplat-vertex-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let credentials = dir.join("sa.json");
    std::fs::write(
        &credentials,
        json!({"type": "service_account", "client_email": "gw@p.iam.gserviceaccount.com", "private_key": pem.as_str(), "token_uri": format!("{}/token", server.base)}).to_string(),
    )
    .expect("write");
    let unused = super::Upstream::start();
    let app = gateway_app(
        &unused,
        &[
            ("WEBSPLAT_AI_GEM_KIND", "gemini".to_owned()),
            (
                "WEBSPLAT_AI_GEM_BASE_URL",
                format!("{}/v1beta", server.base),
            ),
            ("WEBSPLAT_AI_GEM_API_KEY", PROVIDER_KEY.to_owned()),
            ("WEBSPLAT_AI_GEM_MODELS", "gemini-test".to_owned()),
            ("WEBSPLAT_AI_VTX_KIND", "vertex".to_owned()),
            (
                "WEBSPLAT_AI_VTX_BASE_URL",
                format!(
                    "{}/v1/projects/p/locations/l/publishers/google",
                    server.base
                ),
            ),
            (
                "WEBSPLAT_AI_VTX_CREDENTIALS_FILE",
                credentials.display().to_string(),
            ),
            ("WEBSPLAT_AI_VTX_MODELS", "gemini-test".to_owned()),
            ("WEBSPLAT_AI_ALIAS_FAST", "gem/gemini-test".to_owned()),
            ("WEBSPLAT_AI_ALIAS_QUALITY", "vtx/gemini-test".to_owned()),
        ],
    )
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    four_calls(&app, &alice, "Hello from Gemini").await;
    {
        let seen = seen.lock().expect("lock");
        let (headers, uri, body) = &seen[2];
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "x-goog-api-key" && v == PROVIDER_KEY)
        );
        assert!(
            uri.ends_with("/models/gemini-test:generateContent"),
            "{uri}"
        );
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Be brief.");
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 50);
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["name"],
            "get_weather"
        );
    }
    // Vertex: two calls, one token exchange, the token on both.
    for stream in [false, true] {
        let mut b = hello(stream);
        b["model"] = json!("quality");
        let r = alice.chat(&b).await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.expect("body").contains("Gemini"));
    }
    let assertions = tokens.lock().expect("lock").clone();
    assert_eq!(assertions.len(), 1, "the token is cached");
    let claims = assertions[0].split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["iss"], "gw@p.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], format!("{}/token", server.base));
    let seen = seen.lock().expect("lock");
    let vertex: Vec<_> = seen
        .iter()
        .filter(|(_, uri, _)| uri.contains("/projects/p/"))
        .collect();
    assert_eq!(vertex.len(), 2);
    for (headers, _, _) in vertex {
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "authorization" && v == "Bearer ya29.test-token")
        );
    }
    std::fs::remove_dir_all(dir).ok();
}
