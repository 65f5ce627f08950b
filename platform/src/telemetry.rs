//! Logs and request identity. Every request gets a request id (the caller's `X-Request-Id`
//! when it is sane, otherwise a new one), a `request` span that every log line of the request
//! sits in, the id echoed in the response header and in every error body, and a line in the
//! Prometheus metrics. Logs are pretty in a terminal and JSON when asked
//! (`WEBSPLAT_LOG_FORMAT=json`). Nothing logged here may contain a header value other than
//! the request id: cookies and tokens travel in headers.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::app::AppState;
use crate::config::{LogConfig, LogFormat};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, or `"-"` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// Installs the global subscriber. A second call (e.g. from tests) keeps the first.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer()).try_init(),
    };
    if result.is_err() {
        tracing::debug!("a tracing subscriber was already installed");
    }
}

fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(&REQUEST_ID_HEADER)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    sane.then(|| value.to_owned())
}

/// The outermost middleware: request id, span, access log and metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let request_id =
        incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        status = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let started = Instant::now();

    let result = REQUEST_ID
        .scope(request_id.clone(), next.call(req).instrument(span.clone()))
        .await;

    let elapsed = started.elapsed();
    let status = match &result {
        Ok(res) => res.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    span.record("status", status.as_u16());
    span.in_scope(|| {
        tracing::info!(
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            status = status.as_u16(),
            "served"
        );
    });
    if let Some(metrics) = metrics {
        metrics.observe_request(&method, &route, status.as_u16(), elapsed);
    }

    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(res)
}
