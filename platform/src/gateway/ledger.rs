//! The spend ledger: one append-only row per call through the door (PostgreSQL refuses to
//! change or delete one), and the sums the usage views read. Rows hold no prompt, no answer
//! and no secret: who, which provider and model, tokens, cost, latency and outcome.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

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

pub async fn append(conn: &mut AsyncPgConnection, entry: &Entry) -> QueryResult<()> {
    diesel::insert_into(ai_ledger::table)
        .values(entry)
        .execute(conn)
        .await
        .map(drop)
}
