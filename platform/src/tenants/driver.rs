//! The one place that turns configuration into an orchestrator driver
//! (`WEBSPLAT_ORCHESTRATOR`). Callers get an `Arc<dyn Orchestrator>` and never learn which
//! engine is behind it.

use std::sync::Arc;

use super::docker::DockerDriver;
use super::memory::MemoryDriver;
use super::orchestrator::Orchestrator;
use crate::config::{OrchestratorKind, TenantsConfig};

/// The configured driver, with its network prepared. An engine that is away at start-up
/// is logged, not fatal: the platform still signs people in, and workspaces fail with the
/// reason until the engine is back (readiness says so too).
pub async fn from_config(config: &TenantsConfig) -> anyhow::Result<Arc<dyn Orchestrator>> {
    let driver: Arc<dyn Orchestrator> = match config.orchestrator {
        OrchestratorKind::Docker => Arc::new(DockerDriver::connect(&config.network)?),
        OrchestratorKind::Memory => {
            tracing::warn!(
                "tenants run on the in-memory engine (WEBSPLAT_ORCHESTRATOR=memory): for tests and development only"
            );
            MemoryDriver::shared()
        }
    };
    if let Err(e) = driver.prepare_network().await {
        tracing::error!(error = %e, "cannot prepare the tenant network");
    }
    Ok(driver)
}
