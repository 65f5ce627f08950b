//! Admission: whether a start may go now, must wait in its pool's queue, or is refused, and
//! what it starts on. In order of preference: a returning person's next container already
//! running, a warm runtime for a first sign-in, then (under the pool's capacity and
//! concurrency) a returning person's next container made and not started, else a cold
//! container. One transaction under an advisory lock, so the counts hold across replicas;
//! every warm container is taken by a `DELETE … RETURNING` inside it, so no two starts on
//! any replicas ever get the same one. Before any of that, what sign-ups may take (issue
//! #15): the workspaces an access level's users run at once, and starts per user per hour
//! (a sign-in over that limit keeps the workspace already running). Nothing here touches a
//! container.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::identity::TenantKeys;
use super::lifecycle::{Tenants, Trigger};
use super::returning;
use super::store::{self, NewTenant, State, Tenant, TenantId, Workspace};
use super::warm::{self, Claimed, StartKind};
use crate::authz::access_levels::{self, AccessLevel};
use crate::error::ApiError;
use crate::pools::{self, Pool};
use crate::users::{self, UserId};

pub(super) enum Admitted {
    Existing {
        workspace: Workspace,
        tenant: Tenant,
    },
    /// Its pool starts as many as it may at once: waiting in the queue, `ahead` before it.
    Queued {
        workspace: Workspace,
        tenant: Tenant,
        ahead: i64,
        replaced: Option<Box<Tenant>>,
    },
    New {
        workspace: Workspace,
        tenant: Tenant,
        secret: SecretString,
        level: Box<AccessLevel>,
        replaced: Option<Box<Tenant>>,
        /// A warm container it took (made ahead for it, or for any first sign-in), instead
        /// of a container to make.
        claimed: Option<Box<Claimed>>,
    },
}

/// A warm container taken for one start: what its tenant row records. Its row's id becomes
/// its tenant's id, which its claim key was derived from.
struct Taken {
    id: TenantId,
    image: String,
    container_name: String,
    claimed: Claimed,
    /// The secret both sides derive from the claim key and the user.
    secret: SecretString,
}

impl Taken {
    /// Takes the container made for row `id` (a warm runtime's or a next container's), which
    /// the claim binds to `user` with the claim key derived for that id.
    fn new(
        keys: &TenantKeys,
        user: UserId,
        id: uuid::Uuid,
        (image, container_name): (String, String),
        (kind, container, address): (StartKind, String, Option<String>),
    ) -> Self {
        let id = TenantId(id);
        Taken {
            id,
            image,
            container_name,
            claimed: Claimed {
                container,
                address,
                claim_key: keys.claim_key(id.0),
                kind,
            },
            secret: keys.secret(id, user),
        }
    }
}

