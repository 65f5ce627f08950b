//! Tokens a call used, read from what providers report, and the estimates the budget
//! reserves before a call (and bills when a stream is cut before its usage arrived).
//! Estimates err on the high side: a reservation must cover the call.

use serde_json::Value;

/// What one call used. Budgets count `input + output` tokens; the price table turns the
/// parts into a cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: i64,
    pub output: i64,
    /// Input tokens served from the provider's cache (part of `input`).
    pub cached: i64,
    /// Reasoning tokens (part of `output`).
    pub reasoning: i64,
    /// The provider's own price for the call, in billionths of a dollar (OpenRouter).
    pub cost_nanos: Option<i64>,
}

impl Usage {
    pub fn tokens(&self) -> i64 {
        self.input.saturating_add(self.output)
    }

    /// An OpenAI-shaped `usage` object (chat completions or embeddings).
    pub fn from_openai(usage: &Value) -> Option<Usage> {
        let obj = usage.as_object()?;
        let int = |v: Option<&Value>| v.and_then(Value::as_i64).unwrap_or(0).max(0);
        let input = int(obj.get("prompt_tokens"));
        let output = int(obj.get("completion_tokens"));
        if !obj.contains_key("prompt_tokens") && !obj.contains_key("completion_tokens") {
            return None;
        }
        Some(Usage {
            input,
            output,
            cached: int(usage.pointer("/prompt_tokens_details/cached_tokens")),
            reasoning: int(usage.pointer("/completion_tokens_details/reasoning_tokens")),
            // OpenRouter's `cost` (a number), Perplexity's `cost.total_cost`.
            cost_nanos: obj
                .get("cost")
                .and_then(|c| {
                    c.as_f64()
                        .or_else(|| c.get("total_cost").and_then(Value::as_f64))
                })
                .filter(|c| c.is_finite() && *c >= 0.0)
                .map(|c| (c * 1e9).round() as i64),
        })
    }

    /// The same exchange as OpenAI reports it.
    pub fn to_openai(self) -> Value {
        let mut v = serde_json::json!({
            "prompt_tokens": self.input,
            "completion_tokens": self.output,
            "total_tokens": self.tokens(),
        });
        if self.cached > 0 {
            v["prompt_tokens_details"] = serde_json::json!({"cached_tokens": self.cached});
        }
        if self.reasoning > 0 {
            v["completion_tokens_details"] =
                serde_json::json!({"reasoning_tokens": self.reasoning});
        }
        v
    }
}

/// Tokens of some text, estimated high (about three bytes a token, plus one).
pub fn estimate_tokens(text_bytes: usize) -> i64 {
    (text_bytes as i64 + 2) / 3 + 1
}

/// The input tokens of a chat request: every message, tool and schema counted by size.
pub fn estimate_chat_input(body: &Value) -> i64 {
    let size = |key: &str| body.get(key).map(|v| v.to_string().len()).unwrap_or(0);
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    estimate_tokens(size("messages") + size("tools") + size("response_format"))
        + 4 * messages as i64
}

/// The input tokens of an embeddings request.
pub fn estimate_embeddings_input(body: &Value) -> i64 {
    estimate_tokens(body.get("input").map(|v| v.to_string().len()).unwrap_or(0))
}
