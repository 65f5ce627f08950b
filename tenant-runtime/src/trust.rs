//! Trust between the platform and this runtime. The platform starts the container with a
//! per-tenant secret (`WEBSPLAT_TENANT_SECRET`) and the owner's id (`WEBSPLAT_TENANT_USER`),
//! and signs every request it relays with
//!
//! ```text
//! X-Websplat-Identity: v1;user=<uuid>;ts=<unix seconds>;sig=<lowercase hex>
//! sig = hex(HMAC-SHA256(secret, "v1\n{user}\n{ts}\n{METHOD}\n{path_and_query}"))
//! ```
//!
//! With a secret, [`guard`] refuses every request (health checks, static files and WebSocket
//! upgrades included) that does not carry a valid signature for the owner, made within
//! [`MAX_SKEW_SECS`] of now, before any handler runs. Without one (standalone development)
//! nothing is checked. This module must never log or answer with the secret or a header's
//! value: a refusal names its reason in the log and nothing more to the caller.

use std::fmt;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::ApiError;

/// The header the platform signs relayed requests with.
pub const HEADER: &str = "x-websplat-identity";
/// How far a signature's time may be from this runtime's clock, either way.
pub const MAX_SKEW_SECS: i64 = 300;
/// The shortest secret the runtime accepts.
pub const MIN_SECRET_CHARS: usize = 32;
pub const SECRET_VAR: &str = "WEBSPLAT_TENANT_SECRET";
pub const USER_VAR: &str = "WEBSPLAT_TENANT_USER";

const VERSION: &str = "v1";
const REFUSED: &str = "this workspace only answers requests relayed by the WebSplat platform";

type HmacSha256 = Hmac<Sha256>;

/// The secret the platform and this runtime share. Its `Debug` never shows it.
#[derive(Clone)]
pub struct TenantSecret(String);

impl TenantSecret {
    pub fn parse(raw: impl Into<String>) -> Result<Self, ConfigError> {
        let raw = raw.into();
        if raw.chars().count() < MIN_SECRET_CHARS {
            return Err(ConfigError::ShortSecret);
        }
        Ok(TenantSecret(raw))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; this cannot fail.
        HmacSha256::new_from_slice(self.0.as_bytes()).expect("HMAC accepts any key length")
    }
}

impl fmt::Debug for TenantSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TenantSecret(<redacted>)")
    }
}

/// A setting the runtime cannot start with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{SECRET_VAR} must be at least {MIN_SECRET_CHARS} characters")]
    ShortSecret,
    #[error("{SECRET_VAR} is not valid UTF-8")]
    SecretNotText,
    #[error("{USER_VAR}={0:?} is not a UUID")]
    UserNotUuid(String),
}

/// Whom this runtime answers: anyone (standalone), or requests signed for its owner.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    secret: Option<TenantSecret>,
    user: Option<Uuid>,
}

impl Trust {
    /// No secret: every request is answered (development, tests).
    pub fn standalone() -> Self {
        Trust::default()
    }

    /// Only requests signed with `secret` (for `user`, when given) are answered.
    pub fn required(secret: TenantSecret, user: Option<Uuid>) -> Self {
        Trust {
            secret: Some(secret),
            user,
        }
    }

    /// From the raw settings (`WEBSPLAT_TENANT_SECRET`, `WEBSPLAT_TENANT_USER`); a set but
    /// empty secret is refused like a short one, never taken for "no secret".
    pub fn from_settings(
        secret: Option<String>,
        user: Option<String>,
    ) -> Result<Self, ConfigError> {
        let user = user
            .map(|raw| Uuid::parse_str(raw.trim()).map_err(|_| ConfigError::UserNotUuid(raw)))
            .transpose()?;
        Ok(Trust {
            secret: secret.map(TenantSecret::parse).transpose()?,
            user,
        })
    }

    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let secret = match std::env::var(SECRET_VAR) {
            Ok(s) => Some(s),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => return Err(ConfigError::SecretNotText),
        };
        let user = match std::env::var(USER_VAR) {
            Ok(u) => Some(u),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(raw)) => {
                return Err(ConfigError::UserNotUuid(raw.to_string_lossy().into_owned()));
            }
        };
        Trust::from_settings(secret, user)
    }

    pub fn secret_required(&self) -> bool {
        self.secret.is_some()
    }

    /// Says once, at start-up, whom the runtime answers.
    pub fn log_mode(&self) {
        match (&self.secret, self.user) {
            (None, _) => tracing::warn!(
                "running without a tenant secret ({SECRET_VAR} is unset): every request is answered; only for development"
            ),
            (Some(_), Some(user)) => {
                tracing::info!(%user, "answering only requests the platform signed for this workspace's owner")
            }
            (Some(_), None) => tracing::info!(
                "answering only requests the platform signed ({USER_VAR} is unset: any user it signs for)"
            ),
        }
    }
}

/// Who the platform says is making a request, once its signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub user: Uuid,
}

/// Why a request was refused: for the log, never for the caller.
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

fn message(user: &str, ts: i64, method: &str, path_and_query: &str) -> String {
    format!("{VERSION}\n{user}\n{ts}\n{method}\n{path_and_query}")
}

