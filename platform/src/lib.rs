//! The WebSplat Platform control plane: sign-in (OIDC, GitHub, local accounts), browser
//! sessions and API tokens, authorization with casbin (roles, access levels, audit log),
//! over PostgreSQL and Redis. `main.rs` is a thin CLI over this.

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod kv;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod schema;
pub mod telemetry;
pub mod tenants;
pub mod users;
pub mod web;

pub use app::{AppState, Application};
pub use config::Config;
