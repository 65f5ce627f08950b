//! Published sites' files on disk: one folder per build under the sites directory
//! (`{dir}/builds/{build}/…`), written whole under a hidden name and renamed into place, and
//! never changed afterwards (a new publish is a new build). Blocking: the caller runs these
//! off the async threads. It must never read or write outside its directory.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::storage::{Build, UnpackError, candidates, each_file};

#[derive(Debug, Clone)]
pub struct Disk {
    root: PathBuf,
}

impl Disk {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Disk { root: root.into() }
    }

    fn builds(&self) -> PathBuf {
        self.root.join("builds")
    }

    fn build_dir(&self, build: Uuid) -> PathBuf {
        self.builds().join(build.simple().to_string())
    }

    /// Unpacks a zip of a site into a new build, whole or not at all.
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

    /// The file of `build` a request path names (see [`candidates`]) and where it is.
    pub fn resolve(&self, build: Uuid, request_path: &str) -> Option<(String, PathBuf)> {
        let dir = self.build_dir(build);
        candidates(request_path)
            .into_iter()
            .map(|c| {
                let file = dir.join(&c);
                (c, file)
            })
            .find(|(_, file)| file.is_file())
    }

    /// Removes a build (a retired or unpublished one).
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
    std::fs::create_dir_all(dir)?;
    each_file(zip, max_bytes, |path, content| {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::storage::zip_of;

    fn storage() -> (Disk, PathBuf) {
        let dir = std::env::temp_dir().join(format!("websplat-sites-{}", Uuid::new_v4().simple()));
        (Disk::new(&dir), dir)
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
