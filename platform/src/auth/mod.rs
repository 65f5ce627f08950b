//! Sign-in and who-is-calling: external providers (OIDC, GitHub), local accounts, browser
//! sessions, API tokens, CSRF defence, what a new account starts with ([`onboarding`]) and
//! who a credential belongs to ([`principal`]). The HTTP side (sign-in routes, cookies, the
//! `CurrentUser` extractor) is in the web layer; nothing here sees a request.

pub mod csrf;
pub mod flow;
pub mod github;
pub mod hasher;
pub mod invitations;
pub mod local;
pub mod login_state;
pub mod oidc;
pub mod onboarding;
pub mod principal;
pub mod providers;
pub mod return_to;
pub mod secret;
pub mod session;
pub mod tokens;
pub mod verification;