impl Tenants {
    /// One transaction under an advisory lock, so the counts hold across replicas.
    pub(super) async fn admit(&self, user: UserId, trigger: Trigger) -> Result<Admitted, ApiError> {
        // Whether the engine answers is asked beside the queries below and heard only once a
        // start needs it: a start the engine cannot carry out is refused in words with
        // nothing recorded, and one whose workspace is up or on its way waits for no ping.
        let engine = {
            let orchestrator = std::sync::Arc::clone(&self.orchestrator);
            tokio::spawn(async move { orchestrator.ping().await.map_err(|e| e.to_string()) })
        };
        let mut conn = self.db.get().await?;
        conn.transaction(async |conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(72010002)")
                .execute(conn)
                .await?;
            let Some(account) = users::find(conn, user).await? else {
                return Err(ApiError::NotFound("there is no such user".to_owned()));
            };
            if account.is_disabled() {
                return Err(ApiError::Forbidden("this account is disabled".to_owned()));
            }
            let workspace = self.workspace(conn, &account).await?;
            let mut replaced = None;
            let live = store::live(conn, user).await?;
            if let Some(live) = &live {
                let fresh_login_replaces = trigger == Trigger::SignIn && live.state == State::Ready;
                if !fresh_login_replaces {
                    return Ok(Admitted::Existing {
                        workspace,
                        tenant: live.clone(),
                    });
                }
            }
            engine_answers(engine).await?;
            let level = access_levels::require(conn, &account.access_level).await?;
            // A new container from here on: one more start of this person's.
            if let Err(retry_after) = self.count_start(user).await? {
                return match live {
                    // A sign-in over the limit keeps the workspace already running.
                    Some(live) => Ok(Admitted::Existing { workspace, tenant: live }),
                    None => Err(too_many_starts(self.config.starts_per_user_per_hour, retry_after)),
                };
            }
            if let Some(live) = live
                && store::transition(conn, live.id, State::Stopping, Some("replaced by a new sign-in")).await?
            {
                replaced = Some(Box::new(live));
            }
            let pool = pools::store::serving(conn, &level.name).await?;
            if pool.draining {
                return Err(ApiError::Draining(format!(
                    "No new workspaces start in the {} pool right now: the operators are draining it. Please try again later.",
                    pool.name
                )));
            }
            if let Some(cap) = level.max_running_workspaces
                && live_on_level(conn, &level.name).await? >= i64::from(cap)
            {
                return Err(level_at_capacity(&level.name, cap));
            }
            let hash = self.spec_hash(&level);
            // Already running and counted against the pool: no capacity to check.
            let running = match self.take_returning(conn, user, &hash, "ready").await? {
                Some(taken) => Some(taken),
                None => self.take_first_warm(conn, user, &pool, &level, &hash).await?,
            };
            if let Some(taken) = running {
                let tenant = self.insert_taken(conn, user, &pool, &level, &taken).await?;
                let workspace = store::find_workspace(conn, user).await?.unwrap_or(workspace);
                return Ok(Admitted::New {
                    workspace,
                    tenant,
                    secret: taken.secret,
                    level: Box::new(level),
                    replaced,
                    claimed: Some(Box::new(taken.claimed)),
                });
            }
            let in_use = pools::store::figures(conn)
                .await?
                .into_iter()
                .find(|(p, _)| *p == *pool.name)
                .map_or(0, |(_, f)| f.in_use());
            if in_use >= i64::from(pool.max_running) {
                return Err(at_capacity(&pool));
            }
            let starting = store::count(conn, &State::SPAWNING, Some(&pool.name)).await?;
            let waiting = store::count(conn, &[State::Queued], Some(&pool.name)).await?;
            let id = TenantId::new();
            let container_name = format!("websplat-{}-{}", self.config.deployment, id.0.simple());
            if starting >= i64::from(pool.max_starting) || waiting > 0 {
                if waiting >= i64::from(pool.queue_max) {
                    return Err(ApiError::AtCapacity(
                        format!(
                            "{waiting} people are already waiting for their workspace to start, as many as the queue holds. Please try again in a minute."
                        ),
                        Duration::from_secs(30),
                    ));
                }
                let tenant = store::insert(
                    conn,
                    NewTenant {
                        id,
                        user,
                        pool: &pool.name,
                        access_level: &level.name,
                        image: &self.config.image,
                        container_name: &container_name,
                        secret_hash: None,
                    },
                )
                .await?;
                return Ok(Admitted::Queued {
                    workspace,
                    tenant,
                    ahead: waiting,
                    replaced,
                });
            }
            // Made ahead with the person's volume and never started: start it, make none.
            if let Some(taken) = self.take_returning(conn, user, &hash, "created").await? {
                let tenant = self.insert_taken(conn, user, &pool, &level, &taken).await?;
                return Ok(Admitted::New {
                    workspace,
                    tenant,
                    secret: taken.secret,
                    level: Box::new(level),
                    replaced,
                    claimed: Some(Box::new(taken.claimed)),
                });
            }
            let secret = self.keys.secret(id, user);
            let tenant = store::insert(
                conn,
                NewTenant {
                    id,
                    user,
                    pool: &pool.name,
                    access_level: &level.name,
                    image: &self.config.image,
                    container_name: &container_name,
                    secret_hash: Some(Sha256::digest(secret.expose_secret().as_bytes()).as_slice()),
                },
            )
            .await?;
            Ok(Admitted::New {
                workspace,
                tenant,
                secret,
                level: Box::new(level),
                replaced,
                claimed: None,
            })
        })
        .await
    }

    /// Counts one start of `user`'s against the starts per user per hour;
    /// `Err(retry_after)` beyond it. In Redis, so every replica counts alike.
    async fn count_start(&self, user: UserId) -> Result<Result<(), Duration>, ApiError> {
        Ok(crate::ratelimit::hit(
            self.routing.kv(),
            &format!("workspace_start:user:{user}"),
            self.config.starts_per_user_per_hour,
            Duration::from_secs(3600),
        )
        .await?)
    }

    /// The person's next container in `state` ("ready" or "created"), made from this spec,
    /// taken for them. One without a container yet is skipped.
    async fn take_returning(
        &self,
        conn: &mut AsyncPgConnection,
        user: UserId,
        hash: &str,
        state: &str,
    ) -> Result<Option<Taken>, ApiError> {
        let Some(next) = returning::take(conn, user, hash, state).await? else {
            return Ok(None);
        };
        let Some(container) = next.container_id.clone() else {
            return Ok(None);
        };
        let kind = if state == "ready" {
            StartKind::ReturningStarted
        } else {
            StartKind::ReturningMade
        };
        Ok(Some(Taken::new(
            &self.keys,
            user,
            next.id,
            (next.image, next.container_name),
            (kind, container, next.address),
        )))
    }

    /// A first sign-in takes a runtime already started for it, if the pool keeps one of
    /// this spec; its volume becomes the person's.
    async fn take_first_warm(
        &self,
        conn: &mut AsyncPgConnection,
        user: UserId,
        pool: &Pool,
        level: &AccessLevel,
        hash: &str,
    ) -> Result<Option<Taken>, ApiError> {
        if store::latest(conn, user).await?.is_some() {
            return Ok(None);
        }
        let Some(taken) = warm::take(conn, &pool.name, &level.name, hash).await? else {
            return Ok(None);
        };
        let Some(container) = taken.container_id.clone() else {
            return Ok(None);
        };
        store::set_volume(conn, user, &taken.volume).await?;
        Ok(Some(Taken::new(
            &self.keys,
            user,
            taken.id,
            (taken.image, taken.container_name),
            (StartKind::FirstWarm, container, taken.address),
        )))
    }

    /// The tenant row of a start on a taken warm container: it knows the container already.
    async fn insert_taken(
        &self,
        conn: &mut AsyncPgConnection,
        user: UserId,
        pool: &Pool,
        level: &AccessLevel,
        taken: &Taken,
    ) -> Result<Tenant, ApiError> {
        let id = taken.id;
        let tenant = store::insert(
            conn,
            NewTenant {
                id,
                user,
                pool: &pool.name,
                access_level: &level.name,
                image: &taken.image,
                container_name: &taken.container_name,
                secret_hash: Some(
                    Sha256::digest(taken.secret.expose_secret().as_bytes()).as_slice(),
                ),
            },
        )
        .await?;
        store::set_container(conn, id, &taken.claimed.container).await?;
        if let Some(address) = &taken.claimed.address {
            store::set_address(conn, id, address).await?;
        }
        Ok(store::get(conn, id).await?.unwrap_or(tenant))
    }
}

