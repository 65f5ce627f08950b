//! Ollama's native API, translated from and to OpenAI's shapes: `POST /api/chat` (a whole
//! answer, or a stream of JSON lines — NDJSON, not SSE — ending with `"done": true`),
//! tools (OpenAI's function tools as they are; a call's arguments come back as an object,
//! sent on as a JSON string), and `POST /api/embed`. Usage is Ollama's
//! `prompt_eval_count` (input) and `eval_count` (output), reported on the last line of a
//! stream and on a whole answer alike. (Ollama's OpenAI-compatible `/v1` is the `ollama`
//! kind, passed through by [`super::openai`].)

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::error::GatewayError;
use super::messages::text_of;
use super::stream::{Lines, Translate};
use super::usage::Usage;
use crate::config::ProviderConfig;

/// OpenAI's sampling fields that Ollama takes under `options`, by their Ollama names.
const OPTIONS: [(&str, &str); 6] = [
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("seed", "seed"),
    ("stop", "stop"),
    ("frequency_penalty", "frequency_penalty"),
    ("presence_penalty", "presence_penalty"),
];

fn authorized(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    path: &str,
) -> reqwest::RequestBuilder {
    let request = client.post(provider.endpoint(path));
    match &provider.api_key {
        // A key, for an Ollama behind a proxy that asks for one.
        Some(key) => request.bearer_auth(key.expose_secret()),
        None => request,
    }
}

/// An OpenAI tool call's arguments (a JSON string) as the object Ollama wants.
fn arguments_object(raw: &Value) -> Value {
    match raw {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| json!({})),
        Value::Object(_) => raw.clone(),
        _ => json!({}),
    }
}

/// OpenAI's chat body as Ollama's `/api/chat` body.
pub fn to_chat(body: &Value, model: &str, stream: bool) -> Result<Value, GatewayError> {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    // A tool's answer names its call; Ollama wants the tool's name.
    let mut names: Vec<(String, String)> = Vec::new();
    let mut out = Vec::with_capacity(messages.len());
    for m in &messages {
        let role = m["role"].as_str().unwrap_or("user");
        let mut turn = json!({"role": role, "content": text_of(&m["content"])});
        match role {
            "system" | "developer" => turn["role"] = json!("system"),
            "user" => {
                let images: Vec<Value> = m["content"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.pointer("/image_url/url").and_then(Value::as_str))
                    .filter_map(|url| url.split_once(";base64,").map(|(_, b64)| json!(b64)))
                    .collect();
                if !images.is_empty() {
                    turn["images"] = Value::Array(images);
                }
            }
            "assistant" => {
                if let Some(calls) = m["tool_calls"].as_array() {
                    let calls: Vec<Value> = calls
                        .iter()
                        .map(|c| {
                            let name = c.pointer("/function/name").cloned().unwrap_or(json!(""));
                            if let (Some(id), Some(n)) = (c["id"].as_str(), name.as_str()) {
                                names.push((id.to_owned(), n.to_owned()));
                            }
                            json!({"function": {"name": name, "arguments": arguments_object(&c["function"]["arguments"])}})
                        })
                        .collect();
                    turn["tool_calls"] = Value::Array(calls);
                }
            }
            "tool" => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                if let Some((_, name)) = names.iter().find(|(i, _)| i == id) {
                    turn["tool_name"] = json!(name);
                }
            }
            other => {
                return Err(GatewayError::invalid(
                    "messages",
                    format!(
                        "a message's role must be system, user, assistant or tool, not {other:?}"
                    ),
                ));
            }
        }
        out.push(turn);
    }
    let mut options = Map::new();
    for (from, to) in OPTIONS {
        if let Some(v) = body.get(from).filter(|v| !v.is_null()) {
            options.insert(to.to_owned(), v.clone());
        }
    }
    if let Some(cap) = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .filter(|v| !v.is_null())
    {
        options.insert("num_predict".to_owned(), cap.clone());
    }
    let mut request =
        json!({"model": model, "messages": out, "stream": stream, "options": options});
    if let Some(tools) = body.get("tools").filter(|t| t.is_array()) {
        request["tools"] = tools.clone();
    }
    match body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
    {
        Some("json_object") => request["format"] = json!("json"),
        Some("json_schema") => {
            if let Some(schema) = body.pointer("/response_format/json_schema/schema") {
                request["format"] = schema.clone();
            }
        }
        _ => {}
    }
    Ok(request)
}

pub fn chat_request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
    stream: bool,
) -> Result<reqwest::RequestBuilder, GatewayError> {
    Ok(authorized(client, provider, "chat").json(&to_chat(body, model, stream)?))
}

pub fn embeddings_request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    authorized(client, provider, "embed").json(&json!({"model": model, "input": body["input"]}))
}

fn usage_of(v: &Value) -> Option<Usage> {
    let input = v.get("prompt_eval_count").and_then(Value::as_i64);
    let output = v.get("eval_count").and_then(Value::as_i64);
    if input.is_none() && output.is_none() {
        return None;
    }
    Some(Usage {
        input: input.unwrap_or(0).max(0),
        output: output.unwrap_or(0).max(0),
        ..Usage::default()
    })
}

/// Ollama's tool calls as OpenAI's, numbered from `first`.
fn tool_calls(message: &Value, first: usize) -> Vec<Value> {
    message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            let arguments = match &c["function"]["arguments"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            json!({"index": first + i, "id": format!("call_{}", first + i), "type": "function",
                   "function": {"name": c["function"]["name"], "arguments": arguments}})
        })
        .collect()
}

