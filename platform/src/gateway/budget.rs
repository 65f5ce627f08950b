//! Budgets that hold: tokens per user per period (the access level's `ai_tokens_per_day`;
//! the period is a day, `WEBSPLAT_GATEWAY_BUDGET_PERIOD` shortens it for tests), counted in
//! Redis so every replica shares them. Before a call its most (estimated input plus its
//! output cap) is *reserved* by one Lua script, which grants it only if the period's
//! spend plus reservations stays within the budget, so concurrent calls can never
//! overspend; after the call the reservation is *settled* to what was used (refunded in
//! full when nothing was). It must never grant a reservation it cannot see the budget for.

use std::time::Duration;

use crate::kv::{Kv, KvError};
use crate::users::UserId;

/// Reserves `ARGV[1]` under the limit `ARGV[2]`; returns {granted, spent-and-reserved}.
const RESERVE: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = tonumber(ARGV[1])
if used + want > tonumber(ARGV[2]) then
  return {0, used}
end
local now = redis.call('INCRBY', KEYS[1], want)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, now}
";

#[derive(Clone)]
pub struct Budget {
    kv: Kv,
    period: Duration,
}

/// Tokens held for one call until it is settled.
#[derive(Debug, Clone)]
pub struct Reservation {
    key: String,
    pub tokens: i64,
}

/// A refused reservation, with what the sentence to the caller needs.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    pub used: i64,
    pub limit: i64,
    pub renews_in: Duration,
}

/// The state of a user's budget in the current period.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// Tokens spent (and reserved by calls in flight) this period.
    pub used: i64,
    pub period_start: i64,
    pub period_end: i64,
}

impl Budget {
    pub fn new(kv: Kv, period: Duration) -> Self {
        Budget {
            kv,
            period: period.max(Duration::from_secs(1)),
        }
    }

    fn period_start(&self, now: i64) -> i64 {
        let secs = self.period.as_secs() as i64;
        now - now.rem_euclid(secs)
    }

    fn key(&self, user: UserId, start: i64) -> String {
        self.kv.key(&format!("ai-budget:{user}:{start}"))
    }

    /// Reserves `tokens` for `user` within `limit` tokens per period.
    pub async fn reserve(
        &self,
        user: UserId,
        tokens: i64,
        limit: i64,
    ) -> Result<Result<Reservation, Refused>, KvError> {
        let now = chrono::Utc::now().timestamp();
        let start = self.period_start(now);
        let end = start + self.period.as_secs() as i64;
        let key = self.key(user, start);
        let ttl = self.period.as_secs() * 2 + 60;
        let (granted, used): (i64, i64) = self
            .kv
            .run({
                let key = key.clone();
                async move |c| {
                    redis::cmd("EVAL")
                        .arg(RESERVE)
                        .arg(1)
                        .arg(&key)
                        .arg(tokens)
                        .arg(limit)
                        .arg(ttl)
                        .query_async(c)
                        .await
                }
            })
            .await?;
        if granted == 1 {
            Ok(Ok(Reservation { key, tokens }))
        } else {
            Ok(Err(Refused {
                used,
                limit,
                renews_in: Duration::from_secs((end - now).max(1) as u64),
            }))
        }
    }

    /// Replaces a reservation by what the call used (0 refunds it all).
    pub async fn settle(&self, reservation: &Reservation, used: i64) -> Result<(), KvError> {
        let delta = used - reservation.tokens;
        if delta == 0 {
            return Ok(());
        }
        let key = reservation.key.clone();
        self.kv
            .run(async move |c| {
                redis::cmd("INCRBY")
                    .arg(&key)
                    .arg(delta)
                    .query_async::<i64>(c)
                    .await
            })
            .await
            .map(drop)
    }

    /// What `user` has spent (and holds) this period.
    pub async fn standing(&self, user: UserId) -> Result<Standing, KvError> {
        let now = chrono::Utc::now().timestamp();
        let start = self.period_start(now);
        let key = self.key(user, start);
        let used: Option<i64> = self
            .kv
            .run(async move |c| redis::cmd("GET").arg(&key).query_async(c).await)
            .await?;
        Ok(Standing {
            used: used.unwrap_or(0).max(0),
            period_start: start,
            period_end: start + self.period.as_secs() as i64,
        })
    }
}
