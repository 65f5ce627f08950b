//! `ReturnTo`: where to send the browser after sign-in. Only a path on this platform is
//! accepted, so the sign-in flow can never be used as an open redirect.

use crate::error::ApiError;

pub const DEFAULT: &str = "/dashboard";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(ReturnTo(DEFAULT.to_owned()));
        };
        let refuse = || {
            ApiError::validation(
                "return_to",
                "return_to must be a path on this site, such as /dashboard",
            )
        };
        // "//host" and "/\host" are read by browsers as another site.
        let same_origin_path = raw.starts_with('/')
            && !raw.starts_with("//")
            && !raw.starts_with("/\\")
            && raw.len() <= 1024
            && !raw.chars().any(|c| c.is_control() || c == '\\');
        if !same_origin_path {
            return Err(refuse());
        }
        Ok(ReturnTo(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_on_this_site_are_kept() {
        assert_eq!(
            ReturnTo::parse(None).expect("default").as_str(),
            "/dashboard"
        );
        assert_eq!(
            ReturnTo::parse(Some("/a/b?c=d#e")).expect("path").as_str(),
            "/a/b?c=d#e"
        );
    }

    #[test]
    fn other_sites_are_refused() {
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "javascript:alert(1)",
            "/\u{0}x",
            "/a\\b",
        ] {
            assert!(ReturnTo::parse(Some(bad)).is_err(), "{bad:?} accepted");
        }
    }
}
