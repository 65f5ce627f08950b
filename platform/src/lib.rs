//! The WebSplat Platform control plane: sign-in (OIDC, GitHub, local accounts), browser
//! sessions and API tokens, over PostgreSQL and Redis. `main.rs` is a thin CLI over this.

pub mod app;
pub mod auth;
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
pub mod users;
pub mod web;

pub use app::{AppState, Application};
pub use config::Config;
