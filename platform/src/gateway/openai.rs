//! The OpenAI-compatible wire format (OpenAI, OpenRouter, Perplexity, Ollama's `/v1`, the
//! local model and any endpoint by base URL): requests pass through with every field the
//! tenant sent (tools, response formats, sampling…), only `model` replaced by the provider's
//! own name and, for streams, `stream_options.include_usage` turned on so usage is metered.

use actix_web::web::Bytes;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::stream::{Lines, Translate};
use super::usage::Usage;
use crate::config::ProviderConfig;

fn authorized(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    path: &str,
) -> reqwest::RequestBuilder {
    let request = client.post(provider.endpoint(path));
    match &provider.api_key {
        Some(key) => request.bearer_auth(key.expose_secret()),
        None => request,
    }
}

pub fn chat_request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
    stream: bool,
) -> reqwest::RequestBuilder {
    let mut body = body.clone();
    body["model"] = Value::String(model.to_owned());
    if stream {
        match body
            .get_mut("stream_options")
            .and_then(Value::as_object_mut)
        {
            Some(options) => {
                options.insert("include_usage".to_owned(), Value::Bool(true));
            }
            None => body["stream_options"] = json!({"include_usage": true}),
        }
    }
    authorized(client, provider, "chat/completions").json(&body)
}

pub fn embeddings_request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut body = body.clone();
    body["model"] = Value::String(model.to_owned());
    authorized(client, provider, "embeddings").json(&body)
}

/// A complete answer: kept as the provider sent it, with its usage read.
pub fn answer(body: Value) -> Result<(Value, Option<Usage>), String> {
    if !body.is_object() {
        return Err("its answer is not a JSON object".to_owned());
    }
    let usage = body.get("usage").and_then(Usage::from_openai);
    Ok((body, usage))
}

/// The stream as it comes, read on the way for usage, text and its end (`[DONE]`).
#[derive(Default)]
pub struct PassThrough {
    lines: Lines,
    usage: Option<Usage>,
    output_bytes: usize,
    done: bool,
    finished: bool,
}

impl PassThrough {
    fn read(&mut self, line: &str) {
        let Some(data) = line.strip_prefix("data:") else {
            return;
        };
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(usage) = event.get("usage").and_then(Usage::from_openai) {
            self.usage = Some(usage);
        }
        if let Some(choices) = event.get("choices").and_then(Value::as_array) {
            for choice in choices {
                if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                    self.finished = true;
                }
                let Some(delta) = choice.get("delta") else {
                    continue;
                };
                for key in ["content", "reasoning_content", "reasoning"] {
                    if let Some(text) = delta.get(key).and_then(Value::as_str) {
                        self.output_bytes += text.len();
                    }
                }
                if let Some(calls) = delta.get("tool_calls") {
                    self.output_bytes += calls.to_string().len();
                }
            }
        }
    }
}

impl Translate for PassThrough {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.relay(Bytes::copy_from_slice(chunk)).to_vec()
    }
    fn relay(&mut self, chunk: Bytes) -> Bytes {
        for line in self.lines.feed(&chunk) {
            self.read(&line);
        }
        chunk
    }
    fn usage(&self) -> Option<Usage> {
        self.usage
    }
    fn output_bytes(&self) -> usize {
        self.output_bytes
    }
    fn complete(&self) -> bool {
        self.done || (self.finished && self.usage.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_split_anywhere_yields_its_usage_text_and_end() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
            "data: [DONE]\n\n"
        );
        for split in [1, 7, 50, stream.len()] {
            let mut t = PassThrough::default();
            let mut out = Vec::new();
            for chunk in stream.as_bytes().chunks(split) {
                out.extend(t.feed(chunk));
            }
            assert_eq!(out, stream.as_bytes(), "passed through unchanged");
            assert_eq!(t.output_bytes(), 11);
            assert!(t.complete());
            let usage = t.usage().expect("usage");
            assert_eq!((usage.input, usage.output), (9, 2));
        }
    }
}
