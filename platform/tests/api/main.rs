//! API tests: the platform served in-process on a real port, against real PostgreSQL,
//! Redis and identity providers (the third-party `oidc-provider-mock`, plus local servers
//! speaking GitHub's and an OIDC provider's wire format where a test must craft answers).

#[path = "../../../tests/support/mod.rs"]
mod support;

mod forge;
mod github;
mod helpers;

mod admin;
mod admin_cli;
mod authz;
mod health;
mod local_accounts;
mod migrations;
mod oidc;
mod sessions;
mod tokens;
mod workspaces;
