//! Trust between the platform and this runtime. The platform starts the container with a
//! per-tenant secret (`WEBSPLAT_TENANT_SECRET`) and the owner's id (`WEBSPLAT_TENANT_USER`),
//! and signs every request it relays with the identity header (`websplat_contract::identity`, shared
//! with the platform, defines it).
//!
//! With a secret, [`guard`] refuses every request (health checks, static files and WebSocket
//! upgrades included) that does not carry a valid signature for the owner, made within
//! [`MAX_SKEW_SECS`] of now, before any handler runs. Without one (standalone development)
//! nothing is checked. This module must never log or answer with the secret or a header's
//! value: a refusal names its reason in the log and nothing more to the caller.
//!
//! A warm runtime starts *unclaimed*, with a one-time claim key (`WEBSPLAT_TENANT_CLAIM_KEY`)
//! instead of a secret and a user: it answers nothing but its health check and one claim
//! (`POST /_websplat/claim`), both signed with the claim key. The claim names the user; the
//! runtime then derives its tenant secret from the key and that user (as the platform does,
//! so the secret never travels), forgets the key, and from then on is exactly a runtime
//! started with that secret and user. A second claim is refused.

use std::fmt;
use std::sync::{Arc, RwLock};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use uuid::Uuid;
pub use websplat_contract::identity::{HEADER, MAX_SKEW_SECS, Refusal, Verified};

use crate::error::ApiError;

/// The shortest secret the runtime accepts.
pub const MIN_SECRET_CHARS: usize = 32;
pub const SECRET_VAR: &str = websplat_contract::runtime::env::TENANT_SECRET;
pub const USER_VAR: &str = websplat_contract::runtime::env::TENANT_USER;
pub const CLAIM_KEY_VAR: &str = websplat_contract::runtime::env::CLAIM_KEY;

const REFUSED: &str = "this workspace only answers requests relayed by the WebSplat platform";

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

    fn key(&self) -> &[u8] {
        self.0.as_bytes()
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
    #[error("{CLAIM_KEY_VAR} must be at least {MIN_SECRET_CHARS} characters")]
    ShortClaimKey,
    #[error(
        "{CLAIM_KEY_VAR} is for an unclaimed runtime: set it without {SECRET_VAR} and {USER_VAR}"
    )]
    ClaimKeyWithSecret,
}

/// An unclaimed runtime's state: its claim key until the claim, then whom it serves.
#[derive(Debug)]
enum Claim {
    Open(TenantSecret),
    Bound { secret: TenantSecret, user: Uuid },
}

