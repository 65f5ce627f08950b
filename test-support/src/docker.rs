//! Docker isolation for tests that start tenants: a deployment name of its own per test, the
//! removal of what that deployment left behind, and the tenant image to run. It removes only
//! what carries the test's own deployment label, never anything else on the engine.

/// A deployment name of its own (`WEBSPLAT_DEPLOYMENT`): the containers and volumes a test
/// makes carry it, so tests running at once never reconcile each other's away.
pub fn deployment() -> String {
    format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Removes a test deployment's containers and volumes (from a `Drop`, so blocking).
pub fn remove_deployment(deployment: &str) {
    let label = format!("label=websplat.deployment={deployment}");
    let listed = |args: &[&str]| -> Vec<String> {
        std::process::Command::new("docker")
            .args(args)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = listed(&["ps", "-aq", "--filter", &label]);
    if !containers.is_empty() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(&containers)
            .output();
    }
    let volumes = listed(&["volume", "ls", "-q", "--filter", &label]);
    if !volumes.is_empty() {
        let _ = std::process::Command::new("docker")
            .args(["volume", "rm", "-f"])
            .args(&volumes)
            .output();
    }
}

/// The tenant image the platform runs, built by `docker/build-tenant-image.sh` (which
/// scripts/test runs first): `WEBSPLAT_TEST_TENANT_IMAGE`, else `default` (the platform's
/// own default, passed in because this crate never depends on the platform).
pub fn tenant_image(default: &str) -> String {
    std::env::var("WEBSPLAT_TEST_TENANT_IMAGE").unwrap_or_else(|_| default.to_owned())
}
