//! `FilePath`: where a file sits in a project, e.g. `index.html` or `blog/first-post.md`.
//! Parsed once; a value that exists cannot climb out of the project (`..`), be absolute,
//! hide (`.name`), or carry characters that mean something to a shell or a URL.

use crate::error::ApiError;

/// The kinds of file a page or an asset may be (shared with the platform, which serves
/// published sites).
pub use websplat_contract::files::{ASSET_TYPES, PAGE_TYPES};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePath(String);

impl FilePath {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let refuse = |why: &str| {
            ApiError::validation(
                "path",
                format!(
                    "{why}; a page path is like index.html or blog/post.md (letters, digits, '-', '_', '.', and '/' between folders)"
                ),
            )
        };
        if raw.is_empty() || raw.len() > 200 {
            return Err(refuse("the path must be 1 to 200 characters"));
        }
        if raw.starts_with('/') || raw.ends_with('/') {
            return Err(refuse("the path must be relative to the project"));
        }
        for segment in raw.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." || segment.starts_with('.') {
                return Err(refuse(
                    "the path must not contain empty, '.' or '..' segments or hidden names",
                ));
            }
            if !segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(refuse("the path contains a character that is not allowed"));
            }
        }
        if raw.split('/').count() > 8 {
            return Err(refuse("the path is nested too deeply"));
        }
        Ok(FilePath(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn extension(&self) -> Option<String> {
        Some(self.0.rsplit_once('.')?.1.to_ascii_lowercase())
    }

    /// The content type a page with this path is served as, if it is a page type.
    pub fn page_type(&self) -> Option<&'static str> {
        let ext = self.extension()?;
        PAGE_TYPES.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t)
    }

    /// The content type an asset with this path is served as, if it is an asset type.
    pub fn asset_type(&self) -> Option<&'static str> {
        let ext = self.extension()?;
        ASSET_TYPES.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t)
    }

    /// What a file at this path is served as.
    pub fn content_type(&self) -> &'static str {
        self.page_type()
            .or_else(|| self.asset_type())
            .unwrap_or("application/octet-stream")
    }

    /// Whether `bytes` really are the asset this path names.
    pub fn matches_asset(&self, bytes: &[u8]) -> bool {
        let starts = |magic: &[u8]| bytes.starts_with(magic);
        match self.asset_type() {
            Some("image/png") => starts(b"\x89PNG\r\n\x1a\n"),
            Some("image/jpeg") => starts(&[0xff, 0xd8, 0xff]),
            Some("image/gif") => starts(b"GIF87a") || starts(b"GIF89a"),
            Some("image/webp") => starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP"),
            Some("image/x-icon") => starts(&[0, 0, 1, 0]),
            Some("image/svg+xml") => std::str::from_utf8(bytes).is_ok_and(|t| t.contains("<svg")),
            Some("font/woff") => starts(b"wOFF"),
            Some("font/woff2") => starts(b"wOF2"),
            Some("font/ttf") => starts(&[0, 1, 0, 0]) || starts(b"true"),
            Some("font/otf") => starts(b"OTTO"),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_are_accepted() {
        for ok in [
            "index.html",
            "blog/first-post.md",
            "assets/site.css",
            "a_b-c.js",
        ] {
            assert_eq!(FilePath::parse(ok).expect(ok).as_str(), ok);
        }
    }

    #[test]
    fn escaping_and_odd_paths_are_refused() {
        for bad in [
            "",
            "../etc/passwd",
            "a/../../b",
            "/index.html",
            "a//b",
            ".env",
            "a/.git/config",
            "dir/",
            "a b.html",
            "a\\b.html",
            "a%2e%2e/b",
            "x\u{0}.html",
            "ü.html",
        ] {
            assert!(FilePath::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn page_types_come_from_the_extension() {
        assert_eq!(
            FilePath::parse("index.HTML").expect("p").page_type(),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(FilePath::parse("logo.png").expect("p").page_type(), None);
    }
}
