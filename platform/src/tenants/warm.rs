//! Warm runtimes for first sign-ins: each pool keeps `warm_new` runtimes started ahead, for
//! the access level new users get, each with a fresh empty volume and no identity — only a
//! one-time claim key, derived from the platform's key and the runtime's row id (which its
//! tenant takes as its id), stored nowhere. A first sign-in claims one
//! atomically (`DELETE … FOR UPDATE SKIP LOCKED`, so two sign-ins on any replicas never get
//! the same one): the platform signs the claim with the key for the user, both sides derive
//! the tenant's secret from the key and the user, and the volume becomes the user's. No
//! container is made on that sign-in's path.
//!
//! Every replica's keeper tends them under a lock: a runtime past its time to live, made
//! from another image or spec (an access level's new limits), or beyond what its pool wants
//! is removed with its volume; missing ones are made. A warm runtime counts against its
//! pool's capacity. It has never served a request, so every sign-in still gets a fresh one.
//! This module must never hand a claim key to anything but the runtime it belongs to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::identity;
use super::lifecycle::Tenants;
use super::orchestrator::{ContainerSpec, Limits, label, runtime};
use crate::authz::access_levels::{self, AccessLevel};
use crate::pools;
use crate::schema::warm_runtimes;

/// A warm runtime's row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = warm_runtimes, check_for_backend(diesel::pg::Pg))]
pub struct WarmRuntime {
    pub id: Uuid,
    pub pool: String,
    pub access_level: String,
    pub image: String,
    pub spec_hash: String,
    pub container_name: String,
    pub container_id: Option<String>,
    pub address: Option<String>,
    pub volume: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What a start runs on: a container made ahead, or none (cold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    /// A container made on the start's path.
    Cold,
    /// A runtime started ahead for any first sign-in.
    FirstWarm,
    /// A returning person's next container, started ahead.
    ReturningStarted,
    /// A returning person's next container, made ahead and started on the path.
    ReturningMade,
}

impl StartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StartKind::Cold => "cold",
            StartKind::FirstWarm => "warm_new",
            StartKind::ReturningStarted => "returning_warm",
            StartKind::ReturningMade => "returning_made",
        }
    }
}

/// What admission hands the spawn when it took a warm container: the container, its
/// address if it runs, and its one-time claim key.
pub struct Claimed {
    pub container: String,
    pub address: Option<String>,
    pub claim_key: SecretString,
    pub kind: StartKind,
}

