//! The identity header the proxy adds to every request it relays to a tenant, signed with
//! that tenant's secret. The format and its check live in `websplat_contract::identity`, which the
//! tenant runtime verifies with: the runtime refuses requests without a valid one, so only
//! the platform can talk to a tenant and the tenant knows whose request it is. The secret
//! itself never travels in a request.

pub use websplat_contract::identity::HEADER;

use crate::users::UserId;

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
}