fn finish_reason(done_reason: Option<&str>, tools: bool) -> &'static str {
    match done_reason {
        _ if tools => "tool_calls",
        Some("length") => "length",
        _ => "stop",
    }
}

/// A whole `/api/chat` answer in OpenAI's shape.
pub fn answer(body: Value) -> Result<(Value, Option<Usage>), String> {
    if let Some(error) = body.get("error").and_then(Value::as_str) {
        return Err(format!(
            "it answered an error: {}",
            error.chars().take(200).collect::<String>()
        ));
    }
    let message = body.get("message").ok_or("its answer has no message")?;
    let calls = tool_calls(message, 0);
    let usage = usage_of(&body);
    let text = message["content"].as_str().unwrap_or_default();
    let mut reply = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        reply["tool_calls"] = Value::Array(
            calls
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.as_object_mut().map(|o| o.remove("index"));
                    c
                })
                .collect(),
        );
    }
    let mut out = json!({
        "id": format!("chatcmpl-ollama-{}", body["created_at"].as_str().unwrap_or_default()),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": body["model"],
        "choices": [{"index": 0, "message": reply,
                     "finish_reason": finish_reason(body["done_reason"].as_str(), !calls.is_empty())}],
    });
    if let Some(u) = usage {
        out["usage"] = u.to_openai();
    }
    Ok((out, usage))
}

/// A whole `/api/embed` answer in OpenAI's embeddings shape, with its usage.
pub fn embeddings_answer(body: Value) -> Result<(Value, Option<Usage>), String> {
    let vectors = body
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or("its answer has no embeddings")?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    let usage = body
        .get("prompt_eval_count")
        .and_then(Value::as_i64)
        .map(|n| Usage {
            input: n.max(0),
            ..Usage::default()
        });
    let mut out = json!({"object": "list", "data": data, "model": body["model"]});
    if let Some(u) = usage {
        out["usage"] = json!({"prompt_tokens": u.input, "total_tokens": u.input});
    }
    Ok((out, usage))
}

/// Ollama's stream (one JSON object a line) as OpenAI's chunks.
#[derive(Default)]
pub struct StreamTranslator {
    lines: Lines,
    started: bool,
    model: String,
    tools: usize,
    usage: Option<Usage>,
    output_bytes: usize,
    done: bool,
}

impl StreamTranslator {
    fn chunk(&self, delta: Value, finish: Value) -> String {
        let c = json!({"id": "chatcmpl-ollama", "object": "chat.completion.chunk",
            "created": chrono::Utc::now().timestamp(), "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    }

    fn line(&mut self, v: &Value) -> String {
        if v.get("error").is_some() {
            // The stream ends without `done`: the client gets the error event for a cut.
            return String::new();
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            self.model = v["model"].as_str().unwrap_or_default().to_owned();
            out.push_str(&self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
        }
        let message = &v["message"];
        if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
            self.output_bytes += text.len();
            out.push_str(&self.chunk(json!({"content": text}), Value::Null));
        }
        let calls = tool_calls(message, self.tools);
        if !calls.is_empty() {
            self.tools += calls.len();
            self.output_bytes += calls.iter().map(|c| c.to_string().len()).sum::<usize>();
            out.push_str(&self.chunk(json!({"tool_calls": calls}), Value::Null));
        }
        if v["done"] == json!(true) {
            self.done = true;
            self.usage = usage_of(v);
            let finish = finish_reason(v["done_reason"].as_str(), self.tools > 0);
            out.push_str(&self.chunk(json!({}), json!(finish)));
            let usage = self.usage.unwrap_or_default().to_openai();
            let c = json!({"id": "chatcmpl-ollama", "object": "chat.completion.chunk",
                "created": chrono::Utc::now().timestamp(), "model": self.model, "choices": [], "usage": usage});
            out.push_str(&format!("data: {c}\n\ndata: [DONE]\n\n"));
        }
        out
    }
}

impl Translate for StreamTranslator {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = String::new();
        for line in self.lines.feed(chunk) {
            if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
                out.push_str(&self.line(&v));
            }
        }
        out.into_bytes()
    }
    fn usage(&self) -> Option<Usage> {
        self.usage
    }
    fn output_bytes(&self) -> usize {
        self.output_bytes
    }
    fn complete(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_with_a_tool_turn_reads_as_ollama_wants_it() {
        let body = json!({"model": "fast", "max_tokens": 20, "temperature": 0.2, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_7", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_7", "content": "18 °C"}
        ]});
        let r = to_chat(&body, "llama3.2", true).expect("translated");
        assert_eq!(r["options"]["num_predict"], 20);
        assert_eq!(r["options"]["temperature"], 0.2);
        assert_eq!(r["stream"], true);
        assert_eq!(
            r["messages"][2]["tool_calls"][0]["function"]["arguments"]["city"],
            "Paris"
        );
        assert_eq!(r["messages"][3]["tool_name"], "get_weather");
    }

    #[test]
    fn a_stream_split_anywhere_yields_text_usage_and_end() {
        let stream = concat!(
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":false}\n",
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"lo\"},\"done\":false}\n",
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":7,\"eval_count\":2}\n"
        );
        for split in [1, 9, stream.len()] {
            let mut t = StreamTranslator::default();
            let mut out = Vec::new();
            for chunk in stream.as_bytes().chunks(split) {
                out.extend(t.feed(chunk));
            }
            let text = String::from_utf8(out).expect("utf-8");
            assert!(text.contains("\"content\":\"Hel\"") && text.ends_with("data: [DONE]\n\n"));
            assert!(t.complete());
            assert_eq!(t.usage().map(|u| (u.input, u.output)), Some((7, 2)));
        }
    }
}
