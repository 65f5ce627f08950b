//! The API's handlers, by capability. Each parses its input, calls one domain function that
//! does the work, and maps the result; none holds a use-case of its own.

pub mod account;
pub mod admin;
pub mod admin_workspaces;
pub mod ai;
pub mod auth;
pub mod health;
pub mod invitations;
pub mod local_accounts;
pub mod pools;
pub mod sites;
pub mod workspace;
