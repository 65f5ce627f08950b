//! The label keys on every container and volume the platform makes. The reconciler finds
//! what is the platform's by them after a restart, so they never change meaning.

/// The tenant's id (a row of `tenants`).
pub const TENANT: &str = "websplat.tenant";
/// The owner's user id, as `GET /api/v1/me` shows it.
pub const USER: &str = "websplat.user";
/// The pool it was admitted to (or, warm, made for).
pub const POOL: &str = "websplat.pool";
/// A warm runtime's id (a row of `warm_runtimes`): made ahead, unclaimed until a first
/// sign-in claims it (its tenant then knows it by its container id).
pub const WARM: &str = "websplat.warm";
/// A returning person's next container's id (a row of `returning_runtimes`): made as their
/// last workspace stopped, with their volume, unclaimed until they sign in again.
pub const RETURNING: &str = "websplat.returning";
/// The hash of everything a warm container was made from (image digest included); one
/// whose hash is no longer the current one is remade.
pub const SPEC: &str = "websplat.spec";
/// The digest of the image a warm container was made from, as the engine names it.
pub const IMAGE_DIGEST: &str = "websplat.image-digest";
/// The platform version that made it.
pub const VERSION: &str = "websplat.version";
/// The deployment that owns it (`WEBSPLAT_DEPLOYMENT`).
pub const DEPLOYMENT: &str = "websplat.deployment";
/// The port the container's runtime listens on, so an engine reports its address with it.
pub const RUNTIME_PORT: &str = "websplat.runtime-port";
