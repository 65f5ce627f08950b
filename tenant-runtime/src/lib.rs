//! `tenant-runtime`: the WebSplat workspace server that runs inside each user's container,
//! with that user's data under its data directory (`/data` in the container). It must never
//! hold anything but its own user's data, and with a tenant secret it answers only requests
//! the platform signed for that user (`trust`).

//!
//! Layout: one folder per capability — `projects`, `documents`, `jobs`, `chat`, `agents`,
//! `analytics`, `sites` (preview, export, publish), `generation`, `uploads`, `notes` — each
//! with its logic in `mod.rs` and its thin handlers in `http.rs`; `routes` declares every
//! route and the OpenAPI document in one table. Below the capabilities, and never importing
//! them: `error`, `telemetry` (request ids and the access log), `extract` (what handlers
//! read besides JSON), `crash` (the tests' crash points), `store` and `schema`.

pub mod agents;
pub mod analytics;
pub mod chat;
pub mod crash;
pub mod documents;
pub mod error;
pub mod extract;
pub mod generation;
pub mod jobs;
pub mod notes;
pub mod projects;
pub mod quota;
pub mod routes;
pub mod schema;
pub mod sites;
pub mod store;
pub mod telemetry;
pub mod trust;
pub mod ui;
pub mod uploads;
pub mod workspace;
pub mod ws;

use std::net::TcpListener;
use std::path::PathBuf;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

/// The data directory (`/data` in the container), for what lives beside the database.
#[derive(Debug, Clone)]
pub struct DataDir(pub PathBuf);

/// What the runtime is started with; `main` reads it from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the workspace's data lives (`/data` in the container).
    pub data_dir: PathBuf,
    /// How many bytes the workspace may store.
    pub quota_bytes: u64,
    /// The largest document upload, in bytes.
    pub max_upload_bytes: u64,
    /// The largest staged upload (`/api/v1/uploads`), in bytes.
    pub max_staged_upload_bytes: u64,
    /// Whom to answer: anyone (standalone) or requests the platform signed.
    pub trust: trust::Trust,
}

/// Opens the data directory and serves on `listener` until stopped.
pub async fn serve(config: Config, listener: TcpListener) -> anyhow::Result<()> {
    let Config {
        data_dir,
        quota_bytes,
        max_upload_bytes,
        max_staged_upload_bytes,
        trust,
    } = config;
    let data_dir = data_dir.as_path();
    let store = web::Data::new(store::Store::open(data_dir)?);
    let quota = web::Data::new(quota::Quota::new(data_dir, quota_bytes));
    let dir = web::Data::new(DataDir(data_dir.to_owned()));
    let staging = web::Data::new(
        uploads::Staging::open(data_dir, max_staged_upload_bytes, store.get_ref()).await?,
    );
    let index = std::sync::Arc::new(documents::SearchIndex::open(data_dir)?);
    let jobs = web::Data::new(jobs::Jobs::start(
        store.get_ref().clone(),
        index.clone(),
        data_dir.to_owned(),
        quota.get_ref().clone(),
    ));
    let index = web::Data::from(index);
    let _roll_up = analytics::spawn_roll_up(store.get_ref().clone());
    let upload_limit = web::Data::new(documents::UploadLimit(max_upload_bytes));
    trust.log_mode();
    let trust = web::Data::new(trust);
    tracing::info!(data_dir = %data_dir.display(), addr = %listener.local_addr()?, "serving the workspace");
    let closing = store.get_ref().clone();
    HttpServer::new(move || {
        App::new()
            .app_data(store.clone())
            .app_data(quota.clone())
            .app_data(dir.clone())
            .app_data(jobs.clone())
            .app_data(index.clone())
            .app_data(upload_limit.clone())
            .app_data(staging.clone())
            .app_data(trust.clone())
            .app_data(error::json_config())
            .app_data(error::query_config())
            .app_data(error::path_config())
            .configure(routes::configure)
            // Outermost first in a request's path: its id and log, then the platform's
            // signature, before anything else reads it.
            .wrap(from_fn(trust::guard))
            .wrap(from_fn(telemetry::observe))
    })
    .listen(listener)?
    // SIGTERM (what `docker stop` sends) stops taking connections and gives the requests in
    // flight this long to finish; idle keep-alive connections do not hold the stop up.
    .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
    .run()
    .await?;
    tracing::info!("stopping: closing the workspace database");
    closing.close().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// How long requests in flight get to finish once the runtime is asked to stop; well under
/// the grace the platform gives a stopping container before it kills it.
pub const SHUTDOWN_GRACE_SECONDS: u64 = 2;
