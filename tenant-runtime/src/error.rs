//! The runtime's API error, with the platform's policy and the shared shape (`websplat_contract::ErrorBody`): a client mistake is a 4xx
//! whose message says what to change; an internal fault is logged in full and answered with
//! an opaque 500. Body: `{"error":{"code":…,"message":…,"field"?:…,"request_id":…}}`, plus,
//! for an edit based on a stale version, `current` (what the edit would have overwritten).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, ETAG};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};
use websplat_contract::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    /// A request the platform did not vouch for (see `trust`).
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    NotFound(String),
    /// An edit based on a version that is no longer current.
    #[error("{message}")]
    Stale {
        message: String,
        current_etag: Option<String>,
        current: Value,
    },
    #[error("{0}")]
    Conflict(String),
    /// Something that existed and was removed on purpose (an expired export).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PreconditionRequired(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A mistake in one input, said beside that field as a sentence (a capital letter, a
    /// full stop), whoever wrote the message.
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field,
            message: websplat_contract::sentence(&message.into()),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::NotFound(_) => "not_found",
            ApiError::Stale { .. } => "stale_version",
            ApiError::Conflict(_) => "conflict",
            ApiError::Gone(_) => "gone",
            ApiError::PreconditionRequired(_) => "precondition_required",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        ApiError::Internal(err.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Stale { .. } | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = crate::telemetry::current_request_id();
        match self {
            ApiError::Internal(err) => tracing::error!(%request_id, error = ?err, "internal error"),
            other => {
                tracing::info!(%request_id, code = other.code(), message = %other, "request refused")
            }
        }
        let field = match self {
            ApiError::Validation { field, .. } => Some(*field),
            _ => None,
        };
        let shape = ErrorBody::new(self.code(), self.to_string(), request_id).with_field(field);
        let mut body = serde_json::to_value(shape).unwrap_or_else(|_| json!({}));
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CACHE_CONTROL, "no-store"));
        if let ApiError::Stale {
            current_etag,
            current,
            ..
        } = self
        {
            body["current"] = current.clone();
            if let Some(etag) = current_etag {
                response.insert_header((ETAG, etag.clone()));
            }
        }
        response.json(body)
    }
}

/// The largest JSON body an endpoint reads.
const JSON_LIMIT_KIB: usize = 256;

pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(JSON_LIMIT_KIB * 1024)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError;
            match err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => ApiError::TooLarge(format!(
                    "the request body is larger than {JSON_LIMIT_KIB} KiB"
                )),
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
                    "send the body as JSON, with Content-Type: application/json".to_owned(),
                ),
                other => ApiError::BadRequest(format!(
                    "the request body is not valid JSON for this endpoint: {other}"
                )),
            }
            .into()
        })
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadRequest(format!("invalid query string: {err}")).into()
    })
}

pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default()
        .error_handler(|err, _req| ApiError::NotFound(format!("no such resource: {err}")).into())
}