/// The header value that vouches for `user` making `method path_and_query` at `ts`.
pub fn sign(
    secret: &TenantSecret,
    user: Uuid,
    ts: i64,
    method: &str,
    path_and_query: &str,
) -> String {
    let user = user.hyphenated().to_string();
    let mut mac = secret.mac();
    mac.update(message(&user, ts, method, path_and_query).as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{VERSION};user={user};ts={ts};sig={sig}")
}

/// Checks a header value against the request it came with, at `now` (unix seconds).
pub fn verify(
    secret: &TenantSecret,
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
    let mut mac = secret.mac();
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

/// The middleware: with a secret, a request goes on only with a valid identity, which the
/// handlers then find in the request's extensions ([`Verified`]).
pub async fn guard(
    trust: web::Data<Trust>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let Some(secret) = &trust.secret else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |p| p.as_str());
    let checked = match req.headers().get(HEADER) {
        None => Err(Refusal::Missing),
        Some(value) => value
            .to_str()
            .map_err(|_| Refusal::Malformed)
            .and_then(|v| {
                verify(
                    secret,
                    trust.user,
                    v,
                    req.method().as_str(),
                    path_and_query,
                    chrono::Utc::now().timestamp(),
                )
            }),
    };
    match checked {
        Ok(verified) => {
            req.extensions_mut().insert(verified);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(reason) => {
            tracing::warn!(%reason, "refused a request the platform did not sign");
            let refusal = ApiError::Unauthenticated(REFUSED.to_owned());
            Ok(req.error_response(refusal).map_into_right_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn secret() -> TenantSecret {
        TenantSecret::parse("0123456789abcdef0123456789abcdef").expect("a long secret")
    }

    fn owner() -> Uuid {
        Uuid::parse_str("6f1d2c3b-4a59-4e87-9b1c-2d3e4f5a6b7c").expect("uuid")
    }

    fn check(value: &str) -> Result<Verified, Refusal> {
        verify(
            &secret(),
            Some(owner()),
            value,
            "GET",
            "/api/v1/notes?limit=5",
            NOW,
        )
    }

    #[test]
    fn a_signature_made_by_sign_verifies_with_its_user() {
        let value = sign(&secret(), owner(), NOW, "GET", "/api/v1/notes?limit=5");
        assert!(value.starts_with(&format!("v1;user={};ts={NOW};sig=", owner())));
        assert_eq!(check(&value), Ok(Verified { user: owner() }));
        // Without an expected user, any user the platform signs for.
        let other = Uuid::new_v4();
        let value = sign(&secret(), other, NOW, "GET", "/x");
        assert_eq!(
            verify(&secret(), None, &value, "GET", "/x", NOW),
            Ok(Verified { user: other })
        );
    }

    #[test]
    fn the_signature_matches_the_documented_construction() {
        let value = sign(&secret(), owner(), NOW, "POST", "/api/v1/notes");
        let mut mac = secret().mac();
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
    fn anything_else_signed_differently_is_refused() {
        let signed = |secret: &TenantSecret, method: &str, path: &str| {
            sign(secret, owner(), NOW, method, path)
        };
        let other_secret =
            TenantSecret::parse("fedcba9876543210fedcba9876543210").expect("a long secret");
        for value in [
            signed(&other_secret, "GET", "/api/v1/notes?limit=5"),
            signed(&secret(), "POST", "/api/v1/notes?limit=5"),
            signed(&secret(), "GET", "/api/v1/notes?limit=6"),
            signed(&secret(), "GET", "/api/v1/notes"),
            signed(&secret(), "get", "/api/v1/notes?limit=5"),
        ] {
            assert_eq!(check(&value), Err(Refusal::BadSignature), "{value}");
        }
        // A valid signature with its user or time swapped.
        let value = sign(&secret(), owner(), NOW, "GET", "/api/v1/notes?limit=5");
        let other = Uuid::new_v4();
        let swapped = value.replace(&owner().to_string(), &other.to_string());
        assert_eq!(check(&swapped), Err(Refusal::BadSignature));
        let later = value.replace(&NOW.to_string(), &(NOW + 1).to_string());
        assert_eq!(check(&later), Err(Refusal::BadSignature));
    }

    #[test]
    fn a_signature_for_another_user_is_refused() {
        let value = sign(
            &secret(),
            Uuid::new_v4(),
            NOW,
            "GET",
            "/api/v1/notes?limit=5",
        );
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
            let value = sign(&secret(), owner(), ts, "GET", "/api/v1/notes?limit=5");
            assert_eq!(check(&value), expected, "ts {ts}");
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = sign(&secret(), owner(), NOW, "GET", "/api/v1/notes?limit=5");
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

    #[test]
    fn settings_are_checked_at_start() {
        let long = "s".repeat(MIN_SECRET_CHARS);
        assert!(
            !Trust::from_settings(None, None)
                .expect("standalone")
                .secret_required()
        );
        let trust =
            Trust::from_settings(Some(long.clone()), Some(owner().to_string())).expect("valid");
        assert!(trust.secret_required());
        assert_eq!(trust.user, Some(owner()));
        assert_eq!(
            Trust::from_settings(Some("s".repeat(MIN_SECRET_CHARS - 1)), None).err(),
            Some(ConfigError::ShortSecret)
        );
        assert_eq!(
            Trust::from_settings(Some(String::new()), None).err(),
            Some(ConfigError::ShortSecret)
        );
        assert_eq!(
            Trust::from_settings(Some(long), Some("alice".to_owned())).err(),
            Some(ConfigError::UserNotUuid("alice".to_owned()))
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let shown = format!("{:?}", Trust::required(secret(), Some(owner())));
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }
}
