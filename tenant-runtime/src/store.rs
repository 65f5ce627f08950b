//! The workspace database: one SQLite file under the data directory, in WAL mode with full
//! fsync, foreign keys on, migrated at start. One connection, used on a blocking thread: a
//! workspace has one user, and SQLite has one writer anyway.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::ApiError;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
pub const DATABASE_FILE: &str = "workspace.sqlite3";

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<SqliteConnection>>,
}

impl Store {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let path = data_dir.join(DATABASE_FILE);
        let url = path
            .to_str()
            .context("the data directory's path is not UTF-8")?;
        let mut conn = SqliteConnection::establish(url)
            .with_context(|| format!("cannot open {}", path.display()))?;
        conn.batch_execute(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
        )
        .context("cannot configure SQLite")?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("migrating {} failed: {e}", path.display()))?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Closes the database cleanly as the runtime stops: waits for the write in progress
    /// (the connection's lock), then folds the write-ahead log into the database file, so
    /// the next runtime on this volume opens a database with nothing to recover.
    pub async fn close(&self) -> anyhow::Result<()> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| anyhow::anyhow!("the database lock is poisoned"))?;
            guard
                .batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")
                .context("cannot checkpoint the write-ahead log")
        })
        .await?
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<T, ApiError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| {
                ApiError::internal(anyhow::anyhow!("the database lock is poisoned"))
            })?;
            f(&mut guard)
        })
        .await
        .map_err(ApiError::internal)?
    }
}

#[cfg(test)]
mod tests {
    use diesel::RunQueryDsl;

    use super::*;

    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }

    fn tables(conn: &mut SqliteConnection) -> Vec<String> {
        diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations' ORDER BY name",
        )
        .load::<Name>(conn)
        .expect("tables")
        .into_iter()
        .map(|n| n.name)
        .collect()
    }

    #[test]
    fn every_migration_reverts_and_applies_again() {
        let dir =
            std::env::temp_dir().join(format!("websplat-store-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(&dir).expect("open");
        let mut conn = store.conn.lock().expect("lock");
        let before = tables(&mut conn);
        assert!(
            before.contains(&"projects".to_owned()) && before.contains(&"documents".to_owned()),
            "{before:?}"
        );
        conn.revert_all_migrations(MIGRATIONS).expect("down");
        assert_eq!(
            tables(&mut conn),
            Vec::<String>::new(),
            "a down.sql left tables behind"
        );
        conn.run_pending_migrations(MIGRATIONS).expect("up again");
        assert_eq!(tables(&mut conn), before);
        drop(conn);
        std::fs::remove_dir_all(dir).ok();
    }
}
