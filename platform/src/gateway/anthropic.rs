//! Anthropic's Messages API, translated in our own code from and to OpenAI's Chat
//! Completions: system messages become `system`, tool calls and tool results become
//! `tool_use` and `tool_result` blocks, tools their `input_schema`; answers and streams
//! (`message_start`, `content_block_*`, `message_delta`, `message_stop`) become OpenAI's
//! completion and chunks, with usage from `message_start` and `message_delta`.

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::error::GatewayError;
use super::messages::{push_turn, text_of};
use super::stream::{Lines, Translate};
use super::usage::Usage;
use crate::config::ProviderConfig;

pub const VERSION: &str = "2023-06-01";

/// OpenAI content parts to Anthropic blocks.
fn blocks(content: &Value) -> Vec<Value> {
    match content {
        Value::String(s) if !s.is_empty() => vec![json!({"type": "text", "text": s})],
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => Some(json!({"type": "text", "text": p.get("text").cloned().unwrap_or_default()})),
                Some("image_url") => {
                    let url = p.pointer("/image_url/url").and_then(Value::as_str)?;
                    if let Some(rest) = url.strip_prefix("data:") {
                        let (media, data) = rest.split_once(";base64,")?;
                        Some(json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}))
                    } else {
                        Some(json!({"type": "image", "source": {"type": "url", "url": url}}))
                    }
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// An OpenAI chat request as an Anthropic Messages request.
pub fn to_messages(body: &Value, model: &str, stream: bool) -> Result<Value, GatewayError> {
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let push = |turns: &mut Vec<Value>, role: &str, items: Vec<Value>| {
        push_turn(turns, role, "content", items)
    };
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let content = m.get("content").cloned().unwrap_or(Value::Null);
        match m.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => system.push(text_of(&content)),
            Some("user") => push(&mut messages, "user", blocks(&content)),
            Some("assistant") => {
                let mut out = blocks(&content);
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let args = call
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}");
                    out.push(json!({
                        "type": "tool_use",
                        "id": call.get("id").cloned().unwrap_or_default(),
                        "name": call.pointer("/function/name").cloned().unwrap_or_default(),
                        "input": serde_json::from_str::<Value>(args).unwrap_or_else(|_| json!({})),
                    }));
                }
                push(&mut messages, "assistant", out);
            }
            Some("tool") => push(
                &mut messages,
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.get("tool_call_id").cloned().unwrap_or_default(),
                    "content": text_of(&content),
                })],
            ),
            _ => {
                return Err(GatewayError::invalid(
                    "messages",
                    "each message's role must be system, developer, user, assistant or tool",
                ));
            }
        }
    }
    let max_tokens = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .cloned()
        .unwrap_or(json!(1024));
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("max_tokens".into(), max_tokens);
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    for key in ["temperature", "top_p", "top_k", "metadata"] {
        if let Some(v) = body.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter_map(|t| {
                let f = t.get("function")?;
                Some(json!({
                    "name": f.get("name")?,
                    "description": f.get("description").cloned().unwrap_or(json!("")),
                    "input_schema": f.get("parameters").cloned().unwrap_or(json!({"type": "object"})),
                }))
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    match body.get("tool_choice") {
        Some(Value::String(s)) if s == "auto" => {
            out.insert("tool_choice".into(), json!({"type": "auto"}));
        }
        Some(Value::String(s)) if s == "required" => {
            out.insert("tool_choice".into(), json!({"type": "any"}));
        }
        Some(Value::String(s)) if s == "none" => {
            out.insert("tool_choice".into(), json!({"type": "none"}));
        }
        Some(Value::Object(o)) => {
            if let Some(name) = o.get("function").and_then(|f| f.get("name")) {
                out.insert("tool_choice".into(), json!({"type": "tool", "name": name}));
            }
        }
        _ => {}
    }
    if stream {
        out.insert("stream".into(), json!(true));
    }
    Ok(Value::Object(out))
}

pub fn chat_request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
    stream: bool,
) -> Result<reqwest::RequestBuilder, GatewayError> {
    let request = to_messages(body, model, stream)?;
    let mut builder = client
        .post(provider.endpoint("messages"))
        .header("anthropic-version", VERSION)
        .json(&request);
    if let Some(key) = &provider.api_key {
        builder = builder.header("x-api-key", key.expose_secret());
    }
    Ok(builder)
}

fn finish_reason(stop: Option<&str>) -> Value {
    match stop {
        Some("end_turn" | "stop_sequence" | "pause_turn") => json!("stop"),
        Some("max_tokens") => json!("length"),
        Some("tool_use") => json!("tool_calls"),
        Some("refusal") => json!("content_filter"),
        Some(_) => json!("stop"),
        None => Value::Null,
    }
}

fn usage_of(u: &Value) -> Usage {
    let int = |k: &str| u.get(k).and_then(Value::as_i64).unwrap_or(0).max(0);
    let cached = int("cache_read_input_tokens");
    Usage {
        input: int("input_tokens") + cached + int("cache_creation_input_tokens"),
        output: int("output_tokens"),
        cached,
        reasoning: 0,
        cost_nanos: None,
    }
}

/// A Messages answer as an OpenAI completion.
pub fn answer(body: Value) -> Result<(Value, Option<Usage>), String> {
    let content = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or("it has no content")?;
    let text: String = content
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    let calls: Vec<Value> = content
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| {
            json!({"id": b["id"], "type": "function", "function": {
                "name": b["name"], "arguments": b.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into())
            }})
        })
        .collect();
    let usage = body.get("usage").map(usage_of);
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let mut out = json!({
        "id": body.get("id").cloned().unwrap_or(json!("msg")),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": body.get("model").cloned().unwrap_or_default(),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(body.get("stop_reason").and_then(Value::as_str))}],
    });
    if let Some(u) = usage {
        out["usage"] = u.to_openai();
    }
    Ok((out, usage))
}

