//! Cross-site request forgery defence for cookie-authenticated requests. A state-changing
//! request (anything but GET, HEAD, OPTIONS) passes when its `Origin` (or, failing that,
//! `Referer`) is the platform's own origin; a request with neither must carry the session's
//! CSRF token in `X-CSRF-Token`. Requests authenticated by a bearer token are not at risk
//! (browsers never attach one by themselves) and are not checked.

use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, ORIGIN, REFERER};

use super::secret::constant_time_eq;
use crate::error::ApiError;

pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What the browser says about where the request came from.
enum Claimed {
    SameOrigin,
    CrossOrigin,
    Unknown,
}

fn claimed_origin(headers: &HeaderMap, own_origin: &str) -> Claimed {
    let origin = headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|v| *v != "null")
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(|r| url::Url::parse(r).ok())
                .map(|u| u.origin().ascii_serialization())
        });
    match origin {
        Some(o) if o == own_origin => Claimed::SameOrigin,
        Some(_) => Claimed::CrossOrigin,
        None => Claimed::Unknown,
    }
}

/// Refuses a state-changing request that a browser says came from another site. Applied to
/// every request, signed in or not (this also stops login CSRF).
pub fn refuse_cross_origin(
    method: &Method,
    headers: &HeaderMap,
    own_origin: &str,
) -> Result<(), ApiError> {
    if is_state_changing(method)
        && matches!(claimed_origin(headers, own_origin), Claimed::CrossOrigin)
    {
        return Err(ApiError::Forbidden(
            "cross-site request refused: this request did not come from the platform's own pages"
                .to_owned(),
        ));
    }
    Ok(())
}

/// For a request authenticated by the session cookie: a state-changing request that does
/// not name its origin must prove it with the session's CSRF token.
pub fn verify_for_session(
    method: &Method,
    headers: &HeaderMap,
    own_origin: &str,
    session: &super::session::Session,
) -> Result<(), ApiError> {
    if !is_state_changing(method) {
        return Ok(());
    }
    match claimed_origin(headers, own_origin) {
        Claimed::SameOrigin => Ok(()),
        Claimed::CrossOrigin => refuse_cross_origin(method, headers, own_origin),
        Claimed::Unknown => {
            let sent = headers
                .get(CSRF_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if constant_time_eq(sent, session.record.csrf_token.as_bytes()) {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "missing or wrong CSRF token: send the X-CSRF-Token header from GET /api/v1/me"
                        .to_owned(),
                ))
            }
        }
    }
}
