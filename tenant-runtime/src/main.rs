//! The `tenant-runtime` binary. Settings come from the environment, set by the platform
//! when it starts the container; a setting it cannot use stops it at start with exit code 2
//! and a message that names the setting.
//!
//! - `WEBSPLAT_RUNTIME_LISTEN`: the address to serve on (default `0.0.0.0:8080`).
//! - `WEBSPLAT_RUNTIME_DATA_DIR`: where the workspace's data lives (default `/data`).
//! - `WEBSPLAT_RUNTIME_STORAGE_QUOTA`: how much it may store (default 1 GiB; bytes or with
//!   a unit, e.g. `512M`).
//! - `WEBSPLAT_RUNTIME_MAX_UPLOAD`: the largest document upload (default 20 MiB).
//! - `WEBSPLAT_RUNTIME_MAX_STAGED_UPLOAD`: the largest staged upload, a file streamed to the
//!   volume by `POST /api/v1/uploads` (default 1 GiB).
//! - `WEBSPLAT_RUNTIME_LOG`: the log filter (default `info`).
//! - `WEBSPLAT_TENANT_SECRET`: the secret the platform signs relayed requests with (at least
//!   32 characters). When set, every request without a valid `X-Websplat-Identity` is
//!   refused with 401; unset (development only), every request is answered.
//! - `WEBSPLAT_TENANT_USER`: the owner's UUID; when set, only requests signed for this user
//!   are answered.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use tenant_runtime::{Config, documents, quota, trust, uploads};
use websplat_contract::runtime::{self, env};

/// A size setting, or its default when unset.
fn size(var: &str, default: u64, example: &str) -> Result<u64, String> {
    match std::env::var(var) {
        Err(_) => Ok(default),
        Ok(raw) => quota::parse_size(&raw)
            .ok_or_else(|| format!("{var}={raw:?} is not a size (write e.g. {example})")),
    }
}

fn config() -> Result<Config, String> {
    Ok(Config {
        data_dir: PathBuf::from(
            std::env::var(env::DATA_DIR).unwrap_or_else(|_| runtime::DATA_DIR.to_owned()),
        ),
        quota_bytes: size(
            env::STORAGE_QUOTA,
            quota::DEFAULT_QUOTA_BYTES,
            "1073741824, 512M or 10G",
        )?,
        max_upload_bytes: size(env::MAX_UPLOAD, documents::DEFAULT_MAX_UPLOAD_BYTES, "20M")?,
        max_staged_upload_bytes: size(
            env::MAX_STAGED_UPLOAD,
            uploads::DEFAULT_MAX_STAGED_UPLOAD_BYTES,
            "1G or 512M",
        )?,
        trust: trust::Trust::from_env().map_err(|e| e.to_string())?,
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var(env::LOG).unwrap_or_else(|_| "info".to_owned()))
        .init();
    let config = match config() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("tenant-runtime: {message}");
            return ExitCode::from(2);
        }
    };
    let listen = std::env::var(env::LISTEN).unwrap_or_else(|_| runtime::listen_address());
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "tenant-runtime: cannot listen on {listen} ({}): {e}",
                env::LISTEN
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tenant-runtime: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(tenant_runtime::serve(config, listener));
    // Background work still under way (a job's blocking step) must not hold the exit up:
    // everything it writes is committed in SQLite or redone at the next start.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenant-runtime: {e:#}");
            ExitCode::FAILURE
        }
    }
}
