//! The kinds of file a site is made of, by extension, with the type each is served as: the
//! runtime accepts only these in a project, and the platform serves a published site's
//! files with these types (anything else as `application/octet-stream`).

/// Pages (text), by extension.
pub const PAGE_TYPES: [(&str, &str); 5] = [
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
];

/// Assets (images, fonts), by extension.
pub const ASSET_TYPES: [(&str, &str); 11] = [
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("svg", "image/svg+xml"),
    ("ico", "image/x-icon"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
];

/// What a file at `path` is served as.
pub fn content_type(path: &str) -> &'static str {
    let Some((_, ext)) = path.rsplit_once('.') else {
        return "application/octet-stream";
    };
    let ext = ext.to_ascii_lowercase();
    PAGE_TYPES
        .iter()
        .chain(ASSET_TYPES.iter())
        .find(|(e, _)| *e == ext)
        .map_or("application/octet-stream", |(_, t)| *t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn types_come_from_the_extension() {
        assert_eq!(super::content_type("a/b.HTML"), "text/html; charset=utf-8");
        assert_eq!(super::content_type("x.woff2"), "font/woff2");
        assert_eq!(super::content_type("x.exe"), "application/octet-stream");
        assert_eq!(super::content_type("README"), "application/octet-stream");
    }
}
