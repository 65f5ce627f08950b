//! The preview capability: a short-lived, read-only key to one project's preview, carried in
//! the preview's URL so that a sandboxed page (an opaque origin, which browsers never send
//! the workspace's `SameSite` cookie from) can still load its own stylesheets, scripts,
//! images, fonts and analytics beacon. The runtime mints it with its tenant secret; the
//! platform's proxy checks it with the same secret before relaying a cookie-less request,
//! and the runtime checks it again before serving. Both use this module, so the wire
//! format is written once:
//!
//! ```text
//! /_preview/{project}.{expires}.{sig}/{path}
//! sig = hex(HMAC-SHA256(secret, "preview-v1\n{project}\n{expires}"))
//! ```
//!
//! A capability grants `GET`/`HEAD` of the files of that project's current version under
//! its prefix, and its beacon ([`BEACON`]); nothing else. It never names the user, a
//! session or the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// The path prefix of every preview capability URL.
pub const PREFIX: &str = "/_preview/";
/// The file name, under a capability, of the preview's analytics beacon. It starts with a
/// dot, which no project file may, so it never hides one.
pub const BEACON: &str = ".beacon.gif";
/// How long a capability lives, in seconds.
pub const LIFETIME_SECS: i64 = 30 * 60;

const DOMAIN: &str = "preview-v1";

/// A checked capability: which project, until when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub project: Uuid,
    pub expires: i64,
}

/// Why a capability was refused: for the log, never for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the preview capability is malformed")]
    Malformed,
    #[error("the preview capability's signature does not match")]
    BadSignature,
    #[error("the preview capability has expired")]
    Expired,
}

fn mac(secret: &[u8], project: &str, expires: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(format!("{DOMAIN}\n{project}\n{expires}").as_bytes());
    mac
}

/// The capability token for `project` until `expires` (unix seconds).
pub fn mint(secret: &[u8], project: Uuid, expires: i64) -> String {
    let project = project.hyphenated().to_string();
    let sig: String = mac(secret, &project, expires)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{project}.{expires}.{sig}")
}

/// The URL path of `file` (a project path, or [`BEACON`]) under `token`.
pub fn path(token: &str, file: &str) -> String {
    format!("{PREFIX}{token}/{file}")
}

/// Checks a token at `now` (unix seconds).
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<Capability, Refusal> {
    let mut parts = token.split('.');
    let (Some(project), Some(expires), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let uuid = Uuid::parse_str(project)
        .ok()
        .filter(|u| u.hyphenated().to_string() == project)
        .ok_or(Refusal::Malformed)?;
    if expires.is_empty() || expires.len() > 12 || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Malformed);
    }
    let expires: i64 = expires.parse().map_err(|_| Refusal::Malformed)?;
    let sig = hex(sig).ok_or(Refusal::Malformed)?;
    mac(secret, project, expires)
        .verify_slice(&sig)
        .map_err(|_| Refusal::BadSignature)?;
    if now > expires {
        return Err(Refusal::Expired);
    }
    Ok(Capability {
        project: uuid,
        expires,
    })
}

/// A request path under [`PREFIX`] as (token, the rest after its `/`), or `None`.
pub fn split(request_path: &str) -> Option<(&str, &str)> {
    let rest = request_path.strip_prefix(PREFIX)?;
    let (token, file) = rest.split_once('/').unwrap_or((rest, ""));
    (!token.is_empty()).then_some((token, file))
}

fn hex(raw: &str) -> Option<Vec<u8>> {
    if raw.len() != 64 {
        return None;
    }
    (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(raw.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_minted_capability_checks_out_until_it_expires() {
        let project = Uuid::new_v4();
        let token = mint(SECRET, project, 1_000);
        assert_eq!(
            verify(SECRET, &token, 999),
            Ok(Capability {
                project,
                expires: 1_000
            })
        );
        assert_eq!(verify(SECRET, &token, 1_001), Err(Refusal::Expired));
        assert_eq!(
            verify(b"another secret of thirty-two chars", &token, 999),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn a_changed_project_or_expiry_is_refused() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let token = mint(SECRET, a, 1_000);
        let other = token.replacen(&a.to_string(), &b.to_string(), 1);
        assert_eq!(verify(SECRET, &other, 0), Err(Refusal::BadSignature));
        let later = token.replacen(".1000.", ".9000.", 1);
        assert_eq!(verify(SECRET, &later, 0), Err(Refusal::BadSignature));
        for junk in [
            "",
            "x",
            "a.b.c",
            &format!("{a}.1.zz"),
            &format!("{token}.x"),
        ] {
            assert_eq!(verify(SECRET, junk, 0), Err(Refusal::Malformed), "{junk}");
        }
    }

    #[test]
    fn paths_split_into_token_and_file() {
        assert_eq!(
            split("/_preview/tok/css/site.css"),
            Some(("tok", "css/site.css"))
        );
        assert_eq!(split("/_preview/tok"), Some(("tok", "")));
        assert_eq!(split("/_preview/"), None);
        assert_eq!(split("/preview/x/y"), None);
        assert_eq!(path("tok", BEACON), "/_preview/tok/.beacon.gif");
    }
}
