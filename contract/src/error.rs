//! The JSON shape of every error response of both binaries:
//!
//! ```text
//! {"error": {"code": "not_found", "message": "…", "field": "name", "request_id": "…"}}
//! ```
//!
//! `code` is stable and machine-readable; `message` is for people; `field` names the input
//! at fault of a validation error (absent otherwise); `request_id` is on every log line of
//! the request. Which codes exist, and the status each maps to, is each binary's own policy.

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

#[cfg(test)]
mod tests {
    use super::*;

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
