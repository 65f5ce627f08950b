//! The gateway's one error type, answered in the project's one JSON error shape
//! (`websplat_contract::ErrorBody`). Its policy: a tenant's mistake is a 4xx that says what
//! to change; an exhausted budget is a 429 with a sentence the workspace shows as it is;
//! a provider that fails is a 502 (503 when none could be tried) naming the provider but
//! never its key, its URL's credentials or its raw error body; an internal fault is logged
//! in full and answered with an opaque 500.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use websplat_contract::ErrorBody;

use crate::telemetry::current_request_id;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The call is not signed as a live tenant's user (the reason is logged, not told).
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    ModelNotFound(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    OverBudget {
        message: String,
        retry_after: Duration,
    },
    /// The provider refused the request itself (a 4xx of its own), in its words, trimmed.
    #[error("{provider} refused the request: {message}")]
    ProviderRefused {
        provider: String,
        status: u16,
        message: String,
    },
    /// Every provider that could serve the call failed.
    #[error("{0}")]
    Upstream(String),
    #[error("{0} is unavailable; try again shortly")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl GatewayError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        GatewayError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Unauthorized(_) => "unauthorized",
            GatewayError::Invalid { .. } => "validation_failed",
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::ModelNotFound(_) => "model_not_found",
            GatewayError::NotFound(_) => "not_found",
            GatewayError::TooLarge(_) => "too_large",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::OverBudget { .. } => "budget_exceeded",
            GatewayError::ProviderRefused { .. } => "provider_refused",
            GatewayError::Upstream(_) => "provider_error",
            GatewayError::Unavailable(_) => "unavailable",
            GatewayError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        match self {
            GatewayError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            GatewayError::Invalid { .. } | GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::ModelNotFound(_) | GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::OverBudget { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::ProviderRefused { status, .. } => match *status {
                413 => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            },
            GatewayError::Upstream(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = current_request_id();
        match self {
            GatewayError::Internal(err) => {
                tracing::error!(request_id = %request_id, error = ?err, "internal error");
            }
            other => {
                tracing::info!(request_id = %request_id, code = other.code(), message = %other, "gateway call refused")
            }
        }
        let mut response = HttpResponse::build(self.status_code());
        if let GatewayError::OverBudget { retry_after, .. } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
        {
            response.insert_header((header::RETRY_AFTER, value));
        }
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        let field = match self {
            GatewayError::Invalid { field, .. } => Some(*field),
            _ => None,
        };
        response.json(ErrorBody::new(self.code(), self.to_string(), request_id).with_field(field))
    }
}

impl From<crate::db::PoolError> for GatewayError {
    fn from(err: crate::db::PoolError) -> Self {
        tracing::warn!(error = %err, "no PostgreSQL connection");
        GatewayError::Unavailable("PostgreSQL")
    }
}

impl From<crate::kv::KvError> for GatewayError {
    fn from(err: crate::kv::KvError) -> Self {
        tracing::warn!(error = %err, "Redis failed");
        GatewayError::Unavailable("Redis")
    }
}

impl From<diesel::result::Error> for GatewayError {
    fn from(err: diesel::result::Error) -> Self {
        GatewayError::Internal(err.into())
    }
}
