//! The one error type of the HTTP API, and its policy:
//!
//! - A client mistake is a 4xx whose message says what to change.
//! - An internal fault is logged in full (with the request id) and answered with an opaque
//!   500 that carries only the request id.
//! - A dependency (PostgreSQL, Redis, an identity provider) that does not answer is a 503.
//!
//! Every error body has one shape, shared with the tenant runtime (`websplat_contract::ErrorBody`):
//! `{"error":{"code":…,"message":…,"field"?:…,"request_id":…}}`.
//! Nothing here may put a secret, a password or a stack trace in a response.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::telemetry::current_request_id;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    InvalidCredentials(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many attempts; retry in {} seconds", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// Too many of something at once for one caller (open streams…): said in words.
    #[error("{0}")]
    TooMany(String, Duration),
    /// Beyond a capacity limit (running workspaces, spawns at once): said in words.
    #[error("{0}")]
    AtCapacity(String, Duration),
    /// The pool that would start it is draining (operators stopped new starts there).
    #[error("{0}")]
    Draining(String),
    #[error("{0} is unavailable; try again shortly")]
    Unavailable(&'static str),
    #[error("sign-in with the identity provider failed: {0}")]
    Provider(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The JSON body of every error response: the shape both binaries share.
pub use websplat_contract::{ErrorBody, ErrorDetail};

impl ApiError {
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// A mistake in one input, said as a sentence shown beside that field: it starts
    /// with a capital letter and ends with a full stop, whoever wrote the message.
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field,
            message: websplat_contract::sentence(&message.into()),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InvalidCredentials(_) => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited(_) | ApiError::TooMany(..) => "rate_limited",
            ApiError::AtCapacity(..) => "at_capacity",
            ApiError::Draining(_) => "pool_draining",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Provider(_) => "provider_error",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Validation { .. } | ApiError::Provider(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized(_) | ApiError::InvalidCredentials(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited(_) | ApiError::TooMany(..) | ApiError::AtCapacity(..) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(_) | ApiError::Draining(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = current_request_id();
        match self {
            ApiError::Internal(err) => {
                tracing::error!(request_id = %request_id, error = ?err, "internal error");
            }
            ApiError::Unavailable(what) => {
                tracing::warn!(request_id = %request_id, dependency = what, "dependency unavailable");
            }
            other => {
                tracing::info!(request_id = %request_id, code = other.code(), message = %other, "request refused")
            }
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::RateLimited(retry_after)
        | ApiError::TooMany(_, retry_after)
        | ApiError::AtCapacity(_, retry_after) = self
        {
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                response.insert_header((header::RETRY_AFTER, value));
            }
        }
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        let field = match self {
            ApiError::Validation { field, .. } => Some(*field),
            _ => None,
        };
        response.json(ErrorBody::new(self.code(), self.to_string(), request_id).with_field(field))
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        ApiError::Internal(err.into())
    }
}

impl From<crate::db::PoolError> for ApiError {
    fn from(err: crate::db::PoolError) -> Self {
        tracing::warn!(error = %err, "no PostgreSQL connection");
        ApiError::Unavailable("PostgreSQL")
    }
}

impl From<crate::kv::KvError> for ApiError {
    fn from(err: crate::kv::KvError) -> Self {
        tracing::warn!(error = %err, "Redis failed");
        ApiError::Unavailable("Redis")
    }
}

/// Turns actix's own extractor failures (malformed JSON, bad path or query) into our shape.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError;
            match err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => {
                    ApiError::TooLarge("the request body is larger than 64 KiB".to_owned())
                }
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
