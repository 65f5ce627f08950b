//! The server's own middleware. [`observe`] is the outermost: every request gets a request
//! id (the caller's `X-Request-Id` when it is sane, otherwise a new one), a `request` span
//! that every log line of the request sits in, the id echoed in the response header and in
//! every error body, and a line in the Prometheus metrics. [`refuse_cross_origin`] answers
//! 403 to a state-changing request from another origin before any handler runs. Nothing
//! logged here may contain a header value other than the request id: cookies and tokens
//! travel in headers.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use tracing::Instrument;

use super::app::AppState;
use crate::{auth, telemetry};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

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

    let result =
        telemetry::with_request_id(request_id.clone(), next.call(req).instrument(span.clone()))
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

/// Refuses a state-changing request whose `Origin` (or `Referer`) is another site's.
pub async fn refuse_cross_origin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let own_origin = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.config.public_url.origin());
    if let Some(own_origin) = own_origin
        && let Err(e) = auth::csrf::refuse_cross_origin(req.method(), req.headers(), &own_origin)
    {
        // Rendered inside the request's scope: the body names its id.
        return Ok(req.into_response(e.error_response()).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}
