//! Tenants: each signed-in user's workspace runtime, one fresh container per login.
//!
//! - [`orchestrator`]: the narrow interface to whatever runs containers; [`docker`] drives
//!   Docker Engine through it, [`swarm`] a Docker Swarm cluster, [`memory`] is an engine in
//!   memory for tests and development, and [`driver`] holds the one of each pool.
//! - [`ids`]: tenant ids, workspace slugs and pool names, parsed once.
//! - [`store`]: workspaces (slug, volume) and tenants (the lifecycle) in PostgreSQL.
//! - [`lifecycle`]: start, stop, replace, fail, delete; [`admission`]: the limits, the
//!   queue or a warm container, decided in one transaction.
//! - [`queue`]: the start queue of each pool, moved by every replica.
//! - [`warm`]: started, unclaimed runtimes for first sign-ins, claimed atomically.
//! - [`returning`]: returning people's next containers, made (and started) ahead.
//! - [`spawn`]: volume, container, start and readiness of an admitted tenant.
//! - [`keeper`]: the background loops of every replica: Docker events, the reconciler and
//!   the idle reaper.
//! - [`routing`]: what the proxy needs on its hot path, in Redis: routes (which expire
//!   unless renewed while their tenant runs), workspace sessions, one-time handoff codes and
//!   activity; [`cache`]: the routes and sessions this replica holds, forgotten when any
//!   replica announces a change.
//! - [`stale`]: a route a tenant refused, dropped and its tenant replaced.
//! - [`identity`]: the header relayed requests are signed with, and each tenant's secret,
//!   derived from the platform's key (never stored).
//! - [`events`]: the replica's one subscription to workspace progress, fanned out to the
//!   progress streams it serves.
//!
//! The HTTP side (the workspace proxy and `/api/v1/workspace…`) is in the web layer
//! (`web::proxy`, `web::handlers::workspace`); nothing here sees a request.

mod admission;
pub mod cache;
pub mod docker;
pub mod driver;
pub mod events;
pub mod identity;
pub mod ids;
pub mod keeper;
pub mod lifecycle;
pub mod memory;
pub mod moving;
pub mod orchestrator;
pub mod queue;
pub mod returning;
pub mod routing;
pub mod spawn;
mod stale;
pub mod store;
pub mod swarm;
pub mod warm;

pub use ids::{PoolName, Slug, TenantId};
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
    let drivers = driver::Drivers::from_config(&config.tenants).await?;
    let keys = match &config.tenants.tenant_key {
        Some(key) => {
            use secrecy::ExposeSecret;
            identity::TenantKeys::new(key.expose_secret().as_bytes())
        }
        None => {
            use anyhow::Context;
            let mut conn = db.get().await.context("cannot reach the database")?;
            let key = store::stored_tenant_key(&mut conn)
                .await
                .context("cannot read the tenant key from the database")?;
            tracing::info!(
                "WEBSPLAT_TENANT_KEY is not set: tenant secrets are derived from a key kept in the database (set it in production)"
            );
            identity::TenantKeys::new(&key)
        }
    };
    let tenants = Tenants::new(
        config.tenants.clone(),
        config.public_url.clone(),
        db,
        kv,
        keys,
        drivers,
        metrics,
        config.authz.default_access_level.clone(),
    )?;
    if let Err(e) = tenants.sync_drivers().await {
        tracing::error!(error = %e, "cannot read the pools' engines");
    }
    Ok(tenants)
}
