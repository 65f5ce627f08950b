//! The proxy's hot path kept in this process: the routes and workspace sessions that
//! [`super::routing::Routing::lookup`] read from Redis, so a proxied request costs no Redis
//! round trip once its workspace has been seen. Every replica listens on one Redis channel
//! ([`CHANGES`]) on which every change is announced — a route written or dropped, a
//! platform session ended (sign-out, revocation, a disabled account) — and forgets what it
//! announces at once; the replica that makes the change forgets it before it returns.
//!
//! It must never answer from memory while it is not subscribed: a replica that lost the
//! channel (Redis restarted, the network cut) empties itself and reads Redis on every
//! request until it has subscribed again, so a revocation is never missed. An entry also
//! lives no longer than [`ENTRY_TTL`], nor past its platform session's or route's own
//! expiry in Redis. A read that raced with a change is not kept (the epoch moved).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};

use super::routing::{Route, WorkspaceSession};

/// The channel (before the key prefix) every change of the hot path is announced on:
/// `route:<slug>`, `session:<platform session hash>`, or `*` for everything.
pub const CHANGES: &str = "workspace-routing-changed";
/// The longest an entry is trusted, announcement or not.
pub const ENTRY_TTL: Duration = Duration::from_secs(60);
/// Beyond this many entries of a kind, the expired ones go (and all, if that is not enough).
const MAX_ENTRIES: usize = 100_000;

/// The message that ends every workspace session of a platform session.
pub fn session_ended(platform_session: &str) -> String {
    format!("session:{platform_session}")
}

/// The message that drops a workspace's route.
pub fn route_changed(slug: &str) -> String {
    format!("route:{slug}")
}

struct Entry<T> {
    value: T,
    until: Instant,
}

/// What this replica knows of routes and workspace sessions.
#[derive(Default)]
pub struct HotPath {
    /// Per slug: its route, or that it has none.
    routes: Mutex<HashMap<String, Entry<Option<Route>>>>,
    /// Per SHA-256 of a workspace cookie: its session (only live ones are kept).
    sessions: Mutex<HashMap<String, Entry<WorkspaceSession>>>,
    /// Moves at every change heard; a read that started before a change is not kept.
    epoch: AtomicU64,
    /// Subscribed to [`CHANGES`] right now: only then is anything answered from memory.
    live: AtomicBool,
}

impl HotPath {
    /// The epoch to hand back to [`HotPath::keep_route`] / [`HotPath::keep_session`]
    /// after reading Redis; `None` while nothing may be kept.
    pub fn epoch(&self) -> Option<u64> {
        self.live
            .load(Ordering::Acquire)
            .then(|| self.epoch.load(Ordering::Acquire))
    }

