//! The JSON shape of every error response of both binaries:
//!
//! ```text
//! {"error": {"code": "not_found", "message": "…", "field": "name", "request_id": "…"}}
//! ```
//!
//! `code` is stable and machine-readable; `message` is for people; `field` names the input
//! at fault of a validation error (absent otherwise); `request_id` is on every log line of
//! the request. Which codes exist, and the status each maps to, is each binary's own policy.
//! A validation error's `message` is shown beside its field: both binaries make it a
//! [`sentence`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code, e.g. `invalid_credentials`.
    #[schema(value_type = String)]
    pub code: Cow<'static, str>,
    /// What went wrong, for people.
    pub message: String,
    /// The field at fault, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub field: Option<Cow<'static, str>>,
    /// Quote this when reporting a problem; it is on every log line of the request.
    pub request_id: String,
}

impl ErrorBody {
    /// An error with its code, message and the request's id.
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        request_id: impl Into<String>,
    ) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                field: None,
                request_id: request_id.into(),
            },
        }
    }

    /// The same error, naming the input at fault.
    pub fn with_field(mut self, field: Option<impl Into<Cow<'static, str>>>) -> Self {
        self.error.field = field.map(Into::into);
        self
    }
}

/// `text` as a sentence: a capital first letter, and a closing full stop unless it ends
/// in `.`, `!` or `?`.
pub fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_becomes_a_sentence() {
        assert_eq!(
            sentence("use at least 12 characters"),
            "Use at least 12 characters."
        );
        assert_eq!(sentence("Already one."), "Already one.");
        assert_eq!(sentence("  is it? "), "Is it?");
        assert_eq!(sentence("émigré names work"), "Émigré names work.");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn an_error_serializes_to_the_documented_shape() {
        let body = ErrorBody::new("not_found", "no such project", "r-1");
        assert_eq!(
            serde_json::to_value(&body).ok(),
            Some(
                serde_json::json!({"error": {"code": "not_found", "message": "no such project", "request_id": "r-1"}})
            )
        );
        let body = body.with_field(Some("name"));
        assert_eq!(
            serde_json::to_value(&body)
                .ok()
                .map(|v| v["error"]["field"].clone()),
            Some(serde_json::json!("name"))
        );
    }

    #[test]
    fn an_error_reads_back_from_its_json() {
        let text = r#"{"error":{"code":"too_large","message":"m","request_id":"r"}}"#;
        let body: Result<ErrorBody, _> = serde_json::from_str(text);
        assert_eq!(body.ok(), Some(ErrorBody::new("too_large", "m", "r")));
    }
}
