//! The local model: SmolLM2-135M-Instruct (chat, from its GGUF) and all-MiniLM-L6-v2
//! (embeddings, from its safetensors), run on the CPU with candle and served as an
//! OpenAI-compatible HTTP upstream (`platform models`), so the product works with no key
//! and no network. The gateway treats it like any other provider.
//!
//! It loads files only from the models directory `scripts/models` fills; it must never
//! download anything, hold a provider key, or run inference on the HTTP workers (a bounded
//! pool of threads does, see [`pool`]).

pub mod chat;
pub mod config;
pub mod embed;
pub mod metrics;
pub mod openai;
pub mod pool;
pub mod server;
mod tokenizer;

use std::process::ExitCode;

pub use chat::{ChatMessage, ChatModel, FinishReason, GenerationParams};
pub use config::ModelsConfig;
pub use embed::Embedder;
pub use server::{RunningServer, spawn};

/// The chat model's id on the wire.
pub const CHAT_MODEL_ID: &str = "smollm2-135m-instruct";
/// The embedding model's id on the wire.
pub const EMBEDDING_MODEL_ID: &str = "all-minilm-l6-v2";
/// The value of the `x-websplat-model` header on every answer of this server: the answer
/// comes from a small local model, not a frontier one.
pub const MODEL_LABEL: &str = "local-small";

/// `platform models`: reads the configuration from the environment, loads both models and
/// serves until Ctrl-C or SIGTERM. Logs go to stderr (`WEBSPLAT_LOG`, `WEBSPLAT_LOG_FORMAT`).
pub fn main_cli() -> ExitCode {
    init_logs();
    let config = match ModelsConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("platform models: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("platform models: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let server = spawn(config).await?;
        tracing::info!(address = %server.address, "serving the local model");
        server.wait().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = ?e, "platform models stopped with an error");
            eprintln!("platform models: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("WEBSPLAT_LOG").unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let json = std::env::var("WEBSPLAT_LOG_FORMAT").is_ok_and(|f| f == "json");
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let result = if json {
        registry.with(layer.json()).try_init()
    } else {
        registry.with(layer).try_init()
    };
    if result.is_err() {
        tracing::debug!("a tracing subscriber was already installed");
    }
}
