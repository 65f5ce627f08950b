//! `FilePath`: where a file sits in a project, e.g. `index.html` or `blog/first-post.md`.
//! Parsed once; a value that exists cannot climb out of the project (`..`), be absolute,
//! hide (`.name`), or carry characters that mean something to a shell or a URL.

use crate::error::ApiError;

/// The kinds of file a page may be, by extension, with the type they are served as.
pub const PAGE_TYPES: [(&str, &str); 5] = [
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
];

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

    /// The content type a page with this path is served as, if it is a page type.
    pub fn page_type(&self) -> Option<&'static str> {
        let ext = self.0.rsplit_once('.')?.1.to_ascii_lowercase();
        PAGE_TYPES.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t)
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
