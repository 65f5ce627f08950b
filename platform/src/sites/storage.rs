//! Where published sites' files live: a folder on disk by default (`disk`), an
//! S3-compatible bucket when one is configured (`s3`). Either way a build is written whole
//! under its own id (`builds/{build}/…`) and never changed afterwards: a new publish is a
//! new build, and the `sites` row that points at a build is the one thing that switches.
//! This module unpacks a site's zip — refusing paths that climb out, odd names and anything
//! past the size allowed — finds the file a request path names, and removes builds. It must
//! never read or write outside its folder or its bucket's `builds/` prefix.

use std::io::Read;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use uuid::Uuid;

use super::disk::Disk;
use super::s3::{S3, S3Error};
use crate::config::SitesConfig;

/// The most files one site may have.
pub const MAX_FILES: usize = 10_000;
/// Requests to the bucket in flight at once for one publish or removal.
const S3_CONCURRENCY: usize = 8;

/// A build just written.
#[derive(Debug, Clone, Copy)]
pub struct Build {
    pub id: Uuid,
    pub bytes: u64,
    pub files: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("the site is larger than the {0} bytes allowed")]
    TooLarge(u64),
    #[error("the site has more than {MAX_FILES} files")]
    TooManyFiles,
    #[error("the site holds a file whose name is not allowed: {0:?}")]
    BadName(String),
    #[error("the site's archive cannot be read: {0}")]
    Archive(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] S3Error),
}

/// The sites' storage, as configured.
#[derive(Debug, Clone)]
pub enum Storage {
    Disk(Disk),
    S3(Arc<S3>),
}

impl Storage {
    pub fn new(config: &SitesConfig, metrics: &crate::metrics::Metrics) -> anyhow::Result<Self> {
        Ok(match &config.s3 {
            Some(s3) => Storage::S3(Arc::new(S3::new(s3.clone(), Some(metrics.registry()))?)),
            None => Storage::Disk(Disk::new(config.dir.clone())),
        })
    }

    /// Unpacks a zip of a site into a new build, whole or not at all, refusing it past
    /// `max_bytes` (uncompressed) or [`MAX_FILES`]. On S3 the files are read into memory
    /// (at most `max_bytes`) and uploaded under the build's prefix; if one upload fails,
    /// what was uploaded is removed.
    pub async fn unpack(&self, zip: Vec<u8>, max_bytes: u64) -> Result<Build, UnpackError> {
        match self {
            Storage::Disk(disk) => {
                let disk = disk.clone();
                tokio::task::spawn_blocking(move || disk.unpack(&zip, max_bytes))
                    .await
                    .map_err(std::io::Error::other)?
            }
            Storage::S3(s3) => {
                let read = tokio::task::spawn_blocking(move || {
                    let mut files = Vec::new();
                    let (bytes, count) = each_file(&zip, max_bytes, |path, content| {
                        files.push((path.to_owned(), content.to_vec()));
                        Ok(())
                    })?;
                    Ok::<_, UnpackError>((files, bytes, count))
                })
                .await
                .map_err(std::io::Error::other)??;
                let (files, bytes, count) = read;
                let id = Uuid::new_v4();
                let uploaded = futures_util::stream::iter(files)
                    .map(|(path, content)| {
                        let s3 = s3.clone();
                        async move {
                            let kind = websplat_contract::files::content_type(&path);
                            s3.put(&key(id, &path), content, kind).await
                        }
                    })
                    .buffer_unordered(S3_CONCURRENCY)
                    .try_collect::<Vec<()>>()
                    .await;
                if let Err(e) = uploaded {
                    self.remove(id).await;
                    return Err(e.into());
                }
                Ok(Build {
                    id,
                    bytes,
                    files: count,
                })
            }
        }
    }

