//! The admin API and what it guards, one module per topic: roles, escalation, disabling,
//! access levels and their rate limits, the audit log, the first admin, policy changes
//! reaching every replica, and the console's Workspaces page and phone width.

mod access_levels;
mod audit;
mod hostile;
mod roles;
mod users;
mod workspaces;
