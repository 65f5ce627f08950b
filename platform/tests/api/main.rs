//! API tests: the platform served in-process on a real port, against real PostgreSQL,
//! Redis and identity providers (the third-party `oidc-provider-mock`, plus local servers
//! speaking GitHub's and an OIDC provider's wire format where a test must craft answers).

use websplat_test_support as support;

mod forge;
mod forms;
mod github;
mod helpers;

mod admin;
mod admin_cli;
mod authz;
mod fuzz;
mod fuzz_cases;
mod gateway;
mod health;
mod lifecycle_rules;
mod local_accounts;
mod migrations;
mod models;
mod not_found;
mod oidc;
mod pools;
mod sessions;
mod signup;
mod sites;
mod tokens;
mod workspaces;
