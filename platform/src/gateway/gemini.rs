//! Google Gemini (`generateContent`, `streamGenerateContent?alt=sse`) and Vertex AI (the same
//! format under a project's publisher path, with an OAuth access token instead of a key),
//! translated in our own code from and to OpenAI's Chat Completions: messages become
//! `contents` (assistant → `model`), system messages `systemInstruction`, tools
//! `functionDeclarations`, tool calls `functionCall` and results `functionResponse`; usage
//! comes from `usageMetadata`.

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::error::GatewayError;
use super::messages::{push_turn, text_of};
use super::stream::{Lines, Translate};
use super::usage::Usage;
use crate::config::{ProviderConfig, ProviderKind};

fn parts(content: &Value) -> Vec<Value> {
    match content {
        Value::String(s) if !s.is_empty() => vec![json!({"text": s})],
        Value::Array(items) => items
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => Some(json!({"text": p.get("text").cloned().unwrap_or_default()})),
                Some("image_url") => {
                    let url = p.pointer("/image_url/url").and_then(Value::as_str)?;
                    let (media, data) = url.strip_prefix("data:")?.split_once(";base64,")?;
                    Some(json!({"inlineData": {"mimeType": media, "data": data}}))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// An OpenAI chat request as a Gemini `GenerateContentRequest`.
pub fn to_gemini(body: &Value) -> Result<Value, GatewayError> {
    let mut system: Vec<String> = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // Tool results name their function in Gemini; OpenAI names the call's id.
    let mut call_names: Vec<(String, String)> = Vec::new();
    let push = |turns: &mut Vec<Value>, role: &str, items: Vec<Value>| {
        push_turn(turns, role, "parts", items)
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
            Some("user") => push(&mut contents, "user", parts(&content)),
            Some("assistant") => {
                let mut out = parts(&content);
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let id = call
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let args = call
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}");
                    out.push(json!({"functionCall": {"name": name, "args": serde_json::from_str::<Value>(args).unwrap_or_else(|_| json!({}))}}));
                    call_names.push((id, name));
                }
                push(&mut contents, "model", out);
            }
            Some("tool") => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let name = call_names
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_else(|| id.to_owned());
                let text = text_of(&content);
                let response = serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({"result": text}));
                push(
                    &mut contents,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
            _ => {
                return Err(GatewayError::invalid(
                    "messages",
                    "each message's role must be system, developer, user, assistant or tool",
                ));
            }
        }
    }
    let mut generation = Map::new();
    if let Some(max) = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
    {
        generation.insert("maxOutputTokens".into(), max.clone());
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
    ] {
        if let Some(v) = body.get(from) {
            generation.insert(to.into(), v.clone());
        }
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            generation.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            generation.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
        == Some("json_object")
    {
        generation.insert("responseMimeType".into(), json!("application/json"));
    }
    let mut out = json!({"contents": contents, "generationConfig": generation});
    if !system.is_empty() {
        out["systemInstruction"] = json!({"parts": [{"text": system.join("\n\n")}]});
    }
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let declarations: Vec<Value> = tools
            .iter()
            .filter_map(|t| {
                let f = t.get("function")?;
                let mut d = json!({"name": f.get("name")?, "description": f.get("description").cloned().unwrap_or(json!(""))});
                if let Some(p) = f.get("parameters") {
                    d["parameters"] = p.clone();
                }
                Some(d)
            })
            .collect();
        out["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    match body.get("tool_choice") {
        Some(Value::String(s)) if s == "required" => {
            out["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY"}});
        }
        Some(Value::String(s)) if s == "none" => {
            out["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
        }
        Some(Value::Object(o)) => {
            if let Some(name) = o.get("function").and_then(|f| f.get("name")) {
                out["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}});
            }
        }
        _ => {}
    }
    Ok(out)
}

/// The request for `model`; Vertex's bearer token is passed in (see [`super::vertex`]).
pub fn chat_request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
    stream: bool,
    bearer: Option<&str>,
) -> Result<reqwest::RequestBuilder, GatewayError> {
    let request = to_gemini(body)?;
    let path = if stream {
        format!("models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("models/{model}:generateContent")
    };
    let mut builder = client.post(provider.endpoint(&path)).json(&request);
    match (provider.kind, bearer, &provider.api_key) {
        (ProviderKind::Vertex, Some(token), _) => builder = builder.bearer_auth(token),
        (_, _, Some(key)) => builder = builder.header("x-goog-api-key", key.expose_secret()),
        _ => {}
    }
    Ok(builder)
}

fn usage_of(u: &Value) -> Usage {
    let int = |k: &str| u.get(k).and_then(Value::as_i64).unwrap_or(0).max(0);
    let reasoning = int("thoughtsTokenCount");
    Usage {
        input: int("promptTokenCount"),
        output: int("candidatesTokenCount") + reasoning,
        cached: int("cachedContentTokenCount"),
        reasoning,
        cost_nanos: None,
    }
}

fn finish_reason(reason: Option<&str>, calls: bool) -> Value {
    match reason {
        None => Value::Null,
        Some(_) if calls => json!("tool_calls"),
        Some("MAX_TOKENS") => json!("length"),
        Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII") => {
            json!("content_filter")
        }
        Some(_) => json!("stop"),
    }
}

