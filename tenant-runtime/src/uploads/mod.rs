//! Staged uploads: large files of any type, kept on the workspace volume under `uploads/` in
//! the data directory and fetched back whole. A body is streamed chunk by chunk to a hidden
//! partial file while it is counted and hashed (SHA-256); only once it is complete and
//! synced is it renamed to `uploads/<id>`, and only then is its row (name, type, size, hash)
//! written. Staged files count towards the storage quota like everything else on disk; the
//! room a body takes is reserved in the quota before its bytes are written (`quota`), so
//! uploads side by side never pass it together.
//!
//! This module must never hold a body in memory whole, and an upload that is refused, fails
//! or is abandoned (the client gone, the request dropped) must leave nothing behind: its
//! partial file is removed however the request ends, and what a crash leaves between the
//! file and its row is swept at start.

pub mod http;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{Bytes, BytesMut};
use anyhow::Context;
use chrono::Utc;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::error::ApiError;
use crate::quota::{PARTIAL_SUFFIX, Quota, Reservation, human};
use crate::schema::staged_uploads;
use crate::store::Store;

/// The largest staged upload unless `WEBSPLAT_RUNTIME_MAX_STAGED_UPLOAD` says otherwise.
pub const DEFAULT_MAX_STAGED_UPLOAD_BYTES: u64 = 1 << 30;
pub const MAX_NAME_CHARS: usize = 255;
const MAX_CONTENT_TYPE_CHARS: usize = 255;
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
const DIR: &str = "uploads";
/// How far ahead of what has arrived a stream without a declared length reserves room, so
/// it measures the disk once per this many bytes, not once per chunk.
const RESERVE_AHEAD_BYTES: u64 = 8 << 20;
/// The size of the chunks a download is read in.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A staged upload as the API shows it.
#[derive(Debug, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = staged_uploads, check_for_backend(diesel::sqlite::Sqlite))]
pub struct StagedUpload {
    pub id: String,
    pub name: Option<String>,
    pub content_type: String,
    pub bytes: i64,
    pub sha256: String,
    pub created_at: String,
}

/// A staged upload's id: a UUID, or "not found" (never a 400 that hints at the format).
#[derive(Debug, Clone, Copy)]
pub struct UploadId(Uuid);

impl UploadId {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        Uuid::parse_str(raw)
            .map(UploadId)
            .map_err(|_| ApiError::NotFound(format!("there is no upload {raw:?}")))
    }

    fn not_found(self) -> ApiError {
        ApiError::NotFound(format!("there is no upload {}", self.0))
    }
}

/// A display name for a staged upload: 1 to [`MAX_NAME_CHARS`] characters, no path
/// separators or control characters, not `.` or `..` — safe to offer as a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadName(String);

impl UploadName {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let count = raw.chars().count();
        let clean = !raw.chars().any(|c| c.is_control() || c == '/' || c == '\\');
        if count == 0 || count > MAX_NAME_CHARS || !clean || raw == "." || raw == ".." {
            return Err(ApiError::validation(
                "name",
                format!(
                    "a name is 1 to {MAX_NAME_CHARS} characters without '/', '\\' or control characters, and not \".\" or \"..\""
                ),
            ));
        }
        Ok(UploadName(raw.to_owned()))
    }
}

/// What an upload's request says about its body before it is read.
#[derive(Debug)]
pub struct Incoming {
    name: Option<UploadName>,
    content_type: String,
    declared_bytes: Option<u64>,
}

impl Incoming {
    /// From the `?name=` query and the request's headers: its `Content-Type`, kept as sent
    /// (`application/octet-stream` without one), and its `Content-Length`, if any.
    pub fn parse(name: Option<&str>, headers: &HeaderMap) -> Result<Self, ApiError> {
        let name = name.map(UploadName::parse).transpose()?;
        let content_type = match headers.get(header::CONTENT_TYPE) {
            None => DEFAULT_CONTENT_TYPE.to_owned(),
            Some(value) => {
                let text = value
                    .to_str()
                    .ok()
                    .map(str::trim)
                    .filter(|t| t.len() <= MAX_CONTENT_TYPE_CHARS)
                    .ok_or_else(|| {
                        ApiError::validation(
                            "content_type",
                            format!(
                                "the Content-Type must be ASCII text of at most {MAX_CONTENT_TYPE_CHARS} characters"
                            ),
                        )
                    })?;
                if text.is_empty() {
                    DEFAULT_CONTENT_TYPE.to_owned()
                } else {
                    text.to_owned()
                }
            }
        };
        let declared_bytes = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Ok(Incoming {
            name,
            content_type,
            declared_bytes,
        })
    }
}

