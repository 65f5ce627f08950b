//! The spend ledger: one append-only row per call through the door (PostgreSQL refuses to
//! change or delete one), and the sums the usage views read. Rows hold no prompt, no answer
//! and no secret: who, which provider and model, tokens, cost, latency and outcome. Rows
//! are written off the calls' path, in batches ([`Writer`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use tokio::sync::{mpsc, oneshot};

use crate::db;
use crate::schema::ai_ledger;
use crate::users::UserId;

/// How a call ended, as the ledger and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The provider broke off a stream after it had begun.
    Cut,
    /// The client went away before the answer was complete.
    Cancelled,
    /// No provider answered (after retries and fallbacks).
    ProviderError,
    /// A provider refused the request itself (a 4xx of its own).
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Cut => "cut",
            Outcome::Cancelled => "cancelled",
            Outcome::ProviderError => "provider_error",
            Outcome::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ai_ledger)]
pub struct Entry {
    pub user_id: UserId,
    pub endpoint: &'static str,
    pub provider: String,
    pub model: String,
    pub alias: Option<String>,
    pub streamed: bool,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub tokens_cached: i64,
    pub cost_nanos: i64,
    pub latency_ms: i32,
    pub outcome: &'static str,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
}

/// Rows waiting for the writer, at most; a call that finds it full waits its turn (a row
/// is never dropped).
const CAPACITY: usize = 8192;
/// Rows per INSERT, at most.
const BATCH: usize = 500;
const ATTEMPTS: u32 = 5;

enum Message {
    Row(Box<Entry>),
    /// Answered once every row sent before it is in PostgreSQL (or given up on).
    Flush(oneshot::Sender<()>),
}

/// Writes ledger rows off the calls' path: a call hands its row to a bounded channel and
/// goes on; one task inserts what has gathered, many rows per statement, retrying a
/// failed insert. [`Writer::flush`] waits until every row handed over is written (the
/// platform calls it on a graceful shutdown, after the door has drained).
pub struct Writer {
    tx: mpsc::Sender<Message>,
    /// Rows waiting for room in a full channel (each in a task of its own).
    waiting: Arc<AtomicUsize>,
}

impl Writer {
    pub fn start(db: db::Pool) -> (Writer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let writer = Writer {
            tx,
            waiting: Arc::new(AtomicUsize::new(0)),
        };
        (writer, tokio::spawn(run(db, rx)))
    }

    /// Hands a row to the writer; never waits on the caller's path unless the channel is
    /// full, and then a task waits for room in its stead.
    pub fn write(&self, entry: Entry) {
        match self.tx.try_send(Message::Row(Box::new(entry))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(message)) => {
                let (tx, waiting) = (self.tx.clone(), self.waiting.clone());
                waiting.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if tx.send(message).await.is_err() {
                        tracing::error!("the AI ledger's writer has stopped: a row is lost");
                    }
                    waiting.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the AI ledger's writer has stopped: a row is lost");
            }
        }
    }

    /// Waits until every row handed over so far is written.
    pub async fn flush(&self) {
        // Rows still waiting for room go in first.
        while AtomicUsize::load(&self.waiting, Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (ack, done) = oneshot::channel();
        if self.tx.send(Message::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

async fn run(db: db::Pool, mut rx: mpsc::Receiver<Message>) {
    while let Some(first) = rx.recv().await {
        let (mut rows, mut acks) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Row(entry) => rows.push(*entry),
                Message::Flush(ack) => acks.push(ack),
            }
            if rows.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !rows.is_empty() {
            insert(&db, &rows).await;
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

#[tracing::instrument(skip_all, fields(rows = rows.len()))]
async fn insert(db: &db::Pool, rows: &[Entry]) {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let result = match db.get().await {
            Ok(mut conn) => diesel::insert_into(ai_ledger::table)
                .values(rows)
                .execute(&mut conn)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("no PostgreSQL connection: {e}")),
        };
        match result {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "cannot write the AI ledger yet; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => {
                tracing::error!(error = %e, rows = rows.len(), "cannot write the AI ledger: these rows are lost");
            }
        }
    }
}
