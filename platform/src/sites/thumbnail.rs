//! A published site's thumbnail for the dashboard's project tiles (issue #14): the first
//! picture its home page shows — `og:image`, else the first `<img>` — when it is a raster
//! image inside the site (PNG, JPEG, GIF or WebP, at most 2 MiB). Nothing is rendered or
//! stored: the file is read from the site's own storage when the dashboard asks, and the
//! browser caches it. Only the site's owner gets it; an SVG or an address outside the site
//! is never served (the platform's origin must not carry anything a page could run).

use uuid::Uuid;

use super::storage::clean_path;
use super::{SiteName, Sites, store};
use crate::error::ApiError;
use crate::users::UserId;

/// The largest picture served as a thumbnail.
const MAX_BYTES: usize = 2 * 1024 * 1024;
/// How many candidates of the home page are tried.
const TRIES: usize = 6;

/// A thumbnail's bytes and what they are.
pub struct Thumbnail {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    /// Changes with the site's build and the file chosen.
    pub etag: String,
}

fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

/// The value of `name="…"` (or `'…'`) inside one tag's text.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        let before_ok = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let rest = rest[1..].trim_start();
        let quote = rest.chars().next()?;
        if quote == '"' || quote == '\'' {
            return rest[1..].split(quote).next();
        }
        return rest.split(|c: char| c.is_whitespace() || c == '>').next();
    }
    None
}

/// The pictures a home page names, in the order they make a good thumbnail: its
/// `og:image`, then its `<img>`s in order.
pub fn candidates(html: &str) -> Vec<String> {
    let mut og = Vec::new();
    let mut imgs = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find('<') {
        let start = from + at;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &html[start..end];
        let name = &lower[start + 1..end];
        if name.starts_with("img") {
            imgs.extend(attribute(tag, "src").map(str::to_owned));
        } else if name.starts_with("meta")
            && attribute(tag, "property").is_some_and(|p| p.eq_ignore_ascii_case("og:image"))
        {
            og.extend(attribute(tag, "content").map(str::to_owned));
        }
        from = end.max(start + 1);
        if og.len() + imgs.len() >= TRIES {
            break;
        }
    }
    og.into_iter()
        .chain(imgs)
        .filter_map(|src| {
            let path = src.trim().trim_start_matches("./");
            let path = path.split(['?', '#']).next().unwrap_or_default();
            clean_path(path).filter(|p| content_type(p).is_some())
        })
        .take(TRIES)
        .collect()
}

impl Sites {
    /// The thumbnail of `user`'s site `name`, if it shows a picture of its own.
    pub async fn thumbnail(
        &self,
        user: UserId,
        name: &SiteName,
    ) -> Result<Option<Thumbnail>, ApiError> {
        let site = {
            let mut conn = self.db.get().await?;
            store::find(&mut conn, name.as_str()).await?
        };
        let Some(site) = site.filter(|s| s.user_id == user) else {
            return Ok(None);
        };
        let read = |path: String| async move {
            self.storage
                .read(site.build, &path)
                .await
                .map_err(|e| ApiError::internal(anyhow::anyhow!("cannot read a site: {e}")))
        };
        let Some((_, html)) = read("index.html".to_owned()).await? else {
            return Ok(None);
        };
        for path in candidates(&String::from_utf8_lossy(&html)) {
            let Some(kind) = content_type(&path) else {
                continue;
            };
            if let Some((file, bytes)) = read(path).await?
                && bytes.len() <= MAX_BYTES
            {
                return Ok(Some(Thumbnail {
                    content_type: kind,
                    bytes,
                    etag: etag(site.build, &file),
                }));
            }
        }
        Ok(None)
    }
}

fn etag(build: Uuid, file: &str) -> String {
    format!(
        "\"{}-{}\"",
        build.simple(),
        &crate::auth::secret::sha256_hex(file)[..12]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_pages_own_raster_pictures_are_the_candidates() {
        let html = r#"<html><head><meta property="og:image" content="images/cover.jpg">
            </head><body><IMG class="x" SRC='./photos/a.png?v=2' alt="a">
            <img src="https://elsewhere.example/b.png"><img src="/etc/passwd.png">
            <img src="logo.svg"><img src=c.webp></body></html>"#;
        assert_eq!(
            candidates(html),
            ["images/cover.jpg", "photos/a.png", "c.webp"]
        );
        assert!(candidates("<p>No pictures.</p>").is_empty());
        assert!(candidates("<img src=\"../up.png\">").is_empty());
    }
}
