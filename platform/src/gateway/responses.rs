//! OpenAI's Responses format (`POST /v1/responses`), for a provider configured with the
//! kind `openai-responses` (models or endpoints that serve only it), translated from and to
//! the Chat Completions shapes tenants use: system turns become `instructions`, the others
//! `input` items (a tool call is a `function_call` item, its answer a
//! `function_call_output`), function tools flattened, the output cap `max_output_tokens`;
//! nothing is stored at the provider (`store: false`). A stream's semantic events
//! (`response.output_text.delta`, `response.function_call_arguments.delta`, …) become
//! chunks, and `response.completed` (or `response.incomplete`) carries the usage.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::error::GatewayError;
use super::messages::text_of;
use super::stream::{Lines, Translate};
use super::usage::Usage;
use crate::config::ProviderConfig;

/// Fields that mean the same in both formats, passed as they are.
const SAME: [&str; 5] = [
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "metadata",
    "user",
];

/// A user turn's content: a string as it is; parts as input parts.
fn user_content(content: &Value) -> Value {
    match content {
        Value::Array(parts) => Value::Array(
            parts
                .iter()
                .filter_map(|p| match p["type"].as_str() {
                    Some("text") => Some(json!({"type": "input_text", "text": p["text"]})),
                    Some("image_url") => Some(
                        json!({"type": "input_image", "image_url": p.pointer("/image_url/url")}),
                    ),
                    _ => None,
                })
                .collect(),
        ),
        other => json!(text_of(other)),
    }
}

/// OpenAI's chat body as a Responses body.
pub fn to_responses(body: &Value, model: &str, stream: bool) -> Result<Value, GatewayError> {
    let mut instructions = Vec::new();
    let mut input = Vec::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        match m["role"].as_str().unwrap_or("user") {
            "system" | "developer" => instructions.push(text_of(&m["content"])),
            "user" => input.push(json!({"role": "user", "content": user_content(&m["content"])})),
            "assistant" => {
                let text = text_of(&m["content"]);
                if !text.is_empty() {
                    input.push(json!({"role": "assistant", "content": text}));
                }
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    input.push(json!({"type": "function_call", "call_id": c["id"],
                        "name": c["function"]["name"], "arguments": c["function"]["arguments"]}));
                }
            }
            "tool" => input.push(json!({"type": "function_call_output",
                "call_id": m["tool_call_id"], "output": text_of(&m["content"])})),
            other => {
                return Err(GatewayError::invalid(
                    "messages",
                    format!(
                        "a message's role must be system, user, assistant or tool, not {other:?}"
                    ),
                ));
            }
        }
    }
    let mut out = json!({"model": model, "input": input, "stream": stream, "store": false});
    if !instructions.is_empty() {
        out["instructions"] = json!(instructions.join("\n\n"));
    }
    for key in SAME {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            out[key] = v.clone();
        }
    }
    if let Some(cap) = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .filter(|v| !v.is_null())
    {
        out["max_output_tokens"] = cap.clone();
    }
    if let Some(tools) = body["tools"].as_array() {
        out["tools"] = Value::Array(
            tools
                .iter()
                .map(|t| {
                    let f = &t["function"];
                    let mut tool = json!({"type": "function", "name": f["name"], "parameters": f["parameters"]});
                    for key in ["description", "strict"] {
                        if let Some(v) = f.get(key) {
                            tool[key] = v.clone();
                        }
                    }
                    tool
                })
                .collect(),
        );
    }
    match &body["tool_choice"] {
        Value::Null => {}
        Value::Object(_) => {
            out["tool_choice"] =
                json!({"type": "function", "name": body.pointer("/tool_choice/function/name")});
        }
        choice => out["tool_choice"] = choice.clone(),
    }
    match body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
    {
        Some("json_object") => out["text"] = json!({"format": {"type": "json_object"}}),
        Some("json_schema") => {
            let s = &body["response_format"]["json_schema"];
            out["text"] = json!({"format": {"type": "json_schema", "name": s["name"],
                "schema": s["schema"], "strict": s.get("strict").cloned().unwrap_or(json!(false))}});
        }
        _ => {}
    }
    if let Some(effort) = body.get("reasoning_effort").filter(|v| v.is_string()) {
        out["reasoning"] = json!({"effort": effort});
    }
    Ok(out)
}

pub fn chat_request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
    stream: bool,
) -> Result<reqwest::RequestBuilder, GatewayError> {
    let request = client.post(provider.endpoint("responses"));
    let request = match &provider.api_key {
        Some(key) => request.bearer_auth(key.expose_secret()),
        None => request,
    };
    Ok(request.json(&to_responses(body, model, stream)?))
}

fn usage_of(u: &Value) -> Option<Usage> {
    let obj = u.as_object()?;
    if !obj.contains_key("input_tokens") && !obj.contains_key("output_tokens") {
        return None;
    }
    let int = |v: Option<&Value>| v.and_then(Value::as_i64).unwrap_or(0).max(0);
    Some(Usage {
        input: int(obj.get("input_tokens")),
        output: int(obj.get("output_tokens")),
        cached: int(u.pointer("/input_tokens_details/cached_tokens")),
        reasoning: int(u.pointer("/output_tokens_details/reasoning_tokens")),
        cost_nanos: None,
    })
}

