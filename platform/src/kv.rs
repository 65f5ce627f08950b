//! Redis: one pool and one key namespace for the process. Every key the platform writes
//! goes through [`Kv::key`], so a deployment (or a test) with its own prefix never sees
//! another's keys. This module knows nothing of what the keys mean.

use std::time::Duration;

use anyhow::Context;
use deadpool_redis::{Connection, Pool, Runtime};
use secrecy::ExposeSecret;

use crate::config::RedisConfig;

/// How long a request waits for Redis before it counts as unavailable.
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("no Redis connection: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("Redis command failed: {0}")]
    Command(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unreadable value in Redis: {0}")]
    Corrupt(#[from] serde_json::Error),
}

#[derive(Clone)]
pub struct Kv {
    pool: Pool,
    prefix: String,
}

impl Kv {
    pub fn new(config: &RedisConfig) -> anyhow::Result<Self> {
        let pool = deadpool_redis::Config::from_url(config.url.expose_secret())
            .builder()
            .context("WEBSPLAT_REDIS_URL is not a valid Redis URL")?
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(TIMEOUT))
            .create_timeout(Some(TIMEOUT))
            .recycle_timeout(Some(TIMEOUT))
            .build()
            .context("cannot build the Redis pool")?;
        Ok(Kv {
            pool,
            prefix: config.key_prefix.clone(),
        })
    }

    /// The full key for a name within this deployment's namespace.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub async fn conn(&self) -> Result<Connection, KvError> {
        Ok(self.pool.get().await?)
    }

    /// Runs a command (or pipeline) with a deadline, so a hung Redis cannot hang a request.
    pub async fn run<T, F>(&self, f: F) -> Result<T, KvError>
    where
        F: AsyncFnOnce(&mut Connection) -> Result<T, redis::RedisError>,
    {
        tokio::time::timeout(TIMEOUT, async {
            let mut conn = self.conn().await?;
            Ok(f(&mut conn).await?)
        })
        .await
        .map_err(|_| KvError::Timeout(TIMEOUT))?
    }

    pub async fn ping(&self) -> Result<(), KvError> {
        self.run(async |c| redis::cmd("PING").query_async::<String>(c).await)
            .await
            .map(drop)
    }
}
