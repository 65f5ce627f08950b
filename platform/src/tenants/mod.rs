//! Tenants: each signed-in user's workspace runtime, one fresh container per login.
//!
//! - [`orchestrator`]: the narrow interface to whatever runs containers; [`docker`] drives
//!   Docker Engine through it, [`memory`] is an engine in memory for tests and development,
//!   and [`driver`] picks one from the configuration.
//! - [`ids`]: tenant ids, workspace slugs and pool names, parsed once.
//! - [`store`]: workspaces (slug, volume) and tenants (the lifecycle) in PostgreSQL.
//! - [`lifecycle`]: admission (limits), stop, replace, fail, delete.
//! - [`spawn`]: volume, container, start and readiness of an admitted tenant.
//! - [`keeper`]: the background loops of every replica: Docker events, the reconciler and
//!   the idle reaper.
//! - [`routing`]: what the proxy needs on its hot path, in Redis: routes, workspace
//!   sessions, one-time handoff codes and activity.
//! - [`proxy`]: the workspace origins, reverse-proxied to the tenants.
//! - [`http`]: `/api/v1/workspace…` and the handoff from the platform's origin.

pub mod docker;
pub mod driver;
pub mod http;
pub mod identity;
pub mod ids;
pub mod keeper;
pub mod lifecycle;
pub mod memory;
pub mod orchestrator;
pub mod proxy;
pub mod routing;
pub mod spawn;
pub mod store;

pub use ids::{PoolName, Slug, TenantId};
pub use lifecycle::{Tenants, WorkspaceStatus};
pub use store::State;
