//! What handlers read from a request besides JSON: resource ids from paths, the `If-Match`
//! header, raw text and binary bodies with a size limit, and the common `?page=&per_page=`
//! window. Every refusal is an [`ApiError`] whose message says what to change. This module
//! must never import capability modules: they import it.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::error::ApiError;

/// A resource id from a path: a UUID, or "not found" (never a 400 that hints at the format).
pub fn parse_id(raw: &str, what: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::NotFound(format!("there is no {what} {raw:?}")))
}

/// A project's id from a path.
pub fn project_id(raw: &str) -> Result<String, ApiError> {
    parse_id(raw, "project")
}

/// The `If-Match` header, trimmed, when sent.
pub fn if_match(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    req.headers()
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str().map(|s| s.trim().to_owned()).map_err(|_| {
                ApiError::BadRequest("the If-Match header is not readable text".to_owned())
            })
        })
        .transpose()
}

/// Whether a `Content-Type` is one a page may be sent as.
fn textual(content_type: &str) -> bool {
    let content_type = content_type.to_ascii_lowercase();
    content_type.starts_with("text/")
        || content_type.starts_with("application/javascript")
        || content_type.starts_with("application/octet-stream")
}

/// Reads a text body of at most `limit` bytes, refusing non-UTF-8 and non-text types.
pub async fn text_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<String, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !textual(content_type) {
        return Err(ApiError::UnsupportedMediaType(
            "send the page as text (Content-Type text/html, text/css, text/javascript or text/markdown)".to_owned(),
        ));
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "a page may be at most {limit} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::BadRequest("the page is not valid UTF-8 text".to_owned()))
}

/// Reads a binary body of at most `limit` bytes.
pub async fn binary_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "an asset may be at most {limit} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// `?page=&per_page=` of a list (page 1 of 20 when not given).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

impl ListQuery {
    /// `(page, per_page)`, defaults filled in; the capability checks the ranges.
    pub fn window(&self) -> (i64, i64) {
        (self.page.unwrap_or(1), self.per_page.unwrap_or(20))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_and_anything_else_is_not_found() {
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(parse_id(&id.to_uppercase(), "job").ok(), Some(id));
        assert!(matches!(
            project_id("../x"),
            Err(ApiError::NotFound(m)) if m == "there is no project \"../x\""
        ));
    }

    #[test]
    fn pages_are_sent_as_text() {
        for ok in [
            "text/html",
            "Text/CSS; charset=utf-8",
            "application/javascript",
            "application/octet-stream",
        ] {
            assert!(textual(ok), "{ok}");
        }
        for refused in ["", "application/json", "image/png"] {
            assert!(!textual(refused), "{refused}");
        }
    }
}
