//! Tenants: each signed-in user's workspace runtime, one fresh container per login.
//!
//! - [`orchestrator`]: the narrow interface to whatever runs containers; [`docker`] drives
//!   Docker Engine through it.
//! - [`store`]: workspaces (slug, volume) and tenants (the lifecycle) in PostgreSQL.
//! - [`lifecycle`]: admission (limits), spawn, readiness, stop, replace, delete.
//! - [`keeper`]: the background loops of every replica: Docker events, the reconciler and
//!   the idle reaper.
//! - [`routing`]: what the proxy needs on its hot path, in Redis: routes, workspace
//!   sessions, one-time handoff codes and activity.
//!
//! The HTTP side (the workspace proxy and `/api/v1/workspace…`) is in the web layer
//! (`web::proxy`, `web::handlers::workspace`); nothing here sees a request.

pub mod docker;
pub mod identity;
pub mod keeper;
pub mod lifecycle;
pub mod orchestrator;
pub mod routing;
pub mod store;

pub use lifecycle::{Tenants, WorkspaceStatus};
pub use store::State;

use std::sync::Arc;

/// The tenants of this deployment over the configured orchestrator, for the server and the
/// command line alike.
pub async fn connect(
    config: &crate::config::Config,
    db: crate::db::Pool,
    kv: crate::kv::Kv,
    metrics: crate::metrics::Metrics,
) -> anyhow::Result<Arc<Tenants>> {
    let driver = docker::DockerDriver::connect(&config.tenants.network)?;
    if let Err(e) = driver.ensure_network().await {
        // The platform still signs people in; workspaces fail with this reason until
        // the engine is back (readiness says so too).
        tracing::error!(error = %e, "cannot prepare the tenant network");
    }
    Tenants::new(
        config.tenants.clone(),
        config.public_url.clone(),
        db,
        kv,
        Arc::new(driver),
        metrics,
    )
}
