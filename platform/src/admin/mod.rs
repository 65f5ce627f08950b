//! Administration: users, roles, access levels, the audit log, identity providers, the
//! fleet and its workspaces, served under `/api/v1/admin/…` by the web layer (`web::handlers::admin`) and, for
//! roles and whole accounts, on the server's command line ([`cli`]). Who may call what is
//! the policy's business (the guard decides before a handler runs); the rules that keep the
//! platform administrable — never remove or disable the last admin — live in the functions
//! here and in `authz::roles`. Every change here is audited, also when it is refused.

pub mod accounts;
pub mod cli;
pub mod users;
pub mod workspaces;

use crate::audit::{Action, Audit, Outcome};
use crate::db;
use crate::error::ApiError;

/// Writes the audit record of an attempt, then hands back its result.
pub async fn audited<T>(
    db: &db::Pool,
    audit: &Audit,
    action: Action,
    target: &str,
    detail: serde_json::Value,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut detail = detail;
    if let (Err(e), Some(map)) = (&result, detail.as_object_mut()) {
        map.insert("reason".to_owned(), e.to_string().into());
    }
    let mut conn = db.get().await?;
    audit
        .record(
            &mut conn,
            action,
            Some(target),
            Outcome::of(&result),
            detail,
        )
        .await?;
    result
}
