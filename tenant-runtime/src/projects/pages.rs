//! Pages: the text files of a project (HTML, CSS, JavaScript, Markdown). Reading one gives
//! its ETag; changing or deleting an existing page needs `If-Match` with that ETag, so an
//! edit based on a stale copy gets 409 with the current content instead of silently
//! overwriting someone else's work (another tab, an agent).

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde_json::json;

use super::{FilePath, etag_of, manifest, put_blob, row, settings_of};
use crate::error::ApiError;
use crate::schema::{blobs, version_files};

/// The largest page accepted.
pub const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

pub struct Page {
    pub content: Vec<u8>,
    pub etag: String,
    pub content_type: &'static str,
}

fn head_blob(
    conn: &mut SqliteConnection,
    id: &str,
    head: i64,
    path: &FilePath,
) -> Result<Option<String>, ApiError> {
    Ok(version_files::table
        .find((id, head, path.as_str()))
        .select(version_files::blob)
        .first(conn)
        .optional()?)
}

pub fn get(conn: &mut SqliteConnection, id: &str, path: &FilePath) -> Result<Page, ApiError> {
    let project = row(conn, id)?;
    let hash = head_blob(conn, id, project.head_version, path)?.ok_or_else(|| {
        ApiError::NotFound(format!("the project has no page {:?}", path.as_str()))
    })?;
    let content = blobs::table
        .find(&hash)
        .select(blobs::content)
        .first(conn)?;
    Ok(Page {
        content,
        etag: etag_of(&hash),
        content_type: path.content_type(),
    })
}

/// Refuses an edit of an existing page unless `if_match` names its current content.
fn check_precondition(
    conn: &mut SqliteConnection,
    path: &FilePath,
    current: Option<&str>,
    if_match: Option<&str>,
) -> Result<(), ApiError> {
    match (current, if_match) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(ApiError::Stale {
            message: format!(
                "the page {:?} no longer exists; it was deleted after you loaded it",
                path.as_str()
            ),
            current_etag: None,
            current: json!({"path": path.as_str(), "exists": false}),
        }),
        (Some(_), None) => Err(ApiError::PreconditionRequired(format!(
            "the page {:?} exists: send If-Match with the ETag you read it with, so no one's work is overwritten",
            path.as_str()
        ))),
        (Some(hash), Some(tag)) if tag == "*" || tag == etag_of(hash) => Ok(()),
        (Some(hash), Some(_)) => {
            let content: Vec<u8> = blobs::table.find(hash).select(blobs::content).first(conn)?;
            Err(ApiError::Stale {
                message: format!(
                    "the page {:?} changed since you loaded it; here is the current version — merge your change into it and try again",
                    path.as_str()
                ),
                current_etag: Some(etag_of(hash)),
                current: json!({
                    "path": path.as_str(),
                    "etag": etag_of(hash),
                    "content": String::from_utf8_lossy(&content),
                }),
            })
        }
    }
}

/// What a page write did.
pub struct Written {
    pub etag: String,
    pub created: bool,
    /// The project's head version after the write.
    pub version: i64,
}

/// Creates or replaces a page as a new version (none when the content is unchanged).
pub fn put(
    conn: &mut SqliteConnection,
    id: &str,
    path: &FilePath,
    content: &str,
    if_match: Option<&str>,
) -> Result<Written, ApiError> {
    if path.page_type().is_none() {
        return Err(ApiError::validation(
            "path",
            "a page must end in .html, .htm, .css, .js or .md",
        ));
    }
    if content.len() > MAX_PAGE_BYTES {
        return Err(ApiError::TooLarge(format!(
            "a page may be at most {MAX_PAGE_BYTES} bytes"
        )));
    }
    write(conn, id, path, content.as_bytes(), if_match)
}

/// The largest asset accepted.
pub const MAX_ASSET_BYTES: usize = 10 * 1024 * 1024;

/// Creates or replaces an image or font, checked to be what its name says.
pub fn put_asset(
    conn: &mut SqliteConnection,
    id: &str,
    path: &FilePath,
    content: &[u8],
    if_match: Option<&str>,
) -> Result<Written, ApiError> {
    if path.asset_type().is_none() {
        return Err(ApiError::validation(
            "path",
            "an asset must be an image (.png, .jpg, .gif, .webp, .svg, .ico) or a font (.woff, .woff2, .ttf, .otf)",
        ));
    }
    if content.len() > MAX_ASSET_BYTES {
        return Err(ApiError::TooLarge(format!(
            "an asset may be at most {MAX_ASSET_BYTES} bytes"
        )));
    }
    if !path.matches_asset(content) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the content is not a {} file, as {:?} says",
            path.content_type(),
            path.as_str()
        )));
    }
    write(conn, id, path, content, if_match)
}

fn write(
    conn: &mut SqliteConnection,
    id: &str,
    path: &FilePath,
    content: &[u8],
    if_match: Option<&str>,
) -> Result<Written, ApiError> {
    conn.transaction(|conn| {
        let project = row(conn, id)?;
        let current = head_blob(conn, id, project.head_version, path)?;
        check_precondition(conn, path, current.as_deref(), if_match)?;
        let hash = put_blob(conn, content)?;
        if current.as_deref() == Some(hash.as_str()) {
            return Ok(Written {
                etag: etag_of(&hash),
                created: false,
                version: project.head_version,
            });
        }
        let mut files = manifest(conn, id, project.head_version)?;
        files.retain(|(p, _)| p != path.as_str());
        files.push((path.as_str().to_owned(), hash.clone()));
        let settings = settings_of(conn, id, project.head_version)?;
        let verb = if current.is_some() { "edited" } else { "added" };
        let version = super::commit(
            conn,
            &project,
            &format!("{verb} {}", path.as_str()),
            &settings,
            &files,
        )?;
        Ok(Written {
            etag: etag_of(&hash),
            created: current.is_none(),
            version,
        })
    })
}

pub fn delete(
    conn: &mut SqliteConnection,
    id: &str,
    path: &FilePath,
    if_match: Option<&str>,
) -> Result<(), ApiError> {
    conn.transaction(|conn| {
        let project = row(conn, id)?;
        let current = head_blob(conn, id, project.head_version, path)?.ok_or_else(|| {
            ApiError::NotFound(format!("the project has no page {:?}", path.as_str()))
        })?;
        check_precondition(conn, path, Some(&current), if_match)?;
        let mut files = manifest(conn, id, project.head_version)?;
        files.retain(|(p, _)| p != path.as_str());
        let settings = settings_of(conn, id, project.head_version)?;
        super::commit(
            conn,
            &project,
            &format!("deleted {}", path.as_str()),
            &settings,
            &files,
        )?;
        Ok(())
    })
}
