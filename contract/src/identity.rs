//! The identity header: how the platform vouches for a request it relays to a tenant
//! runtime, and how the runtime checks it. Both sides use this module, so the wire format is
//! written once:
//!
//! ```text
//! X-Websplat-Identity: v1;user=<uuid>;ts=<unix seconds>;sig=<lowercase hex>
//! sig = hex(HMAC-SHA256(secret, "v1\n{user}\n{ts}\n{METHOD}\n{path_and_query}"))
//! ```
//!
//! The secret is the tenant's own, derived by the platform from its key and the tenant's id
//! (never stored) and handed to the container, or derived by both sides at a warm runtime's
//! claim ([`claimed_secret`]); it never travels in a request. Nothing here logs or formats a
//! secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// The header a relayed request carries.
pub const HEADER: &str = "x-websplat-identity";
/// How far a signature's time may be from the verifier's clock, either way.
pub const MAX_SKEW_SECS: i64 = 300;

const VERSION: &str = "v1";

/// Who the platform says is making a request, once its signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub user: Uuid,
}

/// Why a header was refused: for the log, never for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no identity header")]
    Missing,
    #[error("the identity header is malformed")]
    Malformed,
    #[error("the signature does not match")]
    BadSignature,
    #[error("signed for another user")]
    WrongUser,
    #[error("the signature's time is more than {MAX_SKEW_SECS} s from now")]
    Stale,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

fn message(user: &str, ts: i64, method: &str, path_and_query: &str) -> String {
    format!("{VERSION}\n{user}\n{ts}\n{method}\n{path_and_query}")
}

