//! Authorization: one casbin enforcer per process, deny by default, over rules kept in
//! PostgreSQL. Every request passes the web layer's guard (`web::guard`, the only way in),
//! which maps it to
//! (subject, route pattern, method, owner) and asks [`Authz::decide`]; the hot path takes a
//! read lock and hits casbin's decision cache. A change made by any replica is published on
//! Redis and every replica — this one at once — rebuilds its enforcer from PostgreSQL off the
//! hot path, then swaps it in. A periodic reload catches anything a lost message missed.
//!
//! Never decide access anywhere else: handlers trust the decision the guard put in the
//! request. This module is policy only: it never sees a request or the server's state.

pub mod access_levels;
pub mod adapter;
pub mod roles;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use casbin::{Adapter, CachedApi, CachedEnforcer, CoreApi, DefaultCache, DefaultModel};
use futures_util::StreamExt;
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::db;
use crate::kv::Kv;
use crate::metrics::Metrics;
use crate::users::UserId;

/// A name of a role or an access level: 1 to 32 lowercase letters, digits, `-` or `_`,
/// starting with a letter. `noun` and `field` word the error.
pub fn parse_name(
    raw: &str,
    field: &'static str,
    noun: &str,
) -> Result<String, crate::error::ApiError> {
    let ok = (1..=32).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(crate::error::ApiError::validation(
            field,
            format!(
                "{noun}'s name is 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter"
            ),
        ))
    }
}

/// The casbin subject of a user.
pub fn subject(user: UserId) -> String {
    format!("user:{user}")
}

/// The user a casbin subject names, if it names one (not a role).
pub fn user_of(subject: &str) -> Option<UserId> {
    subject.strip_prefix("user:")?.parse().ok().map(UserId)
}

/// How many decisions each enforcer keeps cached.
const DECISION_CACHE: usize = 100_000;

/// The enforcer of this process behind a read-write lock: decisions take the read lock and
/// casbin's cache; a reload builds a new enforcer off the lock and swaps it in.
pub struct Policy {
    enforcer: RwLock<Arc<CachedEnforcer>>,
}

async fn build_enforcer(adapter: impl Adapter + 'static) -> anyhow::Result<CachedEnforcer> {
    let model = DefaultModel::from_str(adapter::MODEL)
        .await
        .context("policies/model.conf is not a valid casbin model")?;
    let mut enforcer = CachedEnforcer::new(model, adapter)
        .await
        .context("cannot load the authorization policy")?;
    enforcer.set_cache(Box::new(DefaultCache::new(DECISION_CACHE)));
    Ok(enforcer)
}

impl Policy {
    /// A policy from rules in casbin's CSV form (benchmarks and tools; the platform loads
    /// PostgreSQL's).
    pub async fn from_csv(text: &str) -> anyhow::Result<Self> {
        let lines: Vec<String> = adapter::parse_csv(text)
            .iter()
            .map(adapter::Rule::line)
            .collect();
        let enforcer = build_enforcer(casbin::StringAdapter::new(lines.join("\n"))).await?;
        Ok(Policy {
            enforcer: RwLock::new(Arc::new(enforcer)),
        })
    }

    async fn from_postgres(db: &db::Pool) -> anyhow::Result<Self> {
        let enforcer = build_enforcer(adapter::PgAdapter::new(db.clone())).await?;
        Ok(Policy {
            enforcer: RwLock::new(Arc::new(enforcer)),
        })
    }

