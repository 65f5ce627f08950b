//! PostgreSQL: the connection pool (diesel_async over deadpool) and the embedded migrations.
//! Migrations run over the async connection through diesel's sync harness on a blocking
//! thread, so no libpq is needed. Queries live beside the models they serve, not here.

use std::time::Duration;

use anyhow::Context;
use deadpool::Runtime;
use diesel::Connection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use secrecy::{ExposeSecret, SecretString};

use crate::config::DatabaseConfig;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

pub type Pool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;
pub type Conn = deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// How long a request waits for a connection before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn pool(config: &DatabaseConfig) -> anyhow::Result<Pool> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(
        config.url.expose_secret().to_owned(),
    );
    Pool::builder(manager)
        .max_size(config.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(ACQUIRE_TIMEOUT))
        .create_timeout(Some(ACQUIRE_TIMEOUT))
        .recycle_timeout(Some(ACQUIRE_TIMEOUT))
        .build()
        .context("cannot build the PostgreSQL pool (WEBSPLAT_DATABASE_URL)")
}

/// `text` for use inside a SQL `LIKE` pattern: its `%`, `_` and `\` match only themselves.
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Applies every pending migration; returns the versions applied.
pub async fn migrate(url: &SecretString) -> anyhow::Result<Vec<String>> {
    let url = url.expose_secret().to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .context("cannot connect to PostgreSQL (WEBSPLAT_DATABASE_URL)")?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
    .context("the migration task panicked")?
}

/// Reverts every applied migration (used by tests to prove each `down.sql` works).
pub async fn revert_all(url: &SecretString) -> anyhow::Result<()> {
    let url = url.expose_secret().to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .context("cannot connect to PostgreSQL")?;
        conn.revert_all_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("revert failed: {e}"))?;
        Ok(())
    })
    .await
    .context("the revert task panicked")?
}