/// A file being written, removed when dropped unless kept: however the request ends — an
/// error, a refusal, a client that went away and took the request's future with it — no
/// partial file outlives it. (The removal is one quick syscall, fine on an async thread.)
struct Partial {
    path: PathBuf,
    kept: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The staged uploads' directory and the largest upload it takes.
#[derive(Debug, Clone)]
pub struct Staging {
    dir: PathBuf,
    max_bytes: u64,
}

impl Staging {
    /// Opens `uploads/` under the data directory and sweeps what a crash left there: partial
    /// files, files whose row was never written, rows whose file is gone. Run it before
    /// serving, while no upload is under way.
    pub async fn open(data_dir: &Path, max_bytes: u64, store: &Store) -> anyhow::Result<Self> {
        let staging = Staging {
            dir: data_dir.join(DIR),
            max_bytes,
        };
        std::fs::create_dir_all(&staging.dir)
            .with_context(|| format!("cannot create {}", staging.dir.display()))?;
        let sweeping = staging.clone();
        let swept = store
            .run(move |c| sweeping.sweep(c))
            .await
            .map_err(|e| anyhow::anyhow!("cannot sweep {}: {e:?}", staging.dir.display()))?;
        if swept > 0 {
            tracing::info!(swept, "removed what interrupted uploads left behind");
        }
        Ok(staging)
    }

    fn file(&self, id: UploadId) -> PathBuf {
        self.dir.join(id.0.to_string())
    }

    fn partial(&self, id: UploadId) -> PathBuf {
        self.dir.join(format!(".{}{PARTIAL_SUFFIX}", id.0))
    }

    /// Removes every file in the directory that is not a stored upload's, and every row
    /// whose file is missing; how many of both. Blocking.
    fn sweep(&self, conn: &mut SqliteConnection) -> Result<usize, ApiError> {
        let ids: HashSet<String> = staged_uploads::table
            .select(staged_uploads::id)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let mut present = HashSet::new();
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)
            .map_err(ApiError::internal)?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && ids.contains(&name) {
                present.insert(name);
            } else if is_file && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        let orphans: Vec<&String> = ids.difference(&present).collect();
        if !orphans.is_empty() {
            removed +=
                diesel::delete(staged_uploads::table.filter(staged_uploads::id.eq_any(orphans)))
                    .execute(conn)?;
        }
        Ok(removed)
    }

    /// Refuses an upload that has reached `bytes` when it passes the largest upload.
    fn admit(&self, bytes: u64) -> Result<(), ApiError> {
        if bytes > self.max_bytes {
            return Err(ApiError::TooLarge(format!(
                "an upload may be at most {}",
                human(self.max_bytes)
            )));
        }
        Ok(())
    }

    /// Streams `body` to disk and stores it as a staged upload. Its declared length is
    /// checked and reserved in the quota before anything is read; without one, room is
    /// reserved as the bytes arrive, always before they are written. A refused or broken
    /// upload leaves no file, and gives its room back.
    pub async fn receive<S>(
        &self,
        store: &Store,
        quota: &Quota,
        incoming: Incoming,
        mut body: S,
    ) -> Result<StagedUpload, ApiError>
    where
        S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    {
        let declared = incoming.declared_bytes.unwrap_or(0);
        self.admit(declared)?;
        let mut reservation = quota.reserve_async(declared).await?;
        let id = UploadId(Uuid::new_v4());
        let mut partial = Partial {
            path: self.partial(id),
            kept: false,
        };
        let mut file = tokio::fs::File::create(&partial.path)
            .await
            .map_err(ApiError::internal)?;
        let mut hasher = Sha256::new();
        let mut received: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::BadRequest(format!("the upload was cut short: {e}")))?;
            received += chunk.len() as u64;
            self.admit(received)?;
            if received > reservation.bytes() {
                reservation = grow(quota, reservation, received).await?;
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        file.flush().await.map_err(ApiError::internal)?;
        file.sync_all().await.map_err(ApiError::internal)?;
        drop(file);

        let target = self.file(id);
        tokio::fs::rename(&partial.path, &target)
            .await
            .map_err(ApiError::internal)?;
        partial.path = target;
        let dir = self.dir.clone();
        // The rename itself must survive a crash before the row says the file is there.
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        let upload = StagedUpload {
            id: id.0.to_string(),
            name: incoming.name.map(|n| n.0),
            content_type: incoming.content_type,
            bytes: i64::try_from(received).map_err(ApiError::internal)?,
            sha256: hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            created_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        let upload = store
            .run(move |c| {
                diesel::insert_into(staged_uploads::table)
                    .values(&upload)
                    .execute(c)?;
                Ok(upload)
            })
            .await?;
        partial.kept = true;
        // On disk under its own name now, the upload counts there: its room is given back.
        drop(reservation);
        Ok(upload)
    }

    /// A staged upload with its open file and the file's length, ready to stream back.
    pub async fn open_file(
        &self,
        store: &Store,
        id: UploadId,
    ) -> Result<(StagedUpload, tokio::fs::File, u64), ApiError> {
        let upload = store.run(move |c| get(c, id)).await?;
        let file = match tokio::fs::File::open(self.file(id)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(id.not_found()),
            Err(e) => return Err(ApiError::internal(e)),
        };
        let len = file.metadata().await.map_err(ApiError::internal)?.len();
        Ok((upload, file, len))
    }

    /// Deletes a staged upload: its row, then its file (a file left by a crash in between is
    /// swept at start). A download already under way still reads the whole file.
    pub async fn delete(&self, store: &Store, id: UploadId) -> Result<(), ApiError> {
        store
            .run(move |c| {
                let key = id.0.to_string();
                match diesel::delete(staged_uploads::table.find(key)).execute(c)? {
                    0 => Err(id.not_found()),
                    _ => Ok(()),
                }
            })
            .await?;
        if let Err(e) = tokio::fs::remove_file(self.file(id)).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, upload = %id.0, "a deleted upload's file stays until the next start");
        }
        Ok(())
    }
}

