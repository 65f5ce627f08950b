//! Moving a workspace to another machine of its pool's engine, for operators (the console
//! and `platform pools move`): the workspace is stopped and marked as moving (its user's
//! starts are refused in words meanwhile), its volume is copied by the engine, and it is
//! pinned to the new machine; on failure it stays pinned where its data is. Each step is
//! told to `progress` as it happens. It never runs a workspace elsewhere on an empty volume.

use super::lifecycle::Tenants;
use super::orchestrator::Machine;
use super::store;
use crate::error::ApiError;
use crate::users::UserId;

/// The pin of a workspace being moved: `moving:<from>:<to>`.
const MOVING: &str = "moving:";

/// Where a pin says the data is: the machine itself, or the source of a move in progress
/// (the copy is not done until the pin changes).
pub fn data_node(pin: &str) -> &str {
    pin.strip_prefix(MOVING)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or(pin)
}

/// Whether a pin says a move is under way.
pub fn is_moving(pin: &str) -> bool {
    pin.starts_with(MOVING)
}

impl Tenants {
    /// Moves `user`'s workspace to the machine `to` (its id or name); returns the machine.
    pub async fn move_workspace(
        &self,
        user: UserId,
        to: &str,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Machine, ApiError> {
        let (workspace, pool) = {
            let mut conn = self.db.get().await?;
            let workspace = store::find_workspace(&mut conn, user)
                .await?
                .ok_or_else(|| ApiError::NotFound("This user has no workspace.".to_owned()))?;
            let pool = store::latest(&mut conn, user)
                .await?
                .map(|t| t.pool)
                .ok_or_else(|| {
                    ApiError::Conflict(
                        "This workspace has never run: its data is on no machine yet.".to_owned(),
                    )
                })?;
            (workspace, pool)
        };
        let Some(pin) = workspace.node.as_deref() else {
            return Err(ApiError::Conflict(
                "This workspace is on no machine of several (its pool runs on one engine): there is nowhere to move it.".to_owned(),
            ));
        };
        let from = data_node(pin).to_owned();
        let driver = self.driver(&pool);
        let machines = driver.machines().await.map_err(|e| {
            tracing::warn!(%pool, error = %e, "the pool's engine does not answer");
            ApiError::Unavailable("the pool's container engine")
        })?;
        let target = machines
            .iter()
            .find(|m| m.id == to || m.name == to)
            .cloned()
            .ok_or_else(|| {
                ApiError::validation(
                    "node",
                    format!("there is no machine {to:?} in the pool {pool:?}"),
                )
            })?;
        if target.id == from {
            return Err(ApiError::Conflict(format!(
                "This workspace is already on {}.",
                target.name
            )));
        }
        if target.state != "ready" || !target.active {
            return Err(ApiError::Conflict(format!(
                "The machine {} is {} and takes no workspace now.",
                target.name,
                if target.active {
                    target.state.as_str()
                } else {
                    "drained"
                }
            )));
        }
        progress(format!("stopping the workspace on {from}"));
        store::repin_workspace(
            &mut *self.db.get().await?,
            user,
            &format!("{MOVING}{from}:{}", target.id),
        )
        .await?;
        self.stop(user, "moved to another machine by an operator")
            .await?;
        let copied = driver
            .copy_volume(&workspace.volume, &from, &target.id, progress)
            .await;
        let mut conn = self.db.get().await?;
        match copied {
            Ok(()) => {
                store::repin_workspace(&mut conn, user, &target.id).await?;
                progress(format!(
                    "pinned to {}: the next start runs there; the old copy stays on {from} until an operator removes it",
                    target.name
                ));
                Ok(target)
            }
            Err(e) => {
                store::repin_workspace(&mut conn, user, &from).await?;
                tracing::warn!(%user, error = %e, "a workspace move failed");
                Err(ApiError::Conflict(format!(
                    "The data could not be copied ({e}); the workspace stays on {from}."
                )))
            }
        }
    }
}
