//! The admin API and what it guards, one module per topic: roles, escalation, disabling,
//! access levels and their rate limits, the audit log, the first admin, and policy changes
//! reaching every replica.

mod access_levels;
mod audit;
mod hostile;
mod roles;
mod users;
mod workspaces;
