//! The harness the test binaries share (the platform's API and end-to-end tests and benches,
//! the runtime's workspace and UI tests): real dependencies, isolated per test. Each test
//! gets its own PostgreSQL database (dropped when the test ends) and its own Redis key
//! prefix, and starts its own processes (identity provider, chromedriver), which die with
//! the test. `scripts/test` starts PostgreSQL and Redis and sets the `WEBSPLAT_TEST_*`
//! variables.
//!
//! It must never depend on the platform or the runtime: both use it, and it only speaks to
//! them over their public surface (HTTP, environment, processes).

#[cfg(feature = "postgres")]
mod db;
mod docker;
mod fault;
mod fuzz;
mod http;
mod oidc;
mod process;
mod s3;
mod smtp;
#[cfg(feature = "swarm")]
pub mod swarm;
pub mod webdriver;

#[cfg(feature = "postgres")]
pub use db::TestDb;
pub use docker::{deployment, remove_deployment, tenant_image};
pub use fault::{Endpoint, Outage};
pub use fuzz::Fuzz;
pub use http::{Loopback, browser_client, handoff_link, location, query_param, workspace_browser};
pub use oidc::{OidcProviderMock, answer_at_mock, oidc_env, sign_in_at_mock};
pub use process::{ChildGuard, free_port, wait_for_http};
pub use s3::S3Server;
pub use smtp::{Message as MailMessage, SmtpServer};

/// A variable `scripts/test` sets; a clear failure when the suite was started another way.
pub fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with `scripts/test`, which starts their dependencies"
        )
    })
}

/// A key prefix no other test uses.
pub fn redis_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}
