//! Crash points for the tests: named places (`after_index_commit`, `generation_saved`) where
//! the process kills itself when the tests ask, so they can stop it exactly where a crash
//! would do the most harm and check what a restart makes of it. Never set in production,
//! and not a setting users are told about. This module must never import capability modules.

/// Test-only: names the point at which the process aborts.
const CRASH_AT_VAR: &str = "WEBSPLAT_RUNTIME_TEST_CRASH_AT";

/// Kills the process here (SIGKILL, as the kernel or Docker would) if the tests asked for a
/// crash at this point; aborts if `kill` cannot be run.
pub(crate) fn crash_point(at: &str) {
    if std::env::var(CRASH_AT_VAR).is_ok_and(|v| v == at) {
        tracing::error!(at, "killed at a crash point, as {CRASH_AT_VAR} asks");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}