/// Whom this runtime answers: anyone (standalone), or requests signed for its owner.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    secret: Option<TenantSecret>,
    user: Option<Uuid>,
    /// Unclaimed (warm): the claim, shared by every worker.
    unclaimed: Option<Arc<RwLock<Claim>>>,
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
            unclaimed: None,
        }
    }

    /// Unclaimed: only its health check and one claim, both signed with `claim_key`.
    pub fn unclaimed(claim_key: TenantSecret) -> Self {
        Trust {
            unclaimed: Some(Arc::new(RwLock::new(Claim::Open(claim_key)))),
            ..Trust::default()
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
            unclaimed: None,
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
        match std::env::var(CLAIM_KEY_VAR) {
            Err(std::env::VarError::NotPresent) => Trust::from_settings(secret, user),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::ShortClaimKey),
            Ok(_) if secret.is_some() || user.is_some() => Err(ConfigError::ClaimKeyWithSecret),
            Ok(key) => Ok(Trust::unclaimed(
                TenantSecret::parse(key).map_err(|_| ConfigError::ShortClaimKey)?,
            )),
        }
    }

    /// The key preview capabilities are signed with (`websplat_contract::preview`): the
    /// tenant secret, so the platform's proxy can check them too. Standalone, with nothing
    /// checked anywhere, a fixed key.
    pub fn preview_key(&self) -> &[u8] {
        self.secret
            .as_ref()
            .map_or(b"standalone: every request is answered".as_slice(), |s| {
                s.key()
            })
    }

    pub fn secret_required(&self) -> bool {
        self.secret.is_some() || self.unclaimed.is_some()
    }

    /// Says once, at start-up, whom the runtime answers.
    pub fn log_mode(&self) {
        if self.unclaimed.is_some() {
            tracing::info!(
                "unclaimed: answering only a health check and one claim the platform signed"
            );
            return;
        }
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

/// The header value that vouches for `user` making `method path_and_query` at `ts`: what
/// the platform sends (the tests sign with it).
pub fn sign(
    secret: &TenantSecret,
    user: Uuid,
    ts: i64,
    method: &str,
    path_and_query: &str,
) -> String {
    websplat_contract::identity::sign(secret.key(), user, ts, method, path_and_query)
}

/// The middleware: with a secret, a request goes on only with a valid identity, which the
/// handlers then find in the request's extensions ([`Verified`]).
pub async fn guard(
    trust: web::Data<Trust>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    if let Some(claim) = &trust.unclaimed {
        return guard_unclaimed(claim, req, next).await;
    }
    let Some(secret) = &trust.secret else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    check(secret, trust.user, req, next).await
}

/// Lets a request on only with a valid identity for `user` signed with `secret`.
async fn check<B: MessageBody + 'static>(
    secret: &TenantSecret,
    user: Option<Uuid>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
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
                websplat_contract::identity::verify(
                    secret.key(),
                    user,
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

/// An unclaimed runtime: its health check and one claim, both signed with the claim key;
/// once claimed, exactly [`check`] with the derived secret and the claiming user.
async fn guard_unclaimed<B: MessageBody + 'static>(
    claim: &RwLock<Claim>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    use websplat_contract::runtime::{CLAIM_PATH, HEALTH_PATH, UNCLAIMED_USER};
    let refuse =
        |req: ServiceRequest, error: ApiError| Ok(req.error_response(error).map_into_right_body());
    let (key, bound) = match &*claim.read().map_err(|_| poisoned())? {
        Claim::Open(key) => (Some(key.clone()), None),
        Claim::Bound { secret, user } => (None, Some((secret.clone(), *user))),
    };
    if let Some((secret, user)) = bound {
        if req.path() == CLAIM_PATH {
            tracing::warn!("refused a second claim");
            return refuse(
                req,
                ApiError::Conflict("this workspace is already claimed".to_owned()),
            );
        }
        return check(&secret, Some(user), req, next).await;
    }
    let Some(key) = key else {
        return refuse(req, ApiError::Unauthenticated(REFUSED.to_owned()));
    };
    let signed_by = |expected: Option<Uuid>| {
        let path_and_query = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path(), |p| p.as_str());
        req.headers()
            .get(HEADER)
            .ok_or(Refusal::Missing)
            .and_then(|v| v.to_str().map_err(|_| Refusal::Malformed))
            .and_then(|v| {
                websplat_contract::identity::verify(
                    key.key(),
                    expected,
                    v,
                    req.method().as_str(),
                    path_and_query,
                    chrono::Utc::now().timestamp(),
                )
            })
    };
    if req.path() == CLAIM_PATH && req.method() == actix_web::http::Method::POST {
        let verified = match signed_by(None) {
            Ok(v) if v.user != UNCLAIMED_USER => v,
            Ok(_) | Err(_) => {
                tracing::warn!("refused a claim the platform did not sign");
                return refuse(req, ApiError::Unauthenticated(REFUSED.to_owned()));
            }
        };
        let mut state = claim.write().map_err(|_| poisoned())?;
        if !matches!(*state, Claim::Open(_)) {
            return refuse(
                req,
                ApiError::Conflict("this workspace is already claimed".to_owned()),
            );
        }
        let secret = TenantSecret(websplat_contract::identity::claimed_secret(
            key.key(),
            verified.user,
        ));
        *state = Claim::Bound {
            secret,
            user: verified.user,
        };
        drop(state);
        tracing::info!(user = %verified.user, "claimed: answering only requests the platform signed for this workspace's owner");
        return Ok(req
            .into_response(actix_web::HttpResponse::NoContent().finish())
            .map_into_right_body());
    }
    if req.path() == HEALTH_PATH && signed_by(Some(UNCLAIMED_USER)).is_ok() {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    tracing::warn!(
        path = req.path(),
        "refused a request to an unclaimed runtime"
    );
    refuse(
        req,
        ApiError::Unauthenticated("this workspace is not claimed yet".to_owned()),
    )
}

fn poisoned() -> actix_web::Error {
    actix_web::error::ErrorInternalServerError("the trust lock is poisoned")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> TenantSecret {
        TenantSecret::parse("0123456789abcdef0123456789abcdef").expect("a long secret")
    }

    fn owner() -> Uuid {
        Uuid::parse_str("6f1d2c3b-4a59-4e87-9b1c-2d3e4f5a6b7c").expect("uuid")
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
