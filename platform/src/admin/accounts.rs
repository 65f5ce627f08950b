//! What an admin does to an account as a whole — disable, enable, delete — as functions the
//! admin API and `platform admin …` both call, so both end the same sessions, revoke the
//! same tokens, stop the same workspace and write the same audit record (also for a
//! refusal, such as the last admin). Never called without an [`Audit`] saying who acts.

use serde::Serialize;
use utoipa::ToSchema;

use super::{audited, users};
use crate::audit::{self, Action, Audit};
use crate::auth::session::SessionStore;
use crate::authz::Authz;
use crate::db;
use crate::error::ApiError;
use crate::tenants::Tenants;
use crate::users::UserId;

/// What the account use-cases act on besides PostgreSQL.
pub struct Accounts<'a> {
    pub db: &'a db::Pool,
    pub sessions: &'a SessionStore,
    pub tenants: &'a Tenants,
    pub authz: &'a Authz,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Disabled {
    /// Sessions ended by this call.
    pub sessions_ended: usize,
    /// API tokens revoked by this call.
    pub tokens_revoked: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// The user's workspace volume, if they had one.
    pub volume: Option<String>,
    /// Whether the volume was deleted (else it stays, for an operator to keep or remove).
    pub volume_deleted: bool,
}

impl Accounts<'_> {
    /// Disables an account: its sessions and API tokens end at once and its workspace
    /// stops. The last admin cannot be disabled.
    pub async fn disable(&self, audit: &Audit, id: UserId) -> Result<Disabled, ApiError> {
        let result = async {
            let mut conn = self.db.get().await?;
            users::set_disabled(&mut conn, id, true).await?;
            // Also when it already was disabled: whatever is still live ends now.
            let tokens_revoked = crate::auth::tokens::revoke_all(&mut conn, id).await?;
            let sessions_ended = self.sessions.revoke_all(id).await?;
            self.tenants.stop(id, "the account was disabled").await?;
            Ok(Disabled {
                sessions_ended,
                tokens_revoked,
            })
        }
        .await;
        let detail = match &result {
            Ok(d) => {
                serde_json::json!({ "sessions_ended": d.sessions_ended, "tokens_revoked": d.tokens_revoked })
            }
            Err(_) => serde_json::json!({}),
        };
        audited(
            self.db,
            audit,
            Action::UserDisable,
            &audit::user_target(id),
            detail,
            result,
        )
        .await
    }

    /// Enables a disabled account. Its old sessions and tokens stay ended.
    pub async fn enable(&self, audit: &Audit, id: UserId) -> Result<(), ApiError> {
        let result = async {
            let mut conn = self.db.get().await?;
            users::set_disabled(&mut conn, id, false).await
        }
        .await;
        audited(
            self.db,
            audit,
            Action::UserEnable,
            &audit::user_target(id),
            serde_json::json!({}),
            result,
        )
        .await
        .map(drop)
    }

    /// Deletes an account: its sessions end, its containers are removed, and its workspace
    /// volume too when `with_volume`. The last admin cannot be deleted.
    pub async fn delete(
        &self,
        audit: &Audit,
        id: UserId,
        with_volume: bool,
    ) -> Result<Deleted, ApiError> {
        let result = async {
            let mut conn = self.db.get().await?;
            let workspace = crate::tenants::store::find_workspace(&mut conn, id).await?;
            users::delete(&mut conn, id).await?;
            drop(conn);
            self.sessions.revoke_all(id).await?;
            self.tenants
                .remove_user(id, workspace.as_ref(), with_volume)
                .await?;
            self.authz.changed().await.map_err(ApiError::Internal)?;
            Ok(Deleted {
                volume_deleted: with_volume && workspace.is_some(),
                volume: workspace.map(|w| w.volume),
            })
        }
        .await;
        let detail = match &result {
            Ok(d) => serde_json::json!({ "volume": d.volume, "volume_deleted": d.volume_deleted }),
            Err(_) => serde_json::json!({ "delete_volume": with_volume }),
        };
        audited(
            self.db,
            audit,
            Action::UserDelete,
            &audit::user_target(id),
            detail,
            result,
        )
        .await
    }
}
