//! The audit log: who did what to whom, with what outcome, from where, in which request.
//! Append-only — this module only inserts and reads, no API edits or deletes a record, and
//! the database itself refuses UPDATE, DELETE and TRUNCATE on the table. Readable by admins
//! and auditors. Never put a secret in `detail`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;
use crate::schema::audit_log;
use crate::users::UserId;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignIn,
    /// A local account's registration (issue #14: a failed one is not a sign-in).
    Register,
    SignOut,
    TokenCreate,
    TokenRevoke,
    SessionRevoke,
    RoleGrant,
    RoleRevoke,
    RoleDefine,
    RoleDelete,
    AccessLevelAssign,
    AccessLevelCreate,
    AccessLevelUpdate,
    AccessLevelDelete,
    UserDisable,
    UserEnable,
    UserDelete,
    PoolCreate,
    PoolUpdate,
    PoolDrain,
    PoolUndrain,
    PoolDelete,
    /// An admin or operator stopped a user's workspace.
    WorkspaceStop,
    /// An operator moved a user's workspace to another machine of its pool's engine.
    WorkspaceMove,
    /// A signed-in user was refused an admin route by the policy.
    AccessDenied,
    /// An admin made an invitation (invitation-only registration).
    InvitationCreate,
    /// An admin withdrew an unused invitation.
    InvitationRevoke,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SignIn => "sign_in",
            Action::Register => "register",
            Action::SignOut => "sign_out",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::SessionRevoke => "session.revoke",
            Action::RoleGrant => "role.grant",
            Action::RoleRevoke => "role.revoke",
            Action::RoleDefine => "role.define",
            Action::RoleDelete => "role.delete",
            Action::AccessLevelAssign => "access_level.assign",
            Action::AccessLevelCreate => "access_level.create",
            Action::AccessLevelUpdate => "access_level.update",
            Action::AccessLevelDelete => "access_level.delete",
            Action::UserDisable => "user.disable",
            Action::UserEnable => "user.enable",
            Action::UserDelete => "user.delete",
            Action::PoolCreate => "pool.create",
            Action::PoolUpdate => "pool.update",
            Action::PoolDrain => "pool.drain",
            Action::PoolUndrain => "pool.undrain",
            Action::PoolDelete => "pool.delete",
            Action::WorkspaceStop => "workspace.stop",
            Action::WorkspaceMove => "workspace.move",
            Action::AccessDenied => "access.denied",
            Action::InvitationCreate => "invitation.create",
            Action::InvitationRevoke => "invitation.revoke",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Allowed, but it could not be done (e.g. removing the last admin).
    Failure,
    /// Refused by the policy.
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    /// The outcome of an attempt that ended in `result`.
    pub fn of<T>(result: &Result<T, ApiError>) -> Self {
        match result {
            Ok(_) => Outcome::Success,
            Err(ApiError::Forbidden(_)) => Outcome::Denied,
            Err(_) => Outcome::Failure,
        }
    }
}

/// Who is acting and from where: taken from the request by the web layer, or made for the
/// command line.
#[derive(Debug, Clone)]
pub struct Audit {
    pub actor_id: Option<UserId>,
    pub actor: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl Audit {
    /// An action taken on the server's command line (`platform admin …`).
    pub fn command_line() -> Self {
        Audit {
            actor_id: None,
            actor: "command line".to_owned(),
            ip: None,
            request_id: None,
        }
    }

    /// The same context, acting as someone the request just identified (e.g. at sign-in).
    pub fn as_user(mut self, id: UserId, label: &str) -> Self {
        self.actor_id = Some(id);
        self.actor = label.to_owned();
        self
    }

    /// Appends one record.
    pub async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        action: Action,
        target: Option<&str>,
        outcome: Outcome,
        detail: serde_json::Value,
    ) -> QueryResult<()> {
        // PostgreSQL's text and jsonb cannot hold U+0000, which a client may well send (a
        // refused name is still recorded): it is written as U+FFFD instead.
        let target = target.map(storable);
        let detail = storable_json(detail);
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::actor_id.eq(self.actor_id.map(|id| id.0)),
                audit_log::actor.eq(&self.actor),
                audit_log::action.eq(action.as_str()),
                audit_log::target.eq(target.as_deref()),
                audit_log::outcome.eq(outcome.as_str()),
                audit_log::ip.eq(&self.ip),
                audit_log::request_id.eq(&self.request_id),
                audit_log::detail.eq(detail),
            ))
            .execute(conn)
            .await?;
        tracing::info!(
            action = action.as_str(),
            target = target.as_deref(),
            outcome = outcome.as_str(),
            "audited"
        );
        Ok(())
    }
}

/// `text` as PostgreSQL can store it: any U+0000 becomes U+FFFD.
fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}").into()
    } else {
        text.into()
    }
}

/// `value` with [`storable`] strings and keys throughout.
fn storable_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Value::String(storable(&s).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (storable(&k).into_owned(), storable_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The target string of a user.
pub fn user_target(id: UserId) -> String {
    format!("user:{id}")
}

/// One record, as the audit API shows it.
#[derive(Debug, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
pub struct Record {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    /// The actor's e-mail or name at the time, `anonymous`, or `command line`.
    pub actor: String,
    /// e.g. `sign_in`, `role.grant`, `user.disable`, `access.denied`.
    pub action: String,
    /// e.g. `user:<id>`, `token:<id>`, `role:<name>`.
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Filters of the audit log; all optional, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// The acting user's id.
    pub actor: Option<Uuid>,
    /// An action, e.g. `role.grant`; a trailing `*` matches a prefix (`role.*`).
    pub action: Option<String>,
    /// A target, e.g. `user:<id>`.
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// Records at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Records before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Records older than this id: pass the last id of a page to get the next one.
    pub before: Option<i64>,
    /// 1 to 500, default 100.
    pub limit: Option<i64>,
}

/// Records matching the filter, newest first.
pub async fn search(conn: &mut AsyncPgConnection, f: &Filter) -> Result<Vec<Record>, ApiError> {
    let limit = f.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("limit", "limit must be 1 to 500"));
    }
    if let Some(outcome) = &f.outcome
        && !["success", "failure", "denied"].contains(&outcome.as_str())
    {
        return Err(ApiError::validation(
            "outcome",
            "outcome must be success, failure or denied",
        ));
    }
    if let (Some(since), Some(until)) = (f.since, f.until)
        && since > until
    {
        return Err(ApiError::validation(
            "since",
            "since must not be after until",
        ));
    }
    let mut query = audit_log::table.into_boxed();
    if let Some(actor) = f.actor {
        query = query.filter(audit_log::actor_id.eq(actor));
    }
    if let Some(action) = &f.action {
        query = match action.strip_suffix('*') {
            Some(prefix) => {
                let escaped = crate::db::escape_like(prefix);
                query.filter(audit_log::action.like(format!("{escaped}%")))
            }
            None => query.filter(audit_log::action.eq(action.clone())),
        };
    }
    if let Some(target) = &f.target {
        query = query.filter(audit_log::target.eq(target.clone()));
    }
    if let Some(outcome) = &f.outcome {
        query = query.filter(audit_log::outcome.eq(outcome.clone()));
    }
    if let Some(since) = f.since {
        query = query.filter(audit_log::at.ge(since));
    }
    if let Some(until) = f.until {
        query = query.filter(audit_log::at.lt(until));
    }
    if let Some(before) = f.before {
        query = query.filter(audit_log::id.lt(before));
    }
    Ok(query
        .order(audit_log::id.desc())
        .limit(limit)
        .select(Record::as_select())
        .load(conn)
        .await?)
}
