//! The identity header the proxy adds to every request it relays to a tenant, signed with
//! that tenant's secret, and where that secret comes from. The format and its check live in
//! `websplat_contract::identity`, which the tenant runtime verifies with: the runtime refuses
//! requests without a valid one, so only the platform can talk to a tenant and the tenant
//! knows whose request it is. The secret itself never travels in a request.
//!
//! Secrets are derived, never stored: each tenant's is computed from the platform's key
//! ([`TenantKeys`]), its tenant id and its user whenever it is needed, so neither Redis nor
//! PostgreSQL holds one. A warm or made-ahead container gets only its one-time claim key
//! (derived from the same key and its row's id, which becomes its tenant's id when it is
//! taken); the tenant's secret is derived from that claim key and the claiming user at the
//! claim, by the platform and the runtime alike, as before. This module must never log or
//! format a key or a secret.

use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

pub use websplat_contract::identity::HEADER;

use super::TenantId;
use super::routing::Route;
use crate::users::UserId;

/// HKDF's salt: names what the keys are for, so the platform key could serve another use
/// without giving these away.
const SALT: &[u8] = b"websplat tenant keys v1";

/// The platform's key, ready to derive every tenant's claim key and secret from. Its
/// `Debug` shows nothing of it.
pub struct TenantKeys {
    hkdf: Hkdf<Sha256>,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKeys([redacted])")
    }
}

impl TenantKeys {
    pub fn new(platform_key: &[u8]) -> Self {
        TenantKeys {
            hkdf: Hkdf::<Sha256>::new(Some(SALT), platform_key),
        }
    }

    /// The one-time claim key of the container made for `id` (a warm runtime's or a
    /// returning person's next container's row, whose id its tenant then takes; or a
    /// tenant's own): lowercase hex of HKDF-SHA256(platform key, "claim-key\n{id}").
    pub fn claim_key(&self, id: Uuid) -> SecretString {
        let mut okm = [0u8; 32];
        self.hkdf
            .expand(
                format!("claim-key\n{}", id.hyphenated()).as_bytes(),
                &mut okm,
            )
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        SecretString::from(hex)
    }

    /// The secret of `tenant` owned by `user`: the secret a claim of its claim key for the
    /// user binds ([`websplat_contract::identity::claimed_secret`]), so a cold start (which
    /// is handed it) and a claimed warm runtime (which derives it) agree.
    pub fn secret(&self, tenant: TenantId, user: UserId) -> SecretString {
        let claim_key = self.claim_key(tenant.0);
        SecretString::from(websplat_contract::identity::claimed_secret(
            claim_key.expose_secret().as_bytes(),
            user.0,
        ))
    }

    /// The secret of the tenant a route leads to.
    pub fn of_route(&self, route: &Route) -> SecretString {
        self.secret(route.tenant, route.user)
    }
}

/// The header value for `user` making `method path_and_query` now.
pub fn sign_now(secret: &str, user: UserId, method: &str, path_and_query: &str) -> String {
    websplat_contract::identity::sign(
        secret.as_bytes(),
        user.0,
        chrono::Utc::now().timestamp(),
        method,
        path_and_query,
    )
}

/// The header value for a request relayed along `route`, signed with its tenant's secret
/// (derived here): what the proxy adds to each request.
pub fn sign_route(keys: &TenantKeys, route: &Route, method: &str, path_and_query: &str) -> String {
    sign_now(
        keys.of_route(route).expose_secret(),
        route.user,
        method,
        path_and_query,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_signed_now_verifies_for_its_user_and_request() {
        let user = UserId::new();
        let value = sign_now("s3cret", user, "GET", "/a?b=1");
        let now = chrono::Utc::now().timestamp();
        let verified = websplat_contract::identity::verify(
            b"s3cret",
            Some(user.0),
            &value,
            "GET",
            "/a?b=1",
            now,
        );
        assert_eq!(verified.map(|v| v.user), Ok(user.0));
        assert!(
            websplat_contract::identity::verify(
                b"other",
                Some(user.0),
                &value,
                "GET",
                "/a?b=1",
                now
            )
            .is_err()
        );
    }

    #[test]
    fn secrets_are_derived_per_tenant_user_and_platform_key() {
        let keys = TenantKeys::new(b"a platform key of at least 32 characters");
        let (tenant, user) = (TenantId::new(), UserId::new());
        let secret = keys.secret(tenant, user);
        // Stable: every replica with the key derives the same one.
        assert_eq!(
            secret.expose_secret(),
            TenantKeys::new(b"a platform key of at least 32 characters")
                .secret(tenant, user)
                .expose_secret()
        );
        assert_eq!(secret.expose_secret().len(), 64);
        for other in [
            keys.secret(TenantId::new(), user),
            keys.secret(tenant, UserId::new()),
            TenantKeys::new(b"another platform key, also 32 characters").secret(tenant, user),
        ] {
            assert_ne!(secret.expose_secret(), other.expose_secret());
        }
        // What a runtime claimed with the tenant's claim key for the user derives.
        assert_eq!(
            secret.expose_secret(),
            websplat_contract::identity::claimed_secret(
                keys.claim_key(tenant.0).expose_secret().as_bytes(),
                user.0
            )
        );
        assert_eq!(format!("{keys:?}"), "TenantKeys([redacted])");
    }

    #[test]
    fn a_route_is_signed_with_its_tenants_secret() {
        let keys = TenantKeys::new(&[7u8; 32]);
        let route = Route {
            tenant: TenantId::new(),
            user: UserId::new(),
            address: "172.20.0.2:8080".to_owned(),
        };
        let value = sign_route(&keys, &route, "GET", "/x");
        let secret = keys.secret(route.tenant, route.user);
        let now = chrono::Utc::now().timestamp();
        assert_eq!(
            websplat_contract::identity::verify(
                secret.expose_secret().as_bytes(),
                Some(route.user.0),
                &value,
                "GET",
                "/x",
                now
            )
            .map(|v| v.user),
            Ok(route.user.0)
        );
    }
}