    pub fn route(&self, slug: &str) -> Option<Option<Route>> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes
            .get(slug)
            .filter(|e| e.until > Instant::now())
            .map(|e| e.value.clone())
    }

    pub fn session(&self, token_hash: &str) -> Option<WorkspaceSession> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions
            .get(token_hash)
            .filter(|e| e.until > Instant::now())
            .map(|e| e.value.clone())
    }

    pub fn keep_route(&self, epoch: Option<u64>, slug: &str, route: Option<Route>, ttl: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if epoch.is_none() || self.epoch() != epoch {
            return;
        }
        prune(&mut routes);
        routes.insert(
            slug.to_owned(),
            Entry {
                value: route,
                until: Instant::now() + ttl.min(ENTRY_TTL),
            },
        );
    }

    pub fn keep_session(
        &self,
        epoch: Option<u64>,
        token_hash: &str,
        session: WorkspaceSession,
        ttl: Duration,
    ) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if epoch.is_none() || self.epoch() != epoch {
            return;
        }
        prune(&mut sessions);
        sessions.insert(
            token_hash.to_owned(),
            Entry {
                value: session,
                until: Instant::now() + ttl.min(ENTRY_TTL),
            },
        );
    }

    /// Acts on one announcement (ours or another replica's).
    pub fn heard(&self, message: &str) {
        // The epoch moves under the lock that `keep_*` checks it under, so a read that
        // raced with this change can never be kept after it.
        if let Some(slug) = message.strip_prefix("route:") {
            let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            self.epoch.fetch_add(1, Ordering::AcqRel);
            routes.remove(slug);
        } else if let Some(hash) = message.strip_prefix("session:") {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            self.epoch.fetch_add(1, Ordering::AcqRel);
            sessions.retain(|_, e| e.value.platform_session != hash);
        } else {
            self.clear();
        }
    }

    /// Forgets one cookie's session (found dead on the way).
    pub fn forget_session(&self, token_hash: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        sessions.remove(token_hash);
    }

    fn clear(&self) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        routes.clear();
        sessions.clear();
    }

    /// How many routes and sessions are held (for the tests and the benchmark).
    pub fn sizes(&self) -> (usize, usize) {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        (routes.len(), sessions.len())
    }

    /// Listens to [`CHANGES`] (`channel`: with the key prefix) until the process ends,
    /// subscribing again after any break; nothing is answered from memory in between.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        redis_url: SecretString,
        channel: String,
    ) -> tokio::task::JoinHandle<()> {
        let hot = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let result = hot.listen(&redis_url, &channel).await;
                hot.live.store(false, Ordering::Release);
                hot.clear();
                match result {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "the workspace proxy's cache lost Redis; reading Redis on every request until it is back");
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        })
    }

    async fn listen(&self, redis_url: &SecretString, channel: &str) -> anyhow::Result<()> {
        let client = redis::Client::open(redis_url.expose_secret())
            .context("WEBSPLAT_REDIS_URL is not a valid Redis URL")?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        // Whatever changed while nobody listened.
        self.clear();
        self.live.store(true, Ordering::Release);
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload().unwrap_or_default();
            self.heard(&payload);
        }
        anyhow::bail!("the subscription ended")
    }
}

fn prune<T>(map: &mut HashMap<String, Entry<T>>) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    let now = Instant::now();
    map.retain(|_, e| e.until > now);
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenants::{Slug, TenantId};
    use crate::users::UserId;

    fn session(platform: &str) -> WorkspaceSession {
        WorkspaceSession {
            user: UserId(uuid::Uuid::nil()),
            slug: Slug::parse("alice").expect("slug"),
            platform_session: platform.to_owned(),
        }
    }

    fn route() -> Route {
        Route {
            tenant: TenantId(uuid::Uuid::nil()),
            user: UserId(uuid::Uuid::nil()),
            address: "172.20.0.2:8080".to_owned(),
        }
    }

    #[test]
    fn nothing_is_kept_or_answered_while_not_subscribed() {
        let hot = HotPath::default();
        hot.keep_route(hot.epoch(), "alice", Some(route()), ENTRY_TTL);
        assert!(hot.route("alice").is_none());
        hot.live.store(true, Ordering::Release);
        hot.keep_route(hot.epoch(), "alice", Some(route()), ENTRY_TTL);
        assert!(hot.route("alice").is_some_and(|r| r.is_some()));
        hot.live.store(false, Ordering::Release);
        assert!(hot.route("alice").is_none());
    }

    #[test]
    fn an_ended_platform_session_takes_its_workspace_sessions_along() {
        let hot = HotPath::default();
        hot.live.store(true, Ordering::Release);
        hot.keep_session(hot.epoch(), "t1", session("p1"), ENTRY_TTL);
        hot.keep_session(hot.epoch(), "t2", session("p1"), ENTRY_TTL);
        hot.keep_session(hot.epoch(), "t3", session("p2"), ENTRY_TTL);
        hot.heard(&session_ended("p1"));
        assert!(hot.session("t1").is_none() && hot.session("t2").is_none());
        assert!(hot.session("t3").is_some());
        hot.keep_route(hot.epoch(), "alice", None, ENTRY_TTL);
        hot.heard(&route_changed("alice"));
        assert!(hot.route("alice").is_none());
    }

    #[test]
    fn a_read_that_raced_with_a_change_is_not_kept() {
        let hot = HotPath::default();
        hot.live.store(true, Ordering::Release);
        let before = hot.epoch();
        hot.heard(&route_changed("alice"));
        hot.keep_route(before, "alice", None, ENTRY_TTL);
        assert!(hot.route("alice").is_none(), "a stale 'no route' was kept");
    }
}
