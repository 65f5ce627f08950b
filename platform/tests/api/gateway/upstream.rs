//! A local server speaking OpenAI's Chat Completions and Embeddings wire format, as the
//! gateway's providers do, with the failures real ones have on demand: 429 with
//! `Retry-After`, 500, a slow first byte and a stream cut midway. It records what it was
//! sent (headers and bodies), so tests can see what left the platform.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use crate::helpers::LocalServer;

/// What the next call gets (then the one after, and so on; `Answer` when none are left).
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// A normal answer.
    Answer,
    /// This status, with `Retry-After` seconds when given.
    Status(u16, Option<u64>),
    /// The answer's head only after this long.
    SlowFirstByte(Duration),
    /// A stream that breaks off after its first two events.
    CutMidStream,
}

/// The text every answer says, in three pieces.
pub const PIECES: [&str; 3] = ["Hello", " from the", " fake provider"];
pub const PROMPT_TOKENS: i64 = 12;
pub const COMPLETION_TOKENS: i64 = 3;

#[derive(Debug, Clone)]
pub struct Seen {
    pub authorization: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

#[derive(Default)]
struct State {
    faults: VecDeque<Fault>,
    seen: Vec<Seen>,
    /// How long each answer takes (held concurrently).
    delay: Duration,
}

#[derive(Clone)]
pub struct Upstream {
    state: Arc<Mutex<State>>,
    pub server: Arc<LocalServer>,
    /// Its OpenAI base URL (`…/v1`).
    pub base_url: String,
}

impl Upstream {
    pub fn start() -> Upstream {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = LocalServer::start(move |cfg| {
            cfg.app_data(web::Data::new(shared.clone()))
                .route("/v1/chat/completions", web::post().to(chat))
                .route("/v1/embeddings", web::post().to(embeddings));
        });
        let base_url = format!("{}/v1", server.base);
        Upstream {
            state,
            server: Arc::new(server),
            base_url,
        }
    }

    pub fn then(&self, faults: &[Fault]) {
        self.state
            .lock()
            .expect("lock")
            .faults
            .extend(faults.iter().copied());
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().expect("lock").delay = delay;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("lock").seen.clone()
    }
}

type Shared = web::Data<Arc<Mutex<State>>>;

fn take(state: &Shared, req: &HttpRequest, body: &Bytes) -> (Fault, Duration, Value) {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut s = state.lock().expect("lock");
    s.seen.push(Seen {
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: body.clone(),
    });
    (s.faults.pop_front().unwrap_or(Fault::Answer), s.delay, body)
}

fn failure(status: u16, retry_after: Option<u64>) -> HttpResponse {
    let mut r = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"));
    if let Some(secs) = retry_after {
        r.insert_header(("retry-after", secs.to_string()));
    }
    r.json(json!({"error": {"message": format!("fake failure {status}"), "type": "server_error"}}))
}

async fn chat(state: Shared, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (fault, delay, body) = take(&state, &req, &body);
    tokio::time::sleep(delay).await;
    match fault {
        Fault::Status(status, retry_after) => return failure(status, retry_after),
        Fault::SlowFirstByte(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    let model = body["model"].as_str().unwrap_or("fake").to_owned();
    let tools = body.get("tools").is_some();
    let usage = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS});
    let tool_call = json!([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]);
    if body["stream"] != json!(true) {
        let message = if tools {
            json!({"role": "assistant", "content": null, "tool_calls": tool_call})
        } else {
            json!({"role": "assistant", "content": PIECES.concat()})
        };
        return HttpResponse::Ok().json(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": if tools {"tool_calls"} else {"stop"}}],
            "usage": usage, "system_fingerprint": "fp_fake"
        }));
    }
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut events: Vec<String> = if tools {
        vec![chunk(
            json!({"role": "assistant", "tool_calls": tool_call}),
            Value::Null,
        )]
    } else {
        PIECES
            .iter()
            .map(|p| chunk(json!({"content": p}), Value::Null))
            .collect()
    };
    events.push(chunk(
        json!({}),
        json!(if tools { "tool_calls" } else { "stop" }),
    ));
    if body["stream_options"]["include_usage"] == json!(true) {
        events.push(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": usage})
        ));
    }
    events.push("data: [DONE]\n\n".to_owned());
    let cut = matches!(fault, Fault::CutMidStream);
    let stream = async_stream(events, cut);
    HttpResponse::Ok()
        .insert_header(("content-type", "text/event-stream"))
        .streaming(stream)
}

/// The events one by one, a moment apart; a cut stream errors after the first two.
fn async_stream(
    events: Vec<String>,
    cut: bool,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(
        (events.into_iter().enumerate(), cut),
        |(mut it, cut)| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            match it.next() {
                Some((i, _)) if cut && i == 2 => {
                    Some((Err(std::io::Error::other("cut")), (it, cut)))
                }
                Some((_, e)) => Some((Ok(Bytes::from(e)), (it, cut))),
                None => None,
            }
        },
    )
}

async fn embeddings(state: Shared, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (fault, delay, body) = take(&state, &req, &body);
    tokio::time::sleep(delay).await;
    if let Fault::Status(status, retry_after) = fault {
        return failure(status, retry_after);
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => Vec::new(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": [text.len() as f64, 0.5, -0.25]}))
        .collect();
    HttpResponse::Ok().json(json!({
        "object": "list", "data": data, "model": body["model"],
        "usage": {"prompt_tokens": 5 * inputs.len(), "total_tokens": 5 * inputs.len()}
    }))
}
