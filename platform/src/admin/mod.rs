//! The admin API: users, roles, access levels, the audit log, identity providers and the
//! fleet, under `/api/v1/admin/…`. Who may call what is the policy's business (the guard
//! decides before a handler runs); the rules that keep the platform administrable — never
//! remove or disable the last admin — live in the functions here and in `authz::roles`.

pub mod cli;
pub mod users;
