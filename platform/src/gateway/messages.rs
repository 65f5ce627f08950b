//! What the translating adapters (Anthropic, Gemini) share in reading OpenAI's messages: the
//! text of a message's content, and adding a turn so that consecutive turns of one role
//! merge (both providers want roles to alternate). Nothing provider-specific lives here.

use serde_json::{Value, json};

/// The text of an OpenAI message's content: the string, or its text parts joined by lines.
pub(super) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Adds `items` as a turn of `role` (its list under `key`: `content` or `parts`), appended
/// to the last turn when that one has the same role; nothing when `items` is empty.
pub(super) fn push_turn(turns: &mut Vec<Value>, role: &str, key: &str, mut items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut()
        && last["role"] == role
        && let Some(existing) = last[key].as_array_mut()
    {
        existing.append(&mut items);
        return;
    }
    turns.push(json!({"role": role, key: items}));
}