/// Anthropic's stream events as OpenAI chunks.
#[derive(Default)]
pub struct StreamTranslator {
    lines: Lines,
    id: String,
    model: String,
    usage: Usage,
    seen_usage: bool,
    output_bytes: usize,
    /// Anthropic's block index → OpenAI's tool call index.
    tools: Vec<(u64, usize)>,
    done: bool,
}

impl StreamTranslator {
    fn chunk(&self, delta: Value, finish: Value) -> String {
        let c = json!({"id": self.id, "object": "chat.completion.chunk", "created": chrono::Utc::now().timestamp(),
            "model": self.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    }

    fn event(&mut self, e: &Value) -> String {
        match e.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let m = &e["message"];
                self.id = m["id"].as_str().unwrap_or("msg").to_owned();
                self.model = m["model"].as_str().unwrap_or_default().to_owned();
                if let Some(u) = m.get("usage") {
                    self.usage = usage_of(u);
                    self.seen_usage = true;
                }
                self.chunk(json!({"role": "assistant", "content": ""}), Value::Null)
            }
            Some("content_block_start") if e["content_block"]["type"] == "tool_use" => {
                let index = self.tools.len();
                self.tools.push((e["index"].as_u64().unwrap_or(0), index));
                let b = &e["content_block"];
                self.chunk(json!({"tool_calls": [{"index": index, "id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": ""}}]}), Value::Null)
            }
            Some("content_block_delta") => {
                let d = &e["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        let text = d["text"].as_str().unwrap_or_default();
                        self.output_bytes += text.len();
                        self.chunk(json!({"content": text}), Value::Null)
                    }
                    Some("input_json_delta") => {
                        let part = d["partial_json"].as_str().unwrap_or_default();
                        self.output_bytes += part.len();
                        let block = e["index"].as_u64().unwrap_or(0);
                        let index = self
                            .tools
                            .iter()
                            .find(|(b, _)| *b == block)
                            .map(|(_, i)| *i)
                            .unwrap_or(0);
                        self.chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": part}}]}), Value::Null)
                    }
                    _ => String::new(),
                }
            }
            Some("message_delta") => {
                if let Some(out) = e.pointer("/usage/output_tokens").and_then(Value::as_i64) {
                    self.usage.output = out.max(0);
                    self.seen_usage = true;
                }
                self.chunk(
                    json!({}),
                    finish_reason(e.pointer("/delta/stop_reason").and_then(Value::as_str)),
                )
            }
            Some("message_stop") => {
                self.done = true;
                let c = json!({"id": self.id, "object": "chat.completion.chunk", "created": chrono::Utc::now().timestamp(),
                    "model": self.model, "choices": [], "usage": self.usage.to_openai()});
                format!("data: {c}\n\ndata: [DONE]\n\n")
            }
            _ => String::new(),
        }
    }
}

impl Translate for StreamTranslator {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = String::new();
        for event in self.lines.feed_sse_json(chunk) {
            out.push_str(&self.event(&event));
        }
        out.into_bytes()
    }
    fn usage(&self) -> Option<Usage> {
        // Output tokens arrive at the end; a stream cut before knows only its input.
        (self.seen_usage && self.done).then_some(self.usage)
    }
    fn output_bytes(&self) -> usize {
        self.output_bytes
    }
    fn complete(&self) -> bool {
        self.done
    }
}