/// Takes the oldest ready runtime made for `level` from this spec in `pool`, atomically:
/// the row is gone for every other transaction at once.
pub async fn take(
    conn: &mut AsyncPgConnection,
    pool: &str,
    level: &str,
    spec_hash: &str,
) -> QueryResult<Option<WarmRuntime>> {
    diesel::sql_query(
        "DELETE FROM warm_runtimes WHERE id = \
           (SELECT id FROM warm_runtimes \
            WHERE pool = $1 AND access_level = $2 AND spec_hash = $3 AND state = 'ready' \
              AND expires_at > now() \
            ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING *",
    )
    .bind::<diesel::sql_types::Text, _>(pool)
    .bind::<diesel::sql_types::Text, _>(level)
    .bind::<diesel::sql_types::Text, _>(spec_hash)
    .get_result(conn)
    .await
    .optional()
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<WarmRuntime>> {
    warm_runtimes::table
        .find(id)
        .select(WarmRuntime::as_select())
        .first(conn)
        .await
        .optional()
}

impl Tenants {
    /// What every runtime of `level` is made from, less its identity: the spec a warm one
    /// must match to be claimed (see [`Tenants::spec_hash`]).
    pub(super) fn sized_env(&self, level: &AccessLevel) -> Vec<(String, String)> {
        vec![
            (runtime::env::LISTEN.to_owned(), runtime::listen_address()),
            (
                runtime::env::DATA_DIR.to_owned(),
                runtime::DATA_DIR.to_owned(),
            ),
            (
                runtime::env::STORAGE_QUOTA.to_owned(),
                format!("{}M", level.storage_mib),
            ),
            (
                runtime::env::MAX_UPLOAD.to_owned(),
                format!("{}M", level.max_upload_mib),
            ),
            // The level's largest upload holds for staged uploads too (their default is 1 GiB).
            (
                runtime::env::MAX_STAGED_UPLOAD.to_owned(),
                format!("{}M", level.max_upload_mib),
            ),
            (
                runtime::env::GATEWAY_URL.to_owned(),
                self.gateway_url.get().cloned().unwrap_or_default(),
            ),
        ]
    }

    /// The image's digest as the keeper last read it from the engine (empty until then).
    pub(super) fn image_digest(&self) -> String {
        self.image_digest
            .read()
            .ok()
            .and_then(|d| d.clone())
            .unwrap_or_default()
    }

    /// Reads the image's digest from the engine again: a rebuilt image under the same tag
    /// changes every warm container's spec hash, so they are remade.
    pub(super) async fn refresh_image_digest(&self) {
        match self.orchestrator.image_digest(&self.config.image).await {
            Ok(digest) => {
                if let Ok(mut d) = self.image_digest.write() {
                    *d = digest;
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the tenant image's digest"),
        }
    }

    /// A hash of the image (its name and digest) and everything a runtime of `level` is
    /// sized and hardened with.
    pub fn spec_hash(&self, level: &AccessLevel) -> String {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{:?}",
            self.config.image,
            self.image_digest(),
            env!("CARGO_PKG_VERSION"),
            level.cpu_millicores,
            level.memory_mib,
            self.config.pids_limit,
            self.config.tmp_mib,
            self.config.network,
            level.name,
            self.sized_env(level),
        );
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// One pass of the keeper: removes warm runtimes no pool wants as they are, and makes the
    /// missing ones. Returns (removed, made).
    #[tracing::instrument(skip_all)]
    pub async fn tend_warm(&self) -> anyhow::Result<(usize, usize)> {
        let mut conn = self.db.get().await?;
        let level = access_levels::get(&mut conn, &self.new_user_level).await?;
        let serving = pools::store::serving(&mut conn, &self.new_user_level)
            .await
            .ok();
        let wanted: HashMap<String, (i64, i32)> = pools::store::list(&mut conn)
            .await?
            .into_iter()
            .filter(|p| !p.draining && p.warm_new > 0)
            .filter(|p| serving.as_ref().is_some_and(|s| s.name == p.name))
            .map(|p| {
                (
                    p.name.to_string(),
                    (i64::from(p.warm_new), p.warm_ttl_seconds),
                )
            })
            .collect();
        let hash = level.as_ref().map(|l| self.spec_hash(l));
        let all: Vec<WarmRuntime> = warm_runtimes::table
            .order(warm_runtimes::created_at.asc())
            .select(WarmRuntime::as_select())
            .load(&mut conn)
            .await?;
        drop(conn);
        let mut kept: HashMap<String, i64> = HashMap::new();
        let mut removed = 0;
        for w in all {
            let keep_room = wanted.get(&w.pool).map_or(0, |(n, _)| *n);
            let have = kept.get(&w.pool).copied().unwrap_or(0);
            let fresh = Some(&w.spec_hash) == hash.as_ref()
                && w.access_level == self.new_user_level
                && (w.expires_at > Utc::now())
                // One stuck starting for long is as good as gone.
                && (w.state == "ready" || Utc::now() - w.created_at < chrono::Duration::seconds(60));
            if fresh && have < keep_room {
                kept.insert(w.pool.clone(), have + 1);
                continue;
            }
            self.remove_warm(&w).await;
            removed += 1;
        }
        let mut made = 0;
        if let Some(level) = level {
            for (pool, (n, ttl)) in &wanted {
                let have = kept.get(pool).copied().unwrap_or(0);
                for _ in have..*n {
                    if !self.has_room(pool).await? {
                        break;
                    }
                    match self.make_warm(pool, &level, *ttl).await {
                        Ok(()) => made += 1,
                        Err(e) => {
                            tracing::warn!(error = %e, pool, "cannot make a warm runtime");
                            break;
                        }
                    }
                }
            }
        }
        Ok((removed, made))
    }

    /// Whether the pool may hold one more warm runtime under its capacity.
    async fn has_room(&self, pool: &str) -> anyhow::Result<bool> {
        let mut conn = self.db.get().await?;
        let Some(p) = pools::store::get(&mut conn, pool).await? else {
            return Ok(false);
        };
        let figures = pools::store::figures(&mut conn)
            .await?
            .into_iter()
            .find(|(name, _)| name == pool)
            .map(|(_, f)| f)
            .unwrap_or_default();
        Ok(figures.in_use() < i64::from(p.max_running))
    }

    /// Makes one: a fresh volume, a container hardened like any tenant's with a claim key
    /// instead of an identity, started and answering its health check.
    #[tracing::instrument(skip(self, level), fields(pool))]
    async fn make_warm(&self, pool: &str, level: &AccessLevel, ttl: i32) -> anyhow::Result<()> {
        let id = Uuid::new_v4();
        let deployment = &self.config.deployment;
        let row = WarmRuntime {
            id,
            pool: pool.to_owned(),
            access_level: level.name.clone(),
            image: self.config.image.clone(),
            spec_hash: self.spec_hash(level),
            container_name: format!("websplat-{deployment}-warm-{}", id.simple()),
            container_id: None,
            address: None,
            volume: format!("websplat-{deployment}-warm-{}", id.simple()),
            state: "starting".to_owned(),
            created_at: Utc::now(),
            expires_at: Utc::now() + chrono::Duration::seconds(i64::from(ttl)),
        };
        let claim_key = self.keys.claim_key(id);
        {
            let mut conn = self.db.get().await?;
            diesel::insert_into(warm_runtimes::table)
                .values((
                    warm_runtimes::id.eq(id),
                    warm_runtimes::pool.eq(&row.pool),
                    warm_runtimes::access_level.eq(&row.access_level),
                    warm_runtimes::image.eq(&row.image),
                    warm_runtimes::spec_hash.eq(&row.spec_hash),
                    warm_runtimes::container_name.eq(&row.container_name),
                    warm_runtimes::volume.eq(&row.volume),
                    warm_runtimes::state.eq("starting"),
                    warm_runtimes::expires_at.eq(row.expires_at),
                ))
                .execute(&mut conn)
                .await?;
        }
        match self.bring_up_warm(&row, level, &claim_key).await {
            Ok((container, address)) => {
                let mut conn = self.db.get().await?;
                diesel::update(warm_runtimes::table.find(id))
                    .set((
                        warm_runtimes::state.eq("ready"),
                        warm_runtimes::container_id.eq(&container),
                        warm_runtimes::address.eq(address.to_string()),
                    ))
                    .execute(&mut conn)
                    .await?;
                Ok(())
            }
            Err(e) => {
                let mut gone = row.clone();
                gone.container_id = None;
                self.remove_warm(&gone).await;
                Err(e)
            }
        }
    }

    async fn bring_up_warm(
        &self,
        row: &WarmRuntime,
        level: &AccessLevel,
        claim_key: &SecretString,
    ) -> anyhow::Result<(String, SocketAddr)> {
        let volume_labels = HashMap::from([
            (label::WARM.to_owned(), row.id.to_string()),
            (label::DEPLOYMENT.to_owned(), self.config.deployment.clone()),
        ]);
        self.orchestrator
            .ensure_volume(&row.volume, &volume_labels)
            .await?;
        let spec = self.unclaimed_spec(
            &row.container_name,
            &row.volume,
            level,
            claim_key,
            HashMap::from([
                (label::WARM.to_owned(), row.id.to_string()),
                (label::POOL.to_owned(), row.pool.clone()),
            ]),
        )?;
        let container = self.orchestrator.create(&spec).await?;
        {
            let mut conn = self.db.get().await?;
            diesel::update(warm_runtimes::table.find(row.id))
                .set(warm_runtimes::container_id.eq(&container))
                .execute(&mut conn)
                .await?;
        }
        let address = self.start_unclaimed(&container, claim_key).await?;
        Ok((container, address))
    }

    /// A container made like any tenant's (sized by `level`, hardened, on the tenant
    /// network, `volume` at `/data`) that starts unclaimed: a claim key instead of an
    /// identity. Labelled with its spec hash and image digest.
    pub(super) fn unclaimed_spec(
        &self,
        name: &str,
        volume: &str,
        level: &AccessLevel,
        claim_key: &SecretString,
        mut labels: HashMap<String, String>,
    ) -> anyhow::Result<ContainerSpec> {
        let cpu_millicores =
            access_levels::cpu_limit(level.cpu_millicores).map_err(|e| anyhow::anyhow!("{e}"))?;
        let memory_bytes = access_levels::memory_limit_bytes(level.memory_mib)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut env = self.sized_env(level);
        env.push((
            runtime::env::CLAIM_KEY.to_owned(),
            claim_key.expose_secret().to_owned(),
        ));
        labels.extend([
            (
                label::VERSION.to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            ),
            (label::DEPLOYMENT.to_owned(), self.config.deployment.clone()),
            (label::SPEC.to_owned(), self.spec_hash(level)),
            (label::IMAGE_DIGEST.to_owned(), self.image_digest()),
        ]);
        Ok(ContainerSpec {
            name: name.to_owned(),
            image: self.config.image.clone(),
            env,
            labels,
            volume: volume.to_owned(),
            limits: Limits {
                cpu_millicores,
                memory_bytes,
                pids: self.config.pids_limit,
                tmp_bytes: u64::from(self.config.tmp_mib) * 1024 * 1024,
            },
            port: runtime::PORT,
            node: None,
        })
    }

    /// Starts an unclaimed container and waits until it answers its health check (signed
    /// with its claim key); returns its address.
    pub(super) async fn start_unclaimed(
        &self,
        container: &str,
        claim_key: &SecretString,
    ) -> anyhow::Result<SocketAddr> {
        self.orchestrator.start(container).await?;
        let address = self
            .orchestrator
            .inspect(container)
            .await?
            .and_then(|i| i.address)
            .ok_or_else(|| anyhow::anyhow!("the warm runtime has no address"))?;
        let deadline = Instant::now() + self.config.ready_timeout;
        let url = format!("http://{address}{}", runtime::HEALTH_PATH);
        loop {
            let header = identity::sign_now(
                claim_key.expose_secret(),
                crate::users::UserId(runtime::UNCLAIMED_USER),
                "GET",
                runtime::HEALTH_PATH,
            );
            if let Ok(r) = self
                .probe
                .get(&url)
                .header(identity::HEADER, header)
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(address);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the warm runtime did not answer within {:?}",
                self.config.ready_timeout
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Removes the unclaimed warm runtimes that the engine says are no longer running (died
    /// or vanished; one still starting is the keeper's until it is stuck), so none is counted
    /// as capacity or offered to a sign-in; the keeper then makes new ones.
    pub(super) async fn forget_dead_warm(
        &self,
        listed: &[super::orchestrator::ContainerInfo],
    ) -> anyhow::Result<usize> {
        let mut conn = self.db.get().await?;
        let ready: Vec<WarmRuntime> = warm_runtimes::table
            .filter(warm_runtimes::state.eq("ready"))
            .select(WarmRuntime::as_select())
            .load(&mut conn)
            .await?;
        drop(conn);
        let mut gone = 0;
        for w in ready {
            let running = w
                .container_id
                .as_ref()
                .is_some_and(|id| listed.iter().any(|c| c.id == *id && c.running));
            if !running {
                tracing::info!(warm = %w.id, "an unclaimed warm runtime is no longer running");
                self.remove_warm(&w).await;
                gone += 1;
            }
        }
        Ok(gone)
    }

    /// Removes a warm runtime: its container, its volume, its key and its row.
    pub(super) async fn remove_warm(&self, w: &WarmRuntime) {
        let container = w
            .container_id
            .clone()
            .or_else(|| Some(w.container_name.clone()));
        if let Some(id) = container
            && let Err(e) = self.orchestrator.remove(&id).await
        {
            tracing::warn!(error = %e, warm = %w.id, "cannot remove a warm runtime's container");
        }
        if let Err(e) = self.orchestrator.remove_volume(&w.volume).await {
            tracing::debug!(error = %e, warm = %w.id, "cannot remove a warm runtime's volume");
        }
        if let Ok(mut conn) = self.db.get().await {
            let _ = diesel::delete(warm_runtimes::table.find(w.id))
                .execute(&mut conn)
                .await;
        }
    }

    /// Claims a taken warm runtime for `user`: signs the claim with its key, so the runtime
    /// binds itself to the user and the secret both sides derive. A runtime just started
    /// (`starting`) may not listen yet: then the claim is sent again until the runtime
    /// answers or the time is up. A 409 after an unanswered attempt means that attempt got
    /// through (the health check with the secret then tells).
    pub(super) async fn claim(
        &self,
        claimed: &Claimed,
        address: SocketAddr,
        user: crate::users::UserId,
        starting: bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + self.config.ready_timeout;
        let mut retried = false;
        loop {
            let header = identity::sign_now(
                claimed.claim_key.expose_secret(),
                user,
                "POST",
                runtime::CLAIM_PATH,
            );
            let answer = self
                .probe
                .post(format!("http://{address}{}", runtime::CLAIM_PATH))
                .header(identity::HEADER, header)
                .send()
                .await;
            match answer {
                Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => return Ok(()),
                Ok(r) if r.status() == reqwest::StatusCode::CONFLICT && retried => return Ok(()),
                Ok(r) => {
                    return Err(format!(
                        "the warm runtime refused its claim ({})",
                        r.status()
                    ));
                }
                Err(e) if !starting || Instant::now() >= deadline => {
                    return Err(format!("the warm runtime did not take its claim: {e}"));
                }
                Err(_) => {
                    retried = true;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
}
