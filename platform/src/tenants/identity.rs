//! The identity header the proxy adds to every request it relays to a tenant, signed with
//! that tenant's secret: `X-Websplat-Identity: v1;user=<uuid>;ts=<unix s>;sig=<hex>`, where
//! `sig = HMAC-SHA256(secret, "v1\n{user}\n{ts}\n{METHOD}\n{path_and_query}")`. The runtime
//! refuses requests without a valid one, so only the platform can talk to a tenant and the
//! tenant knows whose request it is. The secret itself never travels in a request.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::users::UserId;

pub const HEADER: &str = "x-websplat-identity";

pub fn sign(secret: &str, user: UserId, ts: i64, method: &str, path_and_query: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(format!("v1\n{user}\n{ts}\n{method}\n{path_and_query}").as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1;user={user};ts={ts};sig={sig}")
}

/// The header value for a request made now.
pub fn sign_now(secret: &str, user: UserId, method: &str, path_and_query: &str) -> String {
    sign(
        secret,
        user,
        chrono::Utc::now().timestamp(),
        method,
        path_and_query,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_every_part() {
        let user = UserId(uuid::Uuid::nil());
        let base = sign("s3cret", user, 100, "GET", "/a?b=1");
        assert!(base.starts_with("v1;user=00000000-0000-0000-0000-000000000000;ts=100;sig="));
        assert_eq!(base, sign("s3cret", user, 100, "GET", "/a?b=1"));
        for other in [
            sign("other", user, 100, "GET", "/a?b=1"),
            sign("s3cret", UserId::new(), 100, "GET", "/a?b=1"),
            sign("s3cret", user, 101, "GET", "/a?b=1"),
            sign("s3cret", user, 100, "POST", "/a?b=1"),
            sign("s3cret", user, 100, "GET", "/a?b=2"),
        ] {
            assert_ne!(
                base.rsplit_once("sig=").map(|p| p.1),
                other.rsplit_once("sig=").map(|p| p.1)
            );
        }
    }
}
