//! The local model server's settings, from `WEBSPLAT_MODELS_*` environment variables, each
//! checked at start-up with an error that names the variable. Holds no secret: the server
//! needs none.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the server listens, where the model files are, and how much inference may wait.
#[derive(Debug, Clone)]
pub struct ModelsConfig {
    /// `WEBSPLAT_MODELS_LISTEN`, default `127.0.0.1:8090`.
    pub listen: SocketAddr,
    /// `WEBSPLAT_MODELS_DIR`, default `.data/models` (what `scripts/models` fills).
    pub dir: PathBuf,
    /// `WEBSPLAT_MODELS_WORKERS`, default 1: inference threads, each running one request at
    /// a time (candle already spreads one request over every core).
    pub workers: usize,
    /// `WEBSPLAT_MODELS_QUEUE`, default 16: requests that may wait for a worker; one more is
    /// answered 503.
    pub queue: usize,
}

/// A setting that could not be used, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ModelsConfig {
    /// The defaults, with model files from `dir`, listening on a free loopback port.
    pub fn for_tests(dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir: dir.into(),
            workers: 1,
            queue: 16,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let listen = match get("WEBSPLAT_MODELS_LISTEN") {
            None => SocketAddr::from(([127, 0, 0, 1], 8090)),
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                variable: "WEBSPLAT_MODELS_LISTEN",
                message: format!("{v:?} is not an address like 127.0.0.1:8090"),
            })?,
        };
        let dir = get("WEBSPLAT_MODELS_DIR")
            .filter(|v| !v.trim().is_empty())
            .map_or_else(|| PathBuf::from(".data/models"), PathBuf::from);
        let workers = count(&get, "WEBSPLAT_MODELS_WORKERS", 1, 64)?;
        let queue = count(&get, "WEBSPLAT_MODELS_QUEUE", 16, 10_000)?;
        Ok(Self {
            listen,
            dir,
            workers,
            queue,
        })
    }
}

fn count(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(raw) = get(variable) else {
        return Ok(default);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError {
            variable,
            message: format!("{raw:?} is not a whole number from 1 to {max}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_name_the_variable() {
        let c = ModelsConfig::from_lookup(|_| None).expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8090");
        assert_eq!(c.dir, PathBuf::from(".data/models"));
        assert_eq!((c.workers, c.queue), (1, 16));

        let e = ModelsConfig::from_lookup(|n| {
            (n == "WEBSPLAT_MODELS_QUEUE").then(|| "zero".to_owned())
        })
        .expect_err("a bad queue");
        assert!(e.to_string().starts_with("WEBSPLAT_MODELS_QUEUE:"), "{e}");
        let e = ModelsConfig::from_lookup(|n| {
            (n == "WEBSPLAT_MODELS_LISTEN").then(|| "localhost".to_owned())
        })
        .expect_err("a bad address");
        assert!(e.to_string().contains("WEBSPLAT_MODELS_LISTEN"), "{e}");
    }
}
