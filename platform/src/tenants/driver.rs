//! The one place that turns configuration into orchestrator drivers: the platform's own
//! engine (`WEBSPLAT_ORCHESTRATOR`: Docker, or the in-memory engine) and, per pool whose
//! engine is `swarm`, a Swarm driver on that pool's manager. Callers ask for the driver of
//! a tenant's pool and get an `Arc<dyn Orchestrator>`; they never learn which engine is
//! behind it. The pools' engines are read from PostgreSQL by the caller and handed in
//! ([`Drivers::sync`]), so this module knows nothing of the pools' storage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::docker::DockerDriver;
use super::memory::MemoryDriver;
use super::orchestrator::Orchestrator;
use super::swarm::SwarmDriver;
use crate::config::{OrchestratorKind, TenantsConfig};

/// A pool's engine as stored: `docker` (the platform's own) or `swarm` at `endpoint`.
#[derive(Debug, Clone, Copy)]
pub struct PoolEngine<'a> {
    pub pool: &'a str,
    pub engine: &'a str,
    pub endpoint: Option<&'a str>,
}

struct Remote {
    endpoint: String,
    driver: Arc<dyn Orchestrator>,
}

/// Every driver of this replica, keyed by pool; the platform's own engine serves every
/// pool that names no other.
pub struct Drivers {
    local: Arc<dyn Orchestrator>,
    /// The tenant network's name; a swarm pool's overlay is named after it and the pool.
    network: String,
    remote: RwLock<HashMap<String, Remote>>,
    /// Moves whenever the set of drivers changes (event watchers resubscribe).
    generation: AtomicU64,
}

impl Drivers {
    /// The configured local driver, with its network prepared. An engine that is away at
    /// start-up is logged, not fatal: the platform still signs people in, and workspaces
    /// fail with the reason until the engine is back (readiness says so too).
    pub async fn from_config(config: &TenantsConfig) -> anyhow::Result<Arc<Drivers>> {
        let local: Arc<dyn Orchestrator> = match config.orchestrator {
            OrchestratorKind::Docker => Arc::new(DockerDriver::connect(&config.network)?),
            OrchestratorKind::Memory => {
                tracing::warn!(
                    "tenants run on the in-memory engine (WEBSPLAT_ORCHESTRATOR=memory): for tests and development only"
                );
                MemoryDriver::shared()
            }
        };
        if let Err(e) = local.prepare_network().await {
            tracing::error!(error = %e, "cannot prepare the tenant network");
        }
        Ok(Arc::new(Drivers {
            local,
            network: config.network.clone(),
            remote: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }))
    }

    /// The platform's own engine (where the AI gateway's door listens, what readiness asks).
    pub fn local(&self) -> Arc<dyn Orchestrator> {
        Arc::clone(&self.local)
    }

    /// The driver of a pool's workspaces.
    pub fn for_pool(&self, pool: &str) -> Arc<dyn Orchestrator> {
        self.remote
            .read()
            .ok()
            .and_then(|r| r.get(pool).map(|r| Arc::clone(&r.driver)))
            .unwrap_or_else(|| self.local())
    }

    /// Every driver, the local one first, each once.
    pub fn all(&self) -> Vec<Arc<dyn Orchestrator>> {
        let mut all = vec![self.local()];
        if let Ok(remote) = self.remote.read() {
            all.extend(remote.values().map(|r| Arc::clone(&r.driver)));
        }
        all
    }

    /// The pools with a driver of their own, with it.
    pub fn remote(&self) -> Vec<(String, Arc<dyn Orchestrator>)> {
        self.remote
            .read()
            .map(|r| {
                let mut all: Vec<_> = r
                    .iter()
                    .map(|(p, r)| (p.clone(), Arc::clone(&r.driver)))
                    .collect();
                all.sort_by(|a, b| a.0.cmp(&b.0));
                all
            })
            .unwrap_or_default()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Makes the drivers match the pools' engines: a swarm pool gets a driver on its
    /// manager (its network prepared), one whose endpoint changed a new one, and a pool
    /// back on docker (or gone) loses its own. A driver that cannot be made is logged and
    /// its pool left on none of its own (its starts then fail in words).
    pub async fn sync(&self, engines: &[PoolEngine<'_>]) {
        let wanted: HashMap<&str, &str> = engines
            .iter()
            .filter(|e| e.engine == "swarm")
            .filter_map(|e| Some((e.pool, e.endpoint?)))
            .collect();
        let (stale, missing) = {
            let Ok(remote) = self.remote.read() else {
                return;
            };
            let stale: Vec<String> = remote
                .iter()
                .filter(|(pool, r)| wanted.get(pool.as_str()) != Some(&r.endpoint.as_str()))
                .map(|(pool, _)| pool.clone())
                .collect();
            let missing: Vec<(String, String)> = wanted
                .iter()
                .filter(|(pool, endpoint)| {
                    remote
                        .get(**pool)
                        .is_none_or(|r| r.endpoint.as_str() != **endpoint)
                })
                .map(|(p, e)| ((*p).to_owned(), (*e).to_owned()))
                .collect();
            (stale, missing)
        };
        if stale.is_empty() && missing.is_empty() {
            return;
        }
        let mut made = Vec::new();
        for (pool, endpoint) in missing {
            match SwarmDriver::connect(&endpoint, &pool, &self.network) {
                Ok(driver) => {
                    let driver: Arc<dyn Orchestrator> = Arc::new(driver);
                    if let Err(e) = driver.prepare_network().await {
                        tracing::error!(pool, error = %e, "cannot prepare the swarm pool's network");
                    }
                    made.push((pool, Remote { endpoint, driver }));
                }
                Err(e) => {
                    tracing::error!(pool, endpoint, error = %e, "cannot reach the swarm pool's manager");
                }
            }
        }
        if let Ok(mut remote) = self.remote.write() {
            for pool in &stale {
                remote.remove(pool);
            }
            for (pool, r) in made {
                tracing::info!(pool, endpoint = %r.endpoint, "the pool runs on a swarm");
                remote.insert(pool, r);
            }
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}