fn finish_reason(response: &Value, tools: bool) -> &'static str {
    if tools {
        "tool_calls"
    } else if response["status"] == "incomplete"
        && response.pointer("/incomplete_details/reason") == Some(&json!("max_output_tokens"))
    {
        "length"
    } else {
        "stop"
    }
}

/// A whole Responses answer in OpenAI's chat shape.
pub fn answer(body: Value) -> Result<(Value, Option<Usage>), String> {
    let output = body["output"]
        .as_array()
        .ok_or("its answer has no output")?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in output {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"].as_array().into_iter().flatten() {
                    if part["type"] == "output_text" {
                        text.push_str(part["text"].as_str().unwrap_or_default());
                    }
                }
            }
            Some("function_call") => calls.push(json!({"id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]}})),
            _ => {}
        }
    }
    let usage = body.get("usage").and_then(usage_of);
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    let finish = finish_reason(&body, !calls.is_empty());
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let mut out = json!({"id": body["id"], "object": "chat.completion",
        "created": body["created_at"].as_i64().unwrap_or_else(|| chrono::Utc::now().timestamp()),
        "model": body["model"], "choices": [{"index": 0, "message": message, "finish_reason": finish}]});
    if let Some(u) = usage {
        out["usage"] = u.to_openai();
    }
    Ok((out, usage))
}

/// The Responses stream's events as OpenAI's chunks.
#[derive(Default)]
pub struct StreamTranslator {
    lines: Lines,
    id: String,
    model: String,
    /// Output item index → tool call index.
    tools: Vec<(u64, usize)>,
    usage: Option<Usage>,
    output_bytes: usize,
    done: bool,
}

impl StreamTranslator {
    fn chunk(&self, delta: Value, finish: Value) -> String {
        let c = json!({"id": self.id, "object": "chat.completion.chunk",
            "created": chrono::Utc::now().timestamp(), "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    }

    fn event(&mut self, e: &Value) -> String {
        match e["type"].as_str() {
            Some("response.created") => {
                self.id = e
                    .pointer("/response/id")
                    .and_then(Value::as_str)
                    .unwrap_or("resp")
                    .to_owned();
                self.model = e
                    .pointer("/response/model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                self.chunk(json!({"role": "assistant", "content": ""}), Value::Null)
            }
            Some("response.output_text.delta") => {
                let text = e["delta"].as_str().unwrap_or_default();
                self.output_bytes += text.len();
                self.chunk(json!({"content": text}), Value::Null)
            }
            Some("response.output_item.added") if e["item"]["type"] == "function_call" => {
                let index = self.tools.len();
                self.tools
                    .push((e["output_index"].as_u64().unwrap_or(0), index));
                let item = &e["item"];
                self.chunk(json!({"tool_calls": [{"index": index, "id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": ""}}]}), Value::Null)
            }
            Some("response.function_call_arguments.delta") => {
                let part = e["delta"].as_str().unwrap_or_default();
                self.output_bytes += part.len();
                let item = e["output_index"].as_u64().unwrap_or(0);
                let index = self
                    .tools
                    .iter()
                    .find(|(o, _)| *o == item)
                    .map_or(0, |(_, i)| *i);
                self.chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": part}}]}),
                    Value::Null,
                )
            }
            Some("response.completed" | "response.incomplete") => {
                self.done = true;
                let response = &e["response"];
                self.usage = response.get("usage").and_then(usage_of);
                let mut out = self.chunk(
                    json!({}),
                    json!(finish_reason(response, !self.tools.is_empty())),
                );
                let c = json!({"id": self.id, "object": "chat.completion.chunk",
                    "created": chrono::Utc::now().timestamp(), "model": self.model, "choices": [],
                    "usage": self.usage.unwrap_or_default().to_openai()});
                out.push_str(&format!("data: {c}\n\ndata: [DONE]\n\n"));
                out
            }
            // `response.failed` and `error` end the stream unfinished: the client gets the
            // error event of a cut stream.
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
    fn a_conversation_with_a_tool_turn_becomes_instructions_and_items() {
        let body = json!({"model": "fast", "max_tokens": 30, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_7", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_7", "content": "18 °C"}
        ], "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]});
        let r = to_responses(&body, "gpt-test", false).expect("translated");
        assert_eq!(r["instructions"], "Be brief.");
        assert_eq!(r["max_output_tokens"], 30);
        assert_eq!(r["store"], false);
        assert_eq!(r["input"][1]["type"], "function_call");
        assert_eq!(r["input"][1]["call_id"], "call_7");
        assert_eq!(r["input"][2]["type"], "function_call_output");
        assert_eq!(r["tools"][0]["name"], "get_weather");
    }
}
