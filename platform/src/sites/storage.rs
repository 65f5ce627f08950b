//! Where published sites' files live: one folder per build under the sites directory
//! (`{dir}/builds/{build}/…`), written whole under a hidden name and renamed into place, and
//! never changed afterwards (a new publish is a new build). This module unpacks a site's zip
//! into a build — refusing paths that climb out, odd names and anything past the size
//! allowed — finds the file a request path names, and removes builds. It must never read or
//! write outside its directory.

use std::io::Read;
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// The most files one site may have.
pub const MAX_FILES: usize = 10_000;

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
}

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
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

impl Storage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Storage { root: root.into() }
    }

    fn builds(&self) -> PathBuf {
        self.root.join("builds")
    }

    fn build_dir(&self, build: Uuid) -> PathBuf {
        self.builds().join(build.simple().to_string())
    }

    /// Unpacks a zip of a site into a new build, whole or not at all, refusing it past
    /// `max_bytes` (uncompressed) or [`MAX_FILES`]. Blocking: run it off the async threads.
    pub fn unpack(&self, zip: &[u8], max_bytes: u64) -> Result<Build, UnpackError> {
        let id = Uuid::new_v4();
        std::fs::create_dir_all(self.builds())?;
        let partial = self.builds().join(format!(".{}.partial", id.simple()));
        let result = write_all(&partial, zip, max_bytes);
        match result {
            Ok((bytes, files)) => {
                std::fs::rename(&partial, self.build_dir(id))?;
                Ok(Build { id, bytes, files })
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                Err(e)
            }
        }
    }

    /// The file of `build` a request path names: the path itself, or its `index.html` when
    /// it names a folder, or `{path}.html` for an address without an extension. `None`
    /// when there is no such file (or the path is not one a site can have).
    pub fn resolve(&self, build: Uuid, request_path: &str) -> Option<(String, PathBuf)> {
        let decoded = percent_decode(request_path.trim_start_matches('/'))?;
        let dir = self.build_dir(build);
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
            .map(|c| {
                let file = dir.join(&c);
                (c, file)
            })
            .find(|(_, file)| file.is_file())
    }

    /// Removes a build (a retired or unpublished one). Blocking.
    pub fn remove(&self, build: Uuid) {
        let dir = self.build_dir(build);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, %build, "cannot remove a site build");
        }
    }

    /// Whether a build's files are on disk.
    pub fn exists(&self, build: Uuid) -> bool {
        self.build_dir(build).is_dir()
    }
}

fn write_all(dir: &Path, zip: &[u8], max_bytes: u64) -> Result<(u64, usize), UnpackError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| UnpackError::Archive(e.to_string()))?;
    if archive.len() > MAX_FILES {
        return Err(UnpackError::TooManyFiles);
    }
    std::fs::create_dir_all(dir)?;
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
        let target = dir.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
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
        std::fs::write(&target, &content)?;
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, content) in files {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("start");
            writer.write_all(content).expect("write");
        }
        writer.finish().expect("finish").into_inner()
    }

    fn storage() -> (Storage, PathBuf) {
        let dir = std::env::temp_dir().join(format!("websplat-sites-{}", Uuid::new_v4().simple()));
        (Storage::new(&dir), dir)
    }

    #[test]
    fn a_site_unpacks_whole_and_its_addresses_resolve() {
        let (storage, dir) = storage();
        let build = storage
            .unpack(
                &zip_of(&[
                    ("index.html", b"<h1>Hi</h1>"),
                    ("about.html", b"about"),
                    ("blog/index.html", b"blog"),
                    ("css/site.css", b"body{}"),
                ]),
                1_000,
            )
            .expect("unpacked");
        assert_eq!((build.files, build.bytes), (4, 11 + 5 + 4 + 6));
        let found = |p: &str| storage.resolve(build.id, p).map(|(path, _)| path);
        assert_eq!(found("/").as_deref(), Some("index.html"));
        assert_eq!(found("/about").as_deref(), Some("about.html"));
        assert_eq!(found("/blog/").as_deref(), Some("blog/index.html"));
        assert_eq!(found("/blog").as_deref(), Some("blog/index.html"));
        assert_eq!(found("/css/site%2Ecss").as_deref(), Some("css/site.css"));
        for missing in [
            "/nope.html",
            "/../index.html",
            "/.hidden",
            "/%2e%2e/x",
            "/css/",
        ] {
            assert_eq!(found(missing), None, "{missing}");
        }
        storage.remove(build.id);
        assert!(!storage.exists(build.id));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn an_archive_past_its_size_or_with_a_climbing_name_leaves_nothing() {
        let (storage, dir) = storage();
        let big = vec![b'x'; 600];
        assert!(matches!(
            storage.unpack(&zip_of(&[("a.html", &big), ("b.html", &big)]), 1_000),
            Err(UnpackError::TooLarge(1_000))
        ));
        assert!(matches!(
            storage.unpack(&zip_of(&[("../evil.html", b"x")]), 1_000),
            Err(UnpackError::BadName(_))
        ));
        let left: Vec<_> = std::fs::read_dir(dir.join("builds"))
            .expect("builds")
            .flatten()
            .collect();
        assert!(left.is_empty(), "nothing half-written stays: {left:?}");
        std::fs::remove_dir_all(dir).ok();
    }
}