    /// Whether `sub` may `act` on the route `obj` owned by `owner`. Deny on any error.
    pub fn decide(&self, sub: &str, obj: &str, act: &str, owner: &str) -> bool {
        let enforcer = match self.enforcer.read() {
            Ok(e) => Arc::clone(&e),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        match enforcer.enforce((sub, obj, act, owner)) {
            Ok(allowed) => allowed,
            Err(e) => {
                tracing::error!(error = %e, sub, obj, act, "the enforcer failed; denying");
                false
            }
        }
    }

    fn replace(&self, fresh: Policy) {
        let fresh = match fresh.enforcer.into_inner() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        match self.enforcer.write() {
            Ok(mut e) => *e = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }
}

pub struct Authz {
    policy: Policy,
    db: db::Pool,
    kv: Kv,
    redis_url: secrecy::SecretString,
    channel: String,
    metrics: Metrics,
}

impl Authz {
    /// Seeds the default policy (never over admins' changes) and loads the enforcer.
    pub async fn start(
        config: &Config,
        db: db::Pool,
        kv: Kv,
        metrics: Metrics,
    ) -> anyhow::Result<Arc<Self>> {
        let mut conn = db.get().await.context("no PostgreSQL connection")?;
        let seeded = adapter::seed_defaults(&mut conn)
            .await
            .context("cannot seed the default policy")?;
        if seeded > 0 {
            tracing::info!(rules = seeded, "seeded default authorization rules");
        }
        drop(conn);
        Ok(Arc::new(Authz {
            policy: Policy::from_postgres(&db).await?,
            channel: kv.key("authz:policy-changed"),
            redis_url: config.redis.url.clone(),
            db,
            kv,
            metrics,
        }))
    }

    /// Whether `sub` may `act` on the route `obj` owned by `owner`. Deny on any error.
    pub fn decide(&self, sub: &str, obj: &str, act: &str, owner: &str) -> bool {
        self.policy.decide(sub, obj, act, owner)
    }

    /// Rebuilds the enforcer from PostgreSQL and swaps it in.
    pub async fn reload(&self) -> anyhow::Result<()> {
        self.policy.replace(Policy::from_postgres(&self.db).await?);
        self.metrics.policy_reloaded();
        tracing::debug!("authorization policy reloaded");
        Ok(())
    }

    /// Call after changing rules in PostgreSQL: this replica reloads now, every other one
    /// when the message reaches it.
    pub async fn changed(&self) -> anyhow::Result<()> {
        self.reload().await?;
        let channel = self.channel.clone();
        let published = self
            .kv
            .run(async move |c| {
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg("reload")
                    .query_async::<i64>(c)
                    .await
            })
            .await;
        if let Err(e) = published {
            // The other replicas catch up at their next periodic reload.
            tracing::warn!(error = %e, "cannot announce a policy change on Redis");
        }
        Ok(())
    }

    /// Reloads whenever another replica announces a change, and every `interval` anyway.
    /// Runs until the process ends; reconnects to Redis on its own.
    pub fn spawn_watcher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let authz = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match authz.listen(interval).await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "policy watcher lost Redis; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
    }

    async fn listen(&self, interval: Duration) -> anyhow::Result<()> {
        let client = redis::Client::open(self.redis_url.expose_secret())
            .context("WEBSPLAT_REDIS_URL is not a valid Redis URL")?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&self.channel).await?;
        // Changes made while we were not listening.
        self.reload().await?;
        let mut messages = pubsub.on_message();
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                message = messages.next() => {
                    if message.is_none() {
                        anyhow::bail!("the subscription ended");
                    }
                    self.reload().await?;
                }
                _ = ticker.tick() => self.reload().await?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn policy_with(grants: &str) -> Policy {
        Policy::from_csv(&format!("{}\n{grants}", adapter::DEFAULT_POLICY))
            .await
            .expect("the default policy loads")
    }

    #[tokio::test]
    async fn the_default_policy_denies_by_default_and_decides_ownership() {
        let p =
            policy_with("g, user:root, admin\ng, user:audit, auditor\ng, user:ops, operator").await;
        assert!(p.decide("anonymous", "/healthz", "GET", ""));
        assert!(!p.decide("anonymous", "/api/v1/me", "GET", ""));
        assert!(!p.decide("anonymous", "/no/such/route", "GET", ""));
        // Ownership: the caller's own, nobody else's.
        assert!(p.decide("user:a", "/api/v1/me", "GET", "user:a"));
        assert!(!p.decide("user:a", "/api/v1/me", "GET", "user:b"));
        assert!(p.decide("user:a", "/api/v1/tokens/{id}", "DELETE", "user:a"));
        assert!(!p.decide("user:a", "/api/v1/tokens/{id}", "DELETE", "user:b"));
        assert!(!p.decide("user:a", "/api/v1/tokens/{id}", "DELETE", ""));
        assert!(!p.decide("user:root", "/api/v1/tokens/{id}", "DELETE", "user:a"));
        // Methods are matched exactly.
        assert!(!p.decide("user:a", "/api/v1/me", "DELETE", "user:a"));
        // Roles and their inheritance.
        assert!(!p.decide("user:a", "/api/v1/admin/users", "GET", ""));
        assert!(p.decide("user:audit", "/api/v1/admin/users", "GET", ""));
        assert!(!p.decide("user:audit", "/api/v1/admin/users/{id}/disable", "POST", ""));
        assert!(!p.decide("user:audit", "/metrics", "GET", ""));
        assert!(p.decide("user:ops", "/metrics", "GET", ""));
        assert!(!p.decide("user:ops", "/api/v1/admin/users", "GET", ""));
        assert!(p.decide(
            "user:root",
            "/api/v1/admin/users/{id}/roles/{role}",
            "PUT",
            "user:x"
        ));
        assert!(
            p.decide("user:root", "/metrics", "GET", ""),
            "admin inherits operator"
        );
        assert!(
            p.decide("user:root", "/api/v1/admin/audit", "GET", ""),
            "and auditor"
        );
        // "anonymous" is nobody's role: granting it changes nothing for a signed-in subject.
        let odd = policy_with("g, user:z, anonymous").await;
        assert!(!odd.decide("user:z", "/api/v1/admin/users", "GET", ""));
    }
}