/// The text and tool calls of one response (or stream event), OpenAI-shaped.
fn pieces(body: &Value, first_call: usize) -> (String, Vec<Value>) {
    let parts = body
        .pointer("/candidates/0/content/parts")
        .and_then(Value::as_array);
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in parts.into_iter().flatten() {
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(f) = p.get("functionCall") {
            let index = first_call + calls.len();
            calls.push(json!({"index": index, "id": format!("call_{index}"), "type": "function", "function": {
                "name": f["name"], "arguments": f.get("args").map(Value::to_string).unwrap_or_else(|| "{}".into())
            }}));
        }
    }
    (text, calls)
}

/// A `GenerateContentResponse` as an OpenAI completion.
pub fn answer(body: Value) -> Result<(Value, Option<Usage>), String> {
    if body.get("candidates").is_none() {
        return Err("it has no candidates".to_owned());
    }
    let (text, calls) = pieces(&body, 0);
    let usage = body.get("usageMetadata").map(usage_of);
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    let reason = finish_reason(
        body.pointer("/candidates/0/finishReason")
            .and_then(Value::as_str),
        !calls.is_empty(),
    );
    if !calls.is_empty() {
        let calls: Vec<Value> = calls
            .into_iter()
            .map(|mut c| {
                if let Some(o) = c.as_object_mut() {
                    o.remove("index");
                }
                c
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    let mut out = json!({
        "id": body.get("responseId").cloned().unwrap_or(json!("gemini")),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": body.get("modelVersion").cloned().unwrap_or_default(),
        "choices": [{"index": 0, "message": message, "finish_reason": reason}],
    });
    if let Some(u) = usage {
        out["usage"] = u.to_openai();
    }
    Ok((out, usage))
}

/// Gemini's SSE events as OpenAI chunks.
#[derive(Default)]
pub struct StreamTranslator {
    lines: Lines,
    usage: Option<Usage>,
    output_bytes: usize,
    calls: usize,
    finished: bool,
    started: bool,
}

impl Translate for StreamTranslator {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = String::new();
        for event in self.lines.feed_sse_json(chunk) {
            if let Some(u) = event.get("usageMetadata") {
                self.usage = Some(usage_of(u));
            }
            let (text, calls) = pieces(&event, self.calls);
            self.calls += calls.len();
            self.output_bytes +=
                text.len() + calls.iter().map(|c| c.to_string().len()).sum::<usize>();
            let reason = event
                .pointer("/candidates/0/finishReason")
                .and_then(Value::as_str);
            let mut delta = json!({});
            if !self.started {
                delta["role"] = json!("assistant");
                self.started = true;
            }
            if !text.is_empty() {
                delta["content"] = json!(text);
            }
            if !calls.is_empty() {
                delta["tool_calls"] = Value::Array(calls);
            }
            let id = event.get("responseId").cloned().unwrap_or(json!("gemini"));
            let model = event.get("modelVersion").cloned().unwrap_or_default();
            let c = json!({"id": id, "object": "chat.completion.chunk", "created": chrono::Utc::now().timestamp(), "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason(reason, self.calls > 0)}]});
            out.push_str(&format!("data: {c}\n\n"));
            if reason.is_some() {
                self.finished = true;
            }
        }
        out.into_bytes()
    }
    fn finish(&mut self) -> Vec<u8> {
        if !self.finished {
            return Vec::new();
        }
        let usage = self.usage.unwrap_or_default().to_openai();
        let c = json!({"id": "gemini", "object": "chat.completion.chunk", "created": chrono::Utc::now().timestamp(), "choices": [], "usage": usage});
        format!("data: {c}\n\ndata: [DONE]\n\n").into_bytes()
    }
    fn usage(&self) -> Option<Usage> {
        self.usage.filter(|_| self.finished)
    }
    fn output_bytes(&self) -> usize {
        self.output_bytes
    }
    fn complete(&self) -> bool {
        self.finished
    }
}
