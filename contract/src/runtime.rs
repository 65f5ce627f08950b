//! How a tenant runtime is started and reached: the environment the platform gives its
//! container, the port it listens on, where its data is mounted, and the paths the platform
//! probes. The runtime reads exactly these names; the platform sets exactly these names.

/// The port the runtime listens on inside its container.
pub const PORT: u16 = 8080;

/// Where the user's volume is mounted in the container (the runtime's data directory).
pub const DATA_DIR: &str = "/data";

/// Answers 200 once the runtime serves (the platform's readiness probe).
pub const HEALTH_PATH: &str = "/healthz";

/// Answers the [`crate::UsageReport`] (storage used and allowed).
pub const USAGE_PATH: &str = "/api/v1/usage";

/// Where an unclaimed (warm) runtime takes its one claim: a `POST` whose identity header is
/// signed with the claim key for the user it binds the runtime to (see
/// [`crate::identity::claimed_secret`]). Answers 204 once, and never again.
pub const CLAIM_PATH: &str = "/_websplat/claim";

/// The user an unclaimed runtime's health checks are signed for (nobody's).
pub const UNCLAIMED_USER: uuid::Uuid = uuid::Uuid::nil();

/// The environment variables a runtime reads at start.
pub mod env {
    /// The address to serve on, e.g. `0.0.0.0:8080`.
    pub const LISTEN: &str = "WEBSPLAT_RUNTIME_LISTEN";
    /// Where the workspace's data lives.
    pub const DATA_DIR: &str = "WEBSPLAT_RUNTIME_DATA_DIR";
    /// How much the workspace may store: bytes, or with a K, M or G suffix (binary units).
    pub const STORAGE_QUOTA: &str = "WEBSPLAT_RUNTIME_STORAGE_QUOTA";
    /// The largest document upload, in the same units.
    pub const MAX_UPLOAD: &str = "WEBSPLAT_RUNTIME_MAX_UPLOAD";
    /// The largest staged upload (a file streamed to the workspace), in the same units.
    pub const MAX_STAGED_UPLOAD: &str = "WEBSPLAT_RUNTIME_MAX_STAGED_UPLOAD";
    /// The log filter.
    pub const LOG: &str = "WEBSPLAT_RUNTIME_LOG";
    /// The tenant's own secret, which the platform signs relayed requests with.
    pub const TENANT_SECRET: &str = "WEBSPLAT_TENANT_SECRET";
    /// The owner's user id: only requests signed for this user are answered.
    pub const TENANT_USER: &str = "WEBSPLAT_TENANT_USER";
    /// The AI gateway's door as the runtime reaches it (`http://ip:port`): the one place
    /// outside its container it may call, signing each call with its tenant secret.
    pub const GATEWAY_URL: &str = "WEBSPLAT_GATEWAY_URL";
    /// Instead of a secret and a user: the one-time key of an unclaimed (warm) runtime,
    /// which answers nothing but its health check and one claim signed with it.
    pub const CLAIM_KEY: &str = "WEBSPLAT_TENANT_CLAIM_KEY";
}

/// The address a runtime in a container listens on.
pub fn listen_address() -> String {
    format!("0.0.0.0:{PORT}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_listens_on_every_interface_of_its_container_at_the_port() {
        assert_eq!(listen_address(), "0.0.0.0:8080");
        assert_eq!(
            listen_address()
                .parse::<std::net::SocketAddr>()
                .map(|a| a.port()),
            Ok(PORT)
        );
    }
}
