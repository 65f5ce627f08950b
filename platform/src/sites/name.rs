//! `SiteName`: the owner-chosen first label of a published site's address
//! (`{name}.{sites domain}`). Parsed once: 3 to 40 lowercase letters, digits and inner
//! dashes, and never a reserved name. Whether it is free (not another user's site or
//! workspace) is the publish use-case's question, asked of the database.

use serde::Serialize;

use crate::error::ApiError;

/// Names no one may publish under: they would pass for the platform, its parts or its
/// staff.
pub const RESERVED: &[&str] = &[
    "www",
    "api",
    "app",
    "admin",
    "administrator",
    "root",
    "platform",
    "websplat",
    "sites",
    "site",
    "static",
    "assets",
    "cdn",
    "mail",
    "email",
    "smtp",
    "imap",
    "ftp",
    "ns1",
    "ns2",
    "login",
    "signin",
    "sign-in",
    "auth",
    "oauth",
    "sso",
    "account",
    "accounts",
    "dashboard",
    "status",
    "help",
    "support",
    "security",
    "billing",
    "docs",
    "blog",
    "preview",
    "ws",
    "workspace",
    "workspaces",
    "official",
    "staff",
    "operator",
    "system",
    "localhost",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SiteName(String);

impl SiteName {
    /// A name as its owner typed it (case and surrounding spaces are forgiven).
    pub fn parse(raw: &str) -> Result<SiteName, ApiError> {
        let name = raw.trim().to_ascii_lowercase();
        let refuse = |why: &str| ApiError::validation("name", why.to_owned());
        if !(3..=40).contains(&name.len()) {
            return Err(refuse("A site name has 3 to 40 characters."));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(refuse(
                "A site name may hold only letters, digits and dashes (it becomes part of the site's address).",
            ));
        }
        if name.starts_with('-') || name.ends_with('-') {
            return Err(refuse("A site name cannot start or end with a dash."));
        }
        if name.contains("--") {
            return Err(refuse("A site name cannot hold two dashes in a row."));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(refuse(&format!(
                "The name \"{name}\" is reserved by the platform; choose another name."
            )));
        }
        Ok(SiteName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SiteName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_taken_as_typed_in_lower_case() {
        for (raw, name) in [
            ("bakery", "bakery"),
            (" Corner-Bakery ", "corner-bakery"),
            ("a1b", "a1b"),
        ] {
            assert_eq!(SiteName::parse(raw).expect(raw).as_str(), name);
        }
    }

    #[test]
    fn odd_short_long_and_reserved_names_are_refused_in_a_sentence() {
        for raw in [
            "ab",
            "-abc",
            "abc-",
            "a--b",
            "a.b",
            "a_b",
            "admin",
            "www",
            "ümlaut",
            &"a".repeat(41),
        ] {
            let err = SiteName::parse(raw).expect_err(raw);
            let message = err.to_string();
            assert!(
                message.starts_with(char::is_uppercase) && message.ends_with('.'),
                "{message}"
            );
        }
    }
}
