//! `platform admin …`: role changes and whole-account changes (disable, enable, delete)
//! made on the server's command line, with the same configuration as `serve`. This is how
//! the first admin is made (there is no built-in account or password). Accounts change
//! through the same functions as the admin API (`admin::accounts`). Changes are audited
//! (actor "command line") and announced to the running replicas, which apply them within a
//! second.

use anyhow::Context;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::accounts::Accounts;
use crate::audit::{self, Action, Audit, Outcome};
use crate::auth::session::SessionStore;
use crate::authz::{Authz, roles};
use crate::config::Config;
use crate::db;
use crate::kv::Kv;
use crate::metrics::Metrics;
use crate::schema::{local_credentials, users};
use crate::users::UserId;

/// A user named by id or e-mail address; an e-mail shared by several accounts is refused
/// with their ids, so the operator picks one.
pub async fn resolve_user(conn: &mut AsyncPgConnection, who: &str) -> anyhow::Result<UserId> {
    if let Ok(id) = who.parse::<uuid::Uuid>() {
        let exists: bool = diesel::select(diesel::dsl::exists(users::table.find(UserId(id))))
            .get_result(conn)
            .await?;
        anyhow::ensure!(exists, "there is no user with the id {id}");
        return Ok(UserId(id));
    }
    let email = who.trim().to_lowercase();
    let mut ids: Vec<UserId> = users::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(users.email) = ")
                .bind::<diesel::sql_types::Text, _>(&email),
        )
        .select(users::id)
        .load(conn)
        .await?;
    let local: Vec<UserId> = local_credentials::table
        .filter(local_credentials::email.eq(&email))
        .select(local_credentials::user_id)
        .load(conn)
        .await?;
    ids.extend(local);
    ids.sort_by_key(|id| id.0);
    ids.dedup();
    match ids.as_slice() {
        [] => anyhow::bail!(
            "no user has the e-mail address {email:?}; sign in once first, or give the user's id"
        ),
        [one] => Ok(*one),
        many => anyhow::bail!(
            "several users have the e-mail address {email:?}; give one of their ids: {}",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Grants (`grant = true`) or removes a role; returns a sentence for the operator.
pub async fn change_role(
    config: &Config,
    who: &str,
    role: &str,
    grant: bool,
) -> anyhow::Result<String> {
    db::migrate(&config.database.url).await?;
    let pool = db::pool(&config.database)?;
    let kv = Kv::new(&config.redis)?;
    let authz = Authz::start(config, pool.clone(), kv, Metrics::new()?).await?;
    let mut conn = pool.get().await.context("no PostgreSQL connection")?;
    let user = resolve_user(&mut conn, who).await?;
    let role = roles::parse_name(role).map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = conn
        .transaction(async |conn| {
            roles::lock(conn).await?;
            if grant {
                roles::grant(conn, user, &role).await
            } else {
                roles::revoke(conn, user, &role).await.map(|()| true)
            }
        })
        .await;
    let outcome = Outcome::of(&result);
    let detail = match &result {
        Ok(_) => serde_json::json!({ "role": role }),
        Err(e) => serde_json::json!({ "role": role, "reason": e.to_string() }),
    };
    let action = if grant {
        Action::RoleGrant
    } else {
        Action::RoleRevoke
    };
    Audit::command_line()
        .record(
            &mut conn,
            action,
            Some(&audit::user_target(user)),
            outcome,
            detail,
        )
        .await?;
    let changed = result.map_err(|e| anyhow::anyhow!("{e}"))?;
    authz.changed().await?;
    Ok(match (grant, changed) {
        (true, true) => format!("user {user} now holds the role {role:?}"),
        (true, false) => format!("user {user} already held the role {role:?}"),
        (false, _) => format!("user {user} no longer holds the role {role:?}"),
    })
}

/// What an account change on the command line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    Disable,
    Enable,
    /// Delete the account; `delete_volume` also deletes its workspace volume, for good.
    Delete {
        delete_volume: bool,
    },
}

/// Disables, enables or deletes an account exactly as the admin API does (sessions end,
/// tokens are revoked, the workspace stops or is removed, one audit record); returns a
/// sentence for the operator.
pub async fn change_account(
    config: &Config,
    who: &str,
    change: AccountChange,
) -> anyhow::Result<String> {
    db::migrate(&config.database.url).await?;
    let pool = db::pool(&config.database)?;
    let kv = Kv::new(&config.redis)?;
    let metrics = Metrics::new()?;
    let authz = Authz::start(config, pool.clone(), kv.clone(), metrics.clone()).await?;
    let user = {
        let mut conn = pool.get().await.context("no PostgreSQL connection")?;
        resolve_user(&mut conn, who).await?
    };
    let sessions = SessionStore::new(kv.clone(), config.session.clone());
    let tenants = crate::tenants::connect(config, pool.clone(), kv, metrics).await?;
    let accounts = Accounts {
        db: &pool,
        sessions: &sessions,
        tenants: &tenants,
        authz: &authz,
    };
    let audit = Audit::command_line();
    Ok(match change {
        AccountChange::Disable => {
            let done = accounts.disable(&audit, user).await?;
            format!(
                "user {user} is disabled: {} session(s) ended, {} API token(s) revoked",
                done.sessions_ended, done.tokens_revoked
            )
        }
        AccountChange::Enable => {
            accounts.enable(&audit, user).await?;
            format!("user {user} is enabled (their old sessions and tokens stay ended)")
        }
        AccountChange::Delete { delete_volume } => {
            let done = accounts.delete(&audit, user, delete_volume).await?;
            match (done.volume, done.volume_deleted) {
                (Some(volume), true) => {
                    format!("user {user} is deleted, with their workspace volume {volume}")
                }
                (Some(volume), false) => format!(
                    "user {user} is deleted; their workspace volume {volume} is kept, for an operator to keep or remove"
                ),
                (None, _) => format!("user {user} is deleted (they had no workspace)"),
            }
        }
    })
}

/// Makes an invitation for invitation-only registration, as the admin API does (audited,
/// actor "command line"); returns the code and the address to send, shown this once.
pub async fn invite(
    config: &Config,
    email: Option<String>,
    days: Option<u32>,
    note: Option<String>,
) -> anyhow::Result<String> {
    use secrecy::ExposeSecret;

    use crate::auth::invitations::{self, NewInvitation};

    db::migrate(&config.database.url).await?;
    let pool = db::pool(&config.database)?;
    let mut conn = pool.get().await.context("no PostgreSQL connection")?;
    let input = NewInvitation {
        email,
        note: note.unwrap_or_default(),
        expires_in_days: days,
    };
    let made = invitations::invite(&mut conn, &Audit::command_line(), &input)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let code = made.code.expose_secret();
    let url = config
        .public_url
        .join(&invitations::registration_path(code));
    let bound = made
        .invitation
        .email
        .as_deref()
        .map(|e| format!(" for {e}"))
        .unwrap_or_default();
    let mode = if config.local_accounts.invitation_only {
        ""
    } else {
        "\n(registration is open to anyone now: set WEBSPLAT_REGISTRATION_INVITATION_ONLY=true to require invitations)"
    };
    Ok(format!(
        "invitation {}{bound}, valid until {}:\n  code: {code}\n  link: {url}{mode}",
        made.invitation.id,
        made.invitation.expires_at.format("%Y-%m-%d %H:%M UTC")
    ))
}
