//! The AI gateway: every model provider behind one metered door. Tenant runtimes never hold
//! a provider key and never reach the internet; they call the door (a listener of its own,
//! on the tenant network's gateway address, serving only `/v1/…`), signed as their user.
//! The gateway picks a provider for the model or alias asked for, reserves the user's
//! budget, calls the provider in its own wire format, meters what it used (streams too),
//! settles the budget and writes one ledger row per call.
//!
//! - [`caller`]: who is calling (the identity header, checked against the live tenant).
//! - [`routing`]: aliases, fallback before the first byte, retries, the breaker.
//! - [`openai`]: the OpenAI-compatible wire format (passed through, fields kept);
//!   [`anthropic`], [`gemini`], [`ollama`] (native) and [`responses`] (OpenAI's Responses
//!   format) translate (Vertex's tokens in [`vertex`]);
//!   [`providers`] dispatches on a provider's kind.
//! - [`stream`]: streams relayed as they come, metered, ended with an error event when cut.
//! - [`budget`], [`ledger`], [`prices`], [`usage`]: the money side.
//! - [`search`]: Tavily web search and GroundX retrieval behind the same door and budget.
//! - [`calls`]: the use-cases (chat, embeddings, models), which the door's handlers
//!   ([`door`]) call.
//!
//! It must never put a provider key in a log line, an error, a response or a container, and
//! never let a call through that its caller's budget cannot cover.

pub mod anthropic;
pub mod budget;
pub mod caller;
pub mod calls;
pub mod door;
pub mod error;
pub mod gemini;
pub mod ledger;
mod messages;
pub mod metrics;
pub mod ollama;
pub mod openai;
pub mod prices;
pub mod providers;
pub mod responses;
pub mod routing;
pub mod search;
pub mod stream;
pub mod usage;
pub mod vertex;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

pub use error::GatewayError;

use crate::config::AiConfig;
use crate::db;
use crate::kv::Kv;
use crate::tenants::Tenants;

/// Everything a call through the door needs, built once per process.
pub struct Gateway {
    pub config: AiConfig,
    pub db: db::Pool,
    pub tenants: Arc<Tenants>,
    /// Who called lately (see [`caller`]): a call through the door reads no database.
    pub callers: Arc<caller::Callers>,
    pub budget: budget::Budget,
    /// The ledger's rows, written off the calls' path.
    pub ledger: ledger::Writer,
    pub prices: prices::Prices,
    pub routing: routing::Router,
    pub metrics: metrics::GatewayMetrics,
    pub(crate) client: reqwest::Client,
    pub(crate) vertex: vertex::VertexTokens,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Builds the gateway and starts its tasks (the callers' watcher on `redis_url`, the
    /// ledger's writer); they end when it is dropped.
    pub fn new(
        config: AiConfig,
        db: db::Pool,
        kv: Kv,
        redis_url: SecretString,
        tenants: Arc<Tenants>,
        metrics: &crate::metrics::Metrics,
    ) -> anyhow::Result<Arc<Self>> {
        let client = http_client(&config)?;
        let callers = Arc::new(caller::Callers::new(kv.clone()));
        let watcher = callers.spawn_watcher(redis_url);
        let (ledger, writer) = ledger::Writer::start(db.clone());
        Ok(Arc::new(Gateway {
            callers,
            ledger,
            tasks: vec![watcher, writer],
            budget: budget::Budget::new(kv, config.budget_period),
            prices: prices::Prices::load()?,
            routing: routing::Router::new(&config),
            metrics: metrics::GatewayMetrics::new(metrics)?,
            config,
            db,
            tenants,
            client,
            vertex: vertex::VertexTokens::default(),
        }))
    }
}

/// The client providers are called with: no redirects followed, keep-alive connections.
fn http_client(config: &AiConfig) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
}

impl Drop for Gateway {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Gateway {
    /// The process's shared client (for background work and callers without a worker).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A client of its own for one of the door's worker threads, built on that thread: its
    /// connections to providers then live on the worker's runtime too, so relaying a
    /// stream never hops to another thread (a shared pool hands a worker connections whose
    /// tasks run on another worker).
    pub fn worker_client(&self) -> reqwest::Client {
        http_client(&self.config).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot build a worker's HTTP client; sharing the process's");
            self.client.clone()
        })
    }

    /// Waits until every ledger row of the calls made so far is written (on shutdown).
    pub async fn flush(&self) {
        self.ledger.flush().await;
    }

    pub(crate) fn metrics_observe(&self, entry: &ledger::Entry) {
        self.metrics.call(entry);
    }
}
