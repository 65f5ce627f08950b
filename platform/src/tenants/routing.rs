//! What the workspace proxy needs on every request, in Redis (never PostgreSQL): the route
//! to each running tenant, workspace sessions, one-time handoff codes, and the activity that
//! keeps a workspace from idling out. Also the spawn leases and loop locks that keep
//! replicas out of each other's way, and the progress channel per user. Routes and
//! workspace sessions are also kept in this process ([`super::cache`]) while the replica
//! hears every change announced on Redis, so the proxy's lookup is usually no round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::cache::{self, HotPath};
use super::ids::{Slug, TenantId};
use crate::auth::secret::{random_token, sha256_hex};
use crate::kv::{Kv, KvError};
use crate::users::UserId;

/// How to reach a running tenant. Written when it becomes ready, with a time to live the
/// reaper renews while it runs ([`ROUTE_TTL`]), removed when it stops. It holds no secret:
/// the tenant's is derived from its ids (`identity::TenantKeys`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Route {
    pub tenant: TenantId,
    pub user: UserId,
    /// `ip:port` on the tenant network.
    pub address: String,
}

/// A browser's session on one workspace origin, made by a handoff from the platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkspaceSession {
    pub user: UserId,
    pub slug: Slug,
    /// The platform session it came from (its hash): when that ends, this ends.
    pub platform_session: String,
}

/// A one-time code: what the workspace origin needs to start a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Handoff {
    pub user: UserId,
    pub slug: Slug,
    pub platform_session: String,
    /// Where to go on the workspace origin afterwards (a path).
    pub next: String,
    /// The SHA-256 (hex) of the nonce cookie the workspace origin gave the browser that
    /// asked: the code is redeemed only by that browser.
    pub bind: String,
}

/// What one proxied request learns in one round trip.
pub struct Lookup {
    pub session: Option<WorkspaceSession>,
    pub route: Option<Route>,
}

const HANDOFF_TTL: Duration = Duration::from_secs(60);
/// How long a route lives unless renewed: a route whose platform is gone for good (or lost
/// its tenant unnoticed) leaves Redis by itself. The idle reaper renews every ready
/// tenant's route far more often (`Tenants::renew_routes`).
pub const ROUTE_TTL: Duration = Duration::from_secs(15 * 60);

/// How long something read with `PTTL` = `ms` may be held (never past its own expiry).
fn held_for(ms: i64) -> Duration {
    match u64::try_from(ms) {
        Ok(ms) => Duration::from_millis(ms),
        // -1: no expiry; -2: gone (nothing to outlive).
        Err(_) => cache::ENTRY_TTL,
    }
}
/// Activity is written at most this often per tenant and replica.
const ACTIVITY_EVERY: Duration = Duration::from_secs(5);
const ACTIVITY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct Routing {
    kv: Kv,
    touched: Mutex<HashMap<TenantId, Instant>>,
    /// Routes and sessions this replica has read, while it hears every change.
    hot: Arc<HotPath>,
}

impl Routing {
    pub fn new(kv: Kv) -> Self {
        Routing {
            kv,
            touched: Mutex::new(HashMap::new()),
            hot: Arc::new(HotPath::default()),
        }
    }

    /// Starts hearing the changes other replicas announce; until this runs (a command
    /// line, not a server), every lookup reads Redis.
    pub fn spawn_watcher(&self, redis_url: secrecy::SecretString) -> tokio::task::JoinHandle<()> {
        self.hot
            .spawn_watcher(redis_url, self.kv.key(cache::CHANGES))
    }

    /// This replica's cache of the hot path (the session store clears it as sessions end).
    pub fn hot(&self) -> Arc<HotPath> {
        Arc::clone(&self.hot)
    }

    /// The routes and workspace sessions held in this process.
    pub fn cached(&self) -> (usize, usize) {
        self.hot.sizes()
    }

    /// Tells every replica (this one at once) to forget what `message` names.
    async fn announce(&self, message: String) -> Result<(), KvError> {
        self.hot.heard(&message);
        let channel = self.kv.key(cache::CHANGES);
        self.kv
            .run(async move |c| c.publish::<_, _, ()>(&channel, message).await)
            .await
    }

    /// The Redis this routing keeps its keys in (admission counts starts there too).
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    fn route_key(&self, slug: &str) -> String {
        self.kv.key(&format!("tenant-route:{slug}"))
    }
    fn session_key(&self, token_hash: &str) -> String {
        self.kv.key(&format!("ws-session:{token_hash}"))
    }
    fn platform_session_key(&self, hash: &str) -> String {
        // The key the platform's session store uses (auth::session).
        self.kv.key(&format!("session:{hash}"))
    }
    fn handoff_key(&self, code_hash: &str) -> String {
        self.kv.key(&format!("ws-handoff:{code_hash}"))
    }
    fn activity_key(&self, tenant: TenantId) -> String {
        self.kv.key(&format!("tenant-activity:{tenant}"))
    }
    fn lease_key(&self, tenant: TenantId) -> String {
        self.kv.key(&format!("tenant-lease:{tenant}"))
    }
    pub fn channel(&self, user: UserId) -> String {
        self.kv.key(&format!("tenant-events:{user}"))
    }
    /// The Redis glob of every user's progress channel.
    pub fn channels(&self) -> String {
        format!(
            "{}*",
            super::events::glob_literal(&self.kv.key("tenant-events:"))
        )
    }

