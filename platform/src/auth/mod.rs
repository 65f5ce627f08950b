//! Sign-in and who-is-calling: external providers (OIDC, GitHub), local accounts, browser
//! sessions, API tokens, CSRF defence and the `CurrentUser` extractor.

pub mod cookies;
pub mod csrf;
pub mod extract;
pub mod github;
pub mod http;
pub mod local;
pub mod login_state;
pub mod oidc;
pub mod providers;
pub mod return_to;
pub mod secret;
pub mod session;
pub mod tokens;
