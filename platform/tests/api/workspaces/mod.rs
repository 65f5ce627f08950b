//! Workspaces on the machine's real Docker Engine: a fresh, hardened container per login,
//! the workspace origin behind the proxy, isolation, recovery and reconciliation, one module
//! per topic with their harness in `helpers`. The tenant image must be built first
//! (`docker/build-tenant-image.sh`; scripts/test does it).

pub(crate) mod helpers;

mod abuse;
mod cleanup;
pub(crate) mod isolation;
mod lifecycle;
mod limits;
mod proxy;
mod returning;
mod secrets;
mod sigterm;
mod starving;
mod warm;