/// The header value that vouches for `user` making `method path_and_query` at `ts` (unix
/// seconds).
pub fn sign(secret: &[u8], user: Uuid, ts: i64, method: &str, path_and_query: &str) -> String {
    let user = user.hyphenated().to_string();
    let mut mac = mac(secret);
    mac.update(message(&user, ts, method, path_and_query).as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{VERSION};user={user};ts={ts};sig={sig}")
}

/// The tenant secret a claim binds an unclaimed runtime to: derived from its one-time
/// claim key and the claiming user, by the platform and the runtime alike, so the secret
/// itself never travels. Lowercase hex of HMAC-SHA256(claim key, "claim v1\n{user}").
pub fn claimed_secret(claim_key: &[u8], user: Uuid) -> String {
    let mut mac = mac(claim_key);
    mac.update(format!("claim {VERSION}\n{}", user.hyphenated()).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a header value against the request it came with, at `now` (unix seconds): signed
/// with `secret`, for `expected_user` when one is given, within [`MAX_SKEW_SECS`].
pub fn verify(
    secret: &[u8],
    expected_user: Option<Uuid>,
    header_value: &str,
    method: &str,
    path_and_query: &str,
    now: i64,
) -> Result<Verified, Refusal> {
    let (raw_user, ts, sig) = parse(header_value).ok_or(Refusal::Malformed)?;
    // Only the canonical spelling: one user has one signed form.
    let user = Uuid::parse_str(raw_user)
        .ok()
        .filter(|u| u.hyphenated().to_string() == raw_user)
        .ok_or(Refusal::Malformed)?;
    let mut mac = mac(secret);
    mac.update(message(raw_user, ts, method, path_and_query).as_bytes());
    mac.verify_slice(&sig).map_err(|_| Refusal::BadSignature)?;
    if expected_user.is_some_and(|expected| expected != user) {
        return Err(Refusal::WrongUser);
    }
    if now.abs_diff(ts) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(Refusal::Stale);
    }
    Ok(Verified { user })
}

/// `v1;user=…;ts=…;sig=…`, in that order, nothing else: (user, ts, signature bytes).
fn parse(value: &str) -> Option<(&str, i64, Vec<u8>)> {
    let mut parts = value.split(';');
    if parts.next()? != VERSION {
        return None;
    }
    let user = parts.next()?.strip_prefix("user=")?;
    let ts = parts.next()?.strip_prefix("ts=")?;
    let sig = parts.next()?.strip_prefix("sig=")?;
    if parts.next().is_some() || ts.is_empty() || ts.len() > 12 {
        return None;
    }
    if !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((user, ts.parse().ok()?, hex(sig)?))
}

/// Lowercase hex of a SHA-256 MAC (64 digits) as bytes.
fn hex(raw: &str) -> Option<Vec<u8>> {
    if raw.len() != 64 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    raw.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn owner() -> Uuid {
        Uuid::parse_str("6f1d2c3b-4a59-4e87-9b1c-2d3e4f5a6b7c").expect("uuid")
    }

    fn check(value: &str) -> Result<Verified, Refusal> {
        verify(
            SECRET,
            Some(owner()),
            value,
            "GET",
            "/api/v1/notes?limit=5",
            NOW,
        )
    }

    #[test]
    fn a_signature_made_by_sign_verifies_with_its_user() {
        let value = sign(SECRET, owner(), NOW, "GET", "/api/v1/notes?limit=5");
        assert!(value.starts_with(&format!("v1;user={};ts={NOW};sig=", owner())));
        assert_eq!(check(&value), Ok(Verified { user: owner() }));
        // Without an expected user, any user the platform signs for.
        let other = Uuid::new_v4();
        let value = sign(SECRET, other, NOW, "GET", "/x");
        assert_eq!(
            verify(SECRET, None, &value, "GET", "/x", NOW),
            Ok(Verified { user: other })
        );
    }

    #[test]
    fn the_signature_matches_the_documented_construction() {
        let value = sign(SECRET, owner(), NOW, "POST", "/api/v1/notes");
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("key");
        mac.update(format!("v1\n{}\n{NOW}\nPOST\n/api/v1/notes", owner()).as_bytes());
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(value.ends_with(&format!(";sig={expected}")), "{value}");
    }

    #[test]
    fn anything_signed_differently_is_refused() {
        let other_secret = b"fedcba9876543210fedcba9876543210";
        for value in [
            sign(other_secret, owner(), NOW, "GET", "/api/v1/notes?limit=5"),
            sign(SECRET, owner(), NOW, "POST", "/api/v1/notes?limit=5"),
            sign(SECRET, owner(), NOW, "GET", "/api/v1/notes?limit=6"),
            sign(SECRET, owner(), NOW, "GET", "/api/v1/notes"),
            sign(SECRET, owner(), NOW, "get", "/api/v1/notes?limit=5"),
        ] {
            assert_eq!(check(&value), Err(Refusal::BadSignature), "{value}");
        }
        // A valid signature with its user or time swapped.
        let value = sign(SECRET, owner(), NOW, "GET", "/api/v1/notes?limit=5");
        let other = Uuid::new_v4();
        let swapped = value.replace(&owner().to_string(), &other.to_string());
        assert_eq!(check(&swapped), Err(Refusal::BadSignature));
        let later = value.replace(&NOW.to_string(), &(NOW + 1).to_string());
        assert_eq!(check(&later), Err(Refusal::BadSignature));
    }

    #[test]
    fn a_signature_for_another_user_is_refused() {
        let value = sign(SECRET, Uuid::new_v4(), NOW, "GET", "/api/v1/notes?limit=5");
        assert_eq!(check(&value), Err(Refusal::WrongUser));
    }

    #[test]
    fn a_signature_older_or_newer_than_five_minutes_is_refused() {
        for (ts, expected) in [
            (NOW - 300, Ok(Verified { user: owner() })),
            (NOW + 300, Ok(Verified { user: owner() })),
            (NOW - 301, Err(Refusal::Stale)),
            (NOW + 301, Err(Refusal::Stale)),
            (0, Err(Refusal::Stale)),
        ] {
            let value = sign(SECRET, owner(), ts, "GET", "/api/v1/notes?limit=5");
            assert_eq!(check(&value), expected, "ts {ts}");
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = sign(SECRET, owner(), NOW, "GET", "/api/v1/notes?limit=5");
        let sig = good.rsplit_once("sig=").expect("sig").1.to_owned();
        let user = owner().to_string();
        for value in [
            String::new(),
            "v1".to_owned(),
            good.replacen("v1", "v2", 1),
            format!("{good};extra=1"),
            format!("v1;ts={NOW};user={user};sig={sig}"),
            format!("v1;user={user};ts=;sig={sig}"),
            format!("v1;user={user};ts=-{NOW};sig={sig}"),
            format!("v1;user={user};ts=+{NOW};sig={sig}"),
            format!("v1;user={user};ts=99999999999999999999;sig={sig}"),
            format!("v1;user={};ts={NOW};sig={sig}", user.to_uppercase()),
            format!("v1;user={};ts={NOW};sig={sig}", owner().simple()),
            format!("v1;user=someone;ts={NOW};sig={sig}"),
            format!("v1;user={user};ts={NOW};sig={}", sig.to_uppercase()),
            format!("v1;user={user};ts={NOW};sig={}", &sig[..62]),
            format!("v1;user={user};ts={NOW};sig={sig}00"),
            format!("v1;user={user};ts={NOW};sig={}zz", &sig[..62]),
            format!(" {good}"),
        ] {
            assert_eq!(check(&value), Err(Refusal::Malformed), "{value:?}");
        }
    }
}
