//! The `tenant-runtime` binary. Settings come from the environment, set by the platform
//! when it starts the container: `WEBSPLAT_RUNTIME_LISTEN` (default `0.0.0.0:8080`) and
//! `WEBSPLAT_RUNTIME_DATA_DIR` (default `/data`) and `WEBSPLAT_RUNTIME_STORAGE_QUOTA`
//! (default 1 GiB; bytes or with a unit, e.g. `512M`), `WEBSPLAT_RUNTIME_MAX_UPLOAD` (the
//! largest document upload, default 20 MiB).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
const DEFAULT_DATA_DIR: &str = "/data";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("WEBSPLAT_RUNTIME_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        .init();
    let listen =
        std::env::var("WEBSPLAT_RUNTIME_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
    let data_dir = PathBuf::from(
        std::env::var("WEBSPLAT_RUNTIME_DATA_DIR").unwrap_or_else(|_| DEFAULT_DATA_DIR.to_owned()),
    );
    let quota = match std::env::var("WEBSPLAT_RUNTIME_STORAGE_QUOTA") {
        Err(_) => tenant_runtime::quota::DEFAULT_QUOTA_BYTES,
        Ok(raw) => match tenant_runtime::quota::parse_size(&raw) {
            Some(q) => q,
            None => {
                eprintln!(
                    "tenant-runtime: WEBSPLAT_RUNTIME_STORAGE_QUOTA={raw:?} is not a size (write e.g. 1073741824, 512M or 10G)"
                );
                return ExitCode::from(2);
            }
        },
    };
    let max_upload = match std::env::var("WEBSPLAT_RUNTIME_MAX_UPLOAD") {
        Err(_) => tenant_runtime::documents::DEFAULT_MAX_UPLOAD_BYTES,
        Ok(raw) => match tenant_runtime::quota::parse_size(&raw) {
            Some(q) => q,
            None => {
                eprintln!(
                    "tenant-runtime: WEBSPLAT_RUNTIME_MAX_UPLOAD={raw:?} is not a size (write e.g. 20M)"
                );
                return ExitCode::from(2);
            }
        },
    };
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tenant-runtime: cannot listen on {listen} (WEBSPLAT_RUNTIME_LISTEN): {e}");
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
    match runtime.block_on(tenant_runtime::serve(
        &data_dir, listener, quota, max_upload,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenant-runtime: {e:#}");
            ExitCode::FAILURE
        }
    }
}
