//! Logs and request identity. The subscriber (pretty in a terminal, JSON when asked with
//! `WEBSPLAT_LOG_FORMAT=json`), and the id of the request being served, which every error
//! body and audit record names. The web layer's request middleware (`web::middleware`)
//! chooses the id and runs the request inside [`with_request_id`]; nothing here sees a
//! request.

use std::future::Future;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, or `"-"` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// Runs `work` as the request `id`: [`current_request_id`] answers `id` inside it.
pub async fn with_request_id<F: Future>(id: String, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

/// Installs the global subscriber. A second call (e.g. from tests) keeps the first.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer()).try_init(),
    };
    if result.is_err() {
        tracing::debug!("a tracing subscriber was already installed");
    }
}