    /// The file of `build` a request path names, with its content: the path itself, or
    /// its `index.html` when it names a folder, or `{path}.html` for an address without an
    /// extension. `None` when there is no such file (or the path is not one a site can have).
    pub async fn read(
        &self,
        build: Uuid,
        request_path: &str,
    ) -> Result<Option<(String, Vec<u8>)>, UnpackError> {
        match self {
            Storage::Disk(disk) => {
                let (disk, path) = (disk.clone(), request_path.to_owned());
                tokio::task::spawn_blocking(move || {
                    disk.resolve(build, &path)
                        .map(|(file, on_disk)| std::fs::read(on_disk).map(|bytes| (file, bytes)))
                        .transpose()
                })
                .await
                .map_err(std::io::Error::other)?
                .map_err(UnpackError::Io)
            }
            Storage::S3(s3) => {
                for file in candidates(request_path) {
                    if let Some(bytes) = s3.get(&key(build, &file)).await? {
                        return Ok(Some((file, bytes)));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The name of the file of `build` a request path names, without reading it.
    pub async fn resolve(&self, build: Uuid, request_path: &str) -> Option<String> {
        match self {
            Storage::Disk(disk) => {
                let (disk, path) = (disk.clone(), request_path.to_owned());
                tokio::task::spawn_blocking(move || disk.resolve(build, &path).map(|(f, _)| f))
                    .await
                    .ok()
                    .flatten()
            }
            Storage::S3(s3) => {
                for file in candidates(request_path) {
                    match s3.exists(&key(build, &file)).await {
                        Ok(true) => return Some(file),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot look a site's file up");
                            return None;
                        }
                    }
                }
                None
            }
        }
    }

    /// Removes a build (a retired or unpublished one); failures are logged.
    pub async fn remove(&self, build: Uuid) {
        match self {
            Storage::Disk(disk) => {
                let disk = disk.clone();
                let _ = tokio::task::spawn_blocking(move || disk.remove(build)).await;
            }
            Storage::S3(s3) => {
                let prefix = format!("builds/{}/", build.simple());
                let removed = match s3.list(&prefix).await {
                    Ok(keys) => futures_util::stream::iter(keys)
                        .map(|key| {
                            let s3 = s3.clone();
                            async move { s3.delete(&key).await }
                        })
                        .buffer_unordered(S3_CONCURRENCY)
                        .try_collect::<Vec<()>>()
                        .await
                        .map(drop),
                    Err(e) => Err(e),
                };
                if let Err(e) = removed {
                    tracing::warn!(error = %e, %build, "cannot remove a site build from the bucket");
                }
            }
        }
    }
}

/// A build's file's key in the bucket.
fn key(build: Uuid, file: &str) -> String {
    format!("builds/{}/{file}", build.simple())
}

/// A path inside a site (`index.html`, `css/site.css`): the same rules as a project's
/// files — relative, letters, digits, `-`, `_`, `.`, no hidden names, at most 8 deep.
pub fn clean_path(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > 200 || raw.starts_with('/') || raw.ends_with('/') {
        return None;
    }
    let mut depth = 0;
    for segment in raw.split('/') {
        depth += 1;
        let ok = !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok || depth > 8 {
            return None;
        }
    }
    Some(raw.to_owned())
}

/// The files a request path may name, in order: the path itself, or its `index.html` when
/// it names a folder, or `{path}.html` and `{path}/index.html` for an address without an
/// extension — only those a site can have.
pub fn candidates(request_path: &str) -> Vec<String> {
    let Some(decoded) = percent_decode(request_path.trim_start_matches('/')) else {
        return Vec::new();
    };
    let mut candidates = Vec::new();
    if decoded.is_empty() || decoded.ends_with('/') {
        candidates.push(format!("{decoded}index.html"));
    } else {
        candidates.push(decoded.clone());
        if !decoded.rsplit('/').next().unwrap_or_default().contains('.') {
            candidates.push(format!("{decoded}.html"));
            candidates.push(format!("{decoded}/index.html"));
        }
    }
    candidates
        .into_iter()
        .filter_map(|c| clean_path(&c))
        .collect()
}

/// Reads every file of a site's zip, checked, into `sink` (its clean path and content):
/// at most [`MAX_FILES`] and `max_bytes` uncompressed, whatever the archive declares.
/// Returns the bytes and files read.
pub fn each_file(
    zip: &[u8],
    max_bytes: u64,
    mut sink: impl FnMut(&str, &[u8]) -> std::io::Result<()>,
) -> Result<(u64, usize), UnpackError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| UnpackError::Archive(e.to_string()))?;
    if archive.len() > MAX_FILES {
        return Err(UnpackError::TooManyFiles);
    }
    let (mut bytes, mut files) = (0u64, 0usize);
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| UnpackError::Archive(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map_err(|e| UnpackError::Archive(e.to_string()))?
            .into_owned();
        let path = clean_path(&name).ok_or(UnpackError::BadName(name))?;
        // Never trust the declared size: read at most what is still allowed, plus one.
        let allowed = max_bytes.saturating_sub(bytes);
        let mut content = Vec::new();
        (&mut entry)
            .take(allowed.saturating_add(1))
            .read_to_end(&mut content)?;
        let len = content.len() as u64;
        if len > allowed {
            return Err(UnpackError::TooLarge(max_bytes));
        }
        sink(&path, &content)?;
        bytes += len;
        files += 1;
    }
    Ok((bytes, files))
}

/// `%XX` escapes decoded; `None` if they do not make UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A zip of `files`, for tests.
#[cfg(test)]
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("start");
        writer.write_all(content).expect("write");
    }
    writer.finish().expect("finish").into_inner()
}