/// The engine's answer to the ping admission started: a start it cannot carry out is a 503.
async fn engine_answers(ping: tokio::task::JoinHandle<Result<(), String>>) -> Result<(), ApiError> {
    match ping.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the container engine does not answer");
            Err(ApiError::Unavailable("the container engine"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "the container engine's ping did not finish");
            Err(ApiError::Unavailable("the container engine"))
        }
    }
}

/// Workspaces of `level` running or on their way up (queued included).
async fn live_on_level(conn: &mut AsyncPgConnection, level: &str) -> QueryResult<i64> {
    use crate::schema::tenants;
    let live: Vec<&str> = State::LIVE.iter().map(|s| s.as_str()).collect();
    tenants::table
        .filter(tenants::access_level.eq(level))
        .filter(tenants::state.eq_any(live))
        .count()
        .get_result(conn)
        .await
}

/// The level's own cap is reached: said so that the dashboard can show it as it is.
fn level_at_capacity(level: &str, cap: i32) -> ApiError {
    ApiError::AtCapacity(
        format!(
            "Every workspace the {level} access level may run at once is in use ({cap} of {cap}). Please try again in a few minutes, or ask an administrator about another access level."
        ),
        Duration::from_secs(60),
    )
}

/// The person started as many workspaces this hour as anyone may.
fn too_many_starts(per_hour: u32, retry_after: Duration) -> ApiError {
    let minutes = retry_after.as_secs().div_ceil(60).max(1);
    ApiError::TooMany(
        format!(
            "You have started your workspace {per_hour} times in the last hour, as often as anyone may. Please try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        ),
        retry_after,
    )
}

fn at_capacity(pool: &Pool) -> ApiError {
    let cap = pool.max_running;
    ApiError::AtCapacity(
        if pool.name == pools::DEFAULT {
            format!(
                "The platform is already running as many workspaces as it may ({cap}). Please try again in a few minutes."
            )
        } else {
            format!(
                "Every workspace of the {} pool is in use ({cap} of {cap}). Please try again in a few minutes.",
                pool.name
            )
        },
        Duration::from_secs(60),
    )
}
