//! The web layer: everything HTTP, and the only part of the platform that sees a request or
//! [`AppState`](app::AppState). It parses requests, asks the domain modules (`auth`,
//! `authz`, `users`, `admin`, `tenants`, `audit`) to do the work with plain arguments, and
//! maps their results to responses. Nothing outside this module imports from it, except
//! `main.rs` (which starts the server).
//!
//! - [`app`]: `AppState` and the server; [`routes`]: every route once, with its policy
//!   owner, rate class and OpenAPI documentation; [`openapi`]: the document built from it.
//! - [`guard`]: authentication, authorization and rate limits before any handler;
//!   [`extract`]: what handlers take from a request (`CurrentUser`, `Audit`, the address).
//! - [`middleware`]: request ids and logs, cross-origin refusal; [`cookies`]: cookie names.
//! - [`handlers`]: the API's thin handlers; [`pages`]: the HTML pages and static files;
//!   [`proxy`]: the workspace origins, reverse-proxied to the tenants; [`sites`]: the
//!   published sites' origins, served from storage.

pub mod app;
pub mod cookies;
pub mod extract;
pub mod guard;
pub mod handlers;
pub mod middleware;
pub mod openapi;
pub mod pages;
pub mod proxy;
pub mod routes;
pub mod sites;
