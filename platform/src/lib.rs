//! The WebSplat Platform control plane: sign-in (OIDC, GitHub, local accounts), browser
//! sessions and API tokens, authorization with casbin (roles, access levels, audit log),
//! workspaces (one tenant runtime per signed-in user) and administration, over PostgreSQL,
//! Redis and Docker. `main.rs` is a thin CLI over this.
//!
//! [`web`] is the HTTP surface (server, routes, guard, handlers, pages); every other module
//! is the domain, which takes what it needs as arguments and never sees a request or
//! `AppState`.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod config;
pub mod db;
pub mod error;
pub mod gateway;
pub mod kv;
pub mod mail;
pub mod metrics;
pub mod pools;
pub mod ratelimit;
pub mod schema;
pub mod sites;
pub mod telemetry;
pub mod tenants;
pub mod users;
pub mod web;

pub use config::Config;
pub use web::app::{AppState, Application};