/// Grows an upload's reservation to `need` bytes (and some way ahead), off the async
/// threads; refused when the quota has no room for `need`.
async fn grow(
    quota: &Quota,
    mut reservation: Reservation,
    need: u64,
) -> Result<Reservation, ApiError> {
    let quota = quota.clone();
    tokio::task::spawn_blocking(move || {
        quota
            .grow(&mut reservation, need, RESERVE_AHEAD_BYTES)
            .map(|()| reservation)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Reads `file` in chunks, for a streamed response.
pub fn chunks(file: tokio::fs::File) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        let n = file.read_buf(&mut buf).await?;
        Ok((n > 0).then(|| (buf.freeze(), file)))
    })
}

/// Every staged upload, newest first.
pub fn list(conn: &mut SqliteConnection) -> Result<Vec<StagedUpload>, ApiError> {
    use diesel::dsl::sql;
    use diesel::sql_types::BigInt;
    Ok(staged_uploads::table
        // Ties within a millisecond fall back to the order they were stored in.
        .order((
            staged_uploads::created_at.desc(),
            sql::<BigInt>("rowid").desc(),
        ))
        .select(StagedUpload::as_select())
        .load(conn)?)
}

fn get(conn: &mut SqliteConnection, id: UploadId) -> Result<StagedUpload, ApiError> {
    staged_uploads::table
        .find(id.0.to_string())
        .select(StagedUpload::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| id.not_found())
}

/// `Content-Disposition: attachment`, with the upload's name when it has one (an ASCII
/// fallback and the exact name as UTF-8, RFC 6266).
pub fn disposition(name: Option<&str>) -> header::ContentDisposition {
    use header::{Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue};
    let parameters = match name {
        None => Vec::new(),
        Some(name) if name.is_ascii() => vec![DispositionParam::Filename(name.to_owned())],
        Some(name) => vec![
            DispositionParam::Filename(
                name.chars()
                    .map(|c| if c.is_ascii() { c } else { '_' })
                    .collect(),
            ),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".to_owned()),
                language_tag: None,
                value: name.as_bytes().to_vec(),
            }),
        ],
    };
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_a_plain_file_name() {
        for good in [
            "report.pdf",
            "a",
            "état 2026 (final).tar.gz",
            "...",
            ".hidden",
        ] {
            assert!(UploadName::parse(good).is_ok(), "{good:?}");
        }
        assert!(UploadName::parse(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        for bad in [
            String::new(),
            ".".to_owned(),
            "..".to_owned(),
            "a/b".to_owned(),
            "a\\b".to_owned(),
            "line\nbreak".to_owned(),
            "nul\0".to_owned(),
            "x".repeat(MAX_NAME_CHARS + 1),
        ] {
            assert!(UploadName::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_content_type_is_kept_as_sent_or_defaults() {
        let mut headers = HeaderMap::new();
        let incoming = Incoming::parse(None, &headers).expect("valid");
        assert_eq!(incoming.content_type, DEFAULT_CONTENT_TYPE);
        assert_eq!(incoming.declared_bytes, None);
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("video/mp4; codecs=\"avc1\""),
        );
        headers.insert(
            header::CONTENT_LENGTH,
            header::HeaderValue::from_static("1234"),
        );
        let incoming = Incoming::parse(Some("clip.mp4"), &headers).expect("valid");
        assert_eq!(incoming.content_type, "video/mp4; codecs=\"avc1\"");
        assert_eq!(incoming.declared_bytes, Some(1234));
        assert_eq!(incoming.name, Some(UploadName("clip.mp4".to_owned())));
    }

    #[test]
    fn a_name_is_offered_as_the_download_file_name() {
        assert_eq!(disposition(None).to_string(), "attachment");
        assert_eq!(
            disposition(Some("say \"hi\".txt")).to_string(),
            "attachment; filename=\"say \\\"hi\\\".txt\""
        );
        assert_eq!(
            disposition(Some("café.txt")).to_string(),
            "attachment; filename=\"caf_.txt\"; filename*=UTF-8''caf%C3%A9.txt"
        );
    }
}