    pub async fn put_route(&self, slug: &Slug, route: &Route) -> Result<(), KvError> {
        let (key, body) = (self.route_key(slug), serde_json::to_string(route)?);
        let ttl = ROUTE_TTL.as_secs();
        self.kv
            .run(async move |c| c.set_ex::<_, _, ()>(&key, body, ttl).await)
            .await?;
        self.announce(cache::route_changed(slug)).await
    }

    /// Gives these routes their full time to live again (one round trip); a route that is
    /// gone stays gone.
    pub async fn renew_routes(&self, slugs: &[Slug]) -> Result<(), KvError> {
        if slugs.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = slugs.iter().map(|s| self.route_key(s)).collect();
        let ttl = i64::try_from(ROUTE_TTL.as_secs()).unwrap_or(i64::MAX);
        self.kv
            .run(async move |c| {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.expire(key, ttl).ignore();
                }
                pipe.query_async::<()>(c).await
            })
            .await
    }

    /// Removes the route if it still points at `tenant` (a successor's stays).
    pub async fn drop_route(&self, slug: &Slug, tenant: TenantId) -> Result<(), KvError> {
        if let Some(route) = self.route(slug).await?
            && route.tenant != tenant
        {
            return Ok(());
        }
        let key = self.route_key(slug);
        self.kv
            .run(async move |c| c.del::<_, ()>(&key).await)
            .await?;
        self.announce(cache::route_changed(slug)).await
    }

    /// The route as Redis has it now, after this replica forgets what it held (a tenant
    /// refused the route it had).
    pub async fn fresh_route(&self, slug: &Slug) -> Result<Option<Route>, KvError> {
        self.hot.heard(&cache::route_changed(slug));
        self.route(slug).await
    }

    pub async fn route(&self, slug: &Slug) -> Result<Option<Route>, KvError> {
        let key = self.route_key(slug);
        let raw: Option<String> = self.kv.run(async move |c| c.get(&key).await).await?;
        Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
    }

    /// The session for a workspace cookie and the route of the host's workspace: from this
    /// process when it holds both, else in one round trip (two with a session). A session
    /// whose platform session has ended is dropped.
    pub async fn lookup(&self, token: Option<&str>, slug: &Slug) -> Result<Lookup, KvError> {
        let token_hash = token.filter(|t| t.len() <= 128).map(sha256_hex);
        let held_route = self.hot.route(slug);
        let held_session = token_hash.as_deref().and_then(|h| self.hot.session(h));
        if let Some(route) = &held_route
            && (token_hash.is_none() || held_session.is_some())
        {
            return Ok(Lookup {
                session: held_session,
                route: route.clone(),
            });
        }
        let epoch = self.hot.epoch();
        let route_key = self.route_key(slug);
        let session_key = token_hash.as_deref().map(|h| self.session_key(h));
        let (raw_route, route_ms, raw_session): (Option<String>, i64, Option<String>) = self
            .kv
            .run({
                let (route_key, session_key) = (route_key.clone(), session_key.clone());
                async move |c| {
                    redis::pipe()
                        .get(&route_key)
                        .pttl(&route_key)
                        .get(session_key.as_deref().unwrap_or("-"))
                        .query_async(c)
                        .await
                }
            })
            .await?;
        let route: Option<Route> = raw_route.map(|r| serde_json::from_str(&r)).transpose()?;
        self.hot
            .keep_route(epoch, slug, route.clone(), held_for(route_ms));
        let mut session: Option<WorkspaceSession> =
            raw_session.map(|r| serde_json::from_str(&r)).transpose()?;
        if let (Some(s), Some(key), Some(hash)) = (&session, session_key, token_hash) {
            let platform_key = self.platform_session_key(&s.platform_session);
            let platform_ms: i64 = self
                .kv
                .run(async move |c| c.pttl(&platform_key).await)
                .await?;
            // -2: no such key (the platform session ended).
            if platform_ms == -2 {
                self.hot.forget_session(&hash);
                self.kv
                    .run(async move |c| c.del::<_, ()>(&key).await)
                    .await?;
                session = None;
            } else {
                self.hot
                    .keep_session(epoch, &hash, s.clone(), held_for(platform_ms));
            }
        }
        Ok(Lookup { session, route })
    }

    /// Starts a workspace session; returns the cookie's value.
    pub async fn create_session(
        &self,
        session: &WorkspaceSession,
        ttl: Duration,
    ) -> Result<String, KvError> {
        let token = random_token(32);
        let (key, body) = (
            self.session_key(&sha256_hex(&token)),
            serde_json::to_string(session)?,
        );
        // Indexed under its platform session, which deletes it when it ends.
        let linked = self.kv.key(&crate::auth::session::linked_keys(
            &session.platform_session,
        ));
        let ttl = ttl.as_secs().max(1);
        self.kv
            .run(async move |c| {
                redis::pipe()
                    .atomic()
                    .set_ex(&key, body, ttl)
                    .ignore()
                    .sadd(&linked, &key)
                    .ignore()
                    .expire(&linked, i64::try_from(ttl).unwrap_or(i64::MAX))
                    .ignore()
                    .query_async::<()>(c)
                    .await
            })
            .await?;
        Ok(token)
    }

    pub async fn mint_handoff(&self, handoff: &Handoff) -> Result<String, KvError> {
        let code = random_token(24);
        let (key, body) = (
            self.handoff_key(&sha256_hex(&code)),
            serde_json::to_string(handoff)?,
        );
        let ttl = HANDOFF_TTL.as_secs();
        self.kv
            .run(async move |c| c.set_ex::<_, _, ()>(&key, body, ttl).await)
            .await?;
        Ok(code)
    }

    /// Redeems a handoff code: once only, within a minute.
    pub async fn redeem_handoff(&self, code: &str) -> Result<Option<Handoff>, KvError> {
        if code.len() > 128 {
            return Ok(None);
        }
        let key = self.handoff_key(&sha256_hex(code));
        let raw: Option<String> = self
            .kv
            .run(async move |c| redis::cmd("GETDEL").arg(&key).query_async(c).await)
            .await?;
        Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
    }

    /// Notes traffic to a tenant (at most every few seconds per replica; never blocks the
    /// request).
    pub fn touch(&self, tenant: TenantId) {
        let now = Instant::now();
        {
            let Ok(mut touched) = self.touched.lock() else {
                return;
            };
            if touched
                .get(&tenant)
                .is_some_and(|at| now.duration_since(*at) < ACTIVITY_EVERY)
            {
                return;
            }
            if touched.len() > 10_000 {
                touched.retain(|_, at| now.duration_since(*at) < ACTIVITY_EVERY);
            }
            touched.insert(tenant, now);
        }
        let key = self.activity_key(tenant);
        let kv = self.kv.clone();
        tokio::spawn(async move {
            let at = chrono::Utc::now().timestamp();
            let ttl = ACTIVITY_TTL.as_secs();
            if let Err(e) = kv
                .run(async move |c| c.set_ex::<_, _, ()>(&key, at, ttl).await)
                .await
            {
                tracing::warn!(error = %e, "cannot record workspace activity");
            }
        });
    }

    /// The last traffic (unix seconds) of each tenant, where known.
    pub async fn activity(&self, tenants: &[TenantId]) -> Result<Vec<Option<i64>>, KvError> {
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = tenants.iter().map(|t| self.activity_key(*t)).collect();
        self.kv
            .run(async move |c| redis::cmd("MGET").arg(&keys).query_async(c).await)
            .await
    }

    /// Claims (or renews) the spawn lease of a tenant for `ttl`.
    pub async fn hold_lease(&self, tenant: TenantId, ttl: Duration) -> Result<(), KvError> {
        let key = self.lease_key(tenant);
        let ms = ttl.as_millis().max(1) as u64;
        self.kv
            .run(async move |c| c.pset_ex::<_, _, ()>(&key, 1, ms).await)
            .await
    }

    pub async fn release_lease(&self, tenant: TenantId) -> Result<(), KvError> {
        let key = self.lease_key(tenant);
        self.kv.run(async move |c| c.del::<_, ()>(&key).await).await
    }

    /// Whether some replica is spawning this tenant right now.
    pub async fn lease_held(&self, tenant: TenantId) -> Result<bool, KvError> {
        let key = self.lease_key(tenant);
        self.kv.run(async move |c| c.exists(&key).await).await
    }

    /// Takes a lock for one run of a background loop across replicas; false when another
    /// replica holds it.
    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<bool, KvError> {
        let key = self.kv.key(&format!("tenant-loop:{name}"));
        let ms = ttl.as_millis().max(1) as u64;
        let got: Option<String> = self
            .kv
            .run(async move |c| {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async(c)
                    .await
            })
            .await?;
        Ok(got.is_some())
    }

    /// Lets go of a loop's lock before its time (the run is over).
    pub async fn unlock(&self, name: &str) -> Result<(), KvError> {
        let key = self.kv.key(&format!("tenant-loop:{name}"));
        self.kv.run(async move |c| c.del::<_, ()>(&key).await).await
    }

    pub async fn publish(&self, user: UserId, event: &serde_json::Value) -> Result<(), KvError> {
        let (channel, body) = (self.channel(user), event.to_string());
        self.kv
            .run(async move |c| c.publish::<_, _, ()>(&channel, body).await)
            .await
    }
}
