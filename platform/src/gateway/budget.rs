//! Budgets that hold, and rates: tokens per user per period (the access level's
//! `ai_tokens_per_day`; the period is a day, `WEBSPLAT_GATEWAY_BUDGET_PERIOD` shortens it
//! for tests), and calls and tokens per user per minute (the level's
//! `ai_requests_per_minute` and `ai_tokens_per_minute`), all counted in Redis so every
//! replica shares them. Before a call its most (estimated input plus its output cap) is
//! *reserved* by one Lua script — one round trip — which grants it only if the period's
//! spend plus reservations stays within the budget and the minute's calls and tokens within
//! the rates, so concurrent calls can never overspend; after the call the reservation is
//! *settled* to what was used (refunded in full when nothing was), in the budget and in the
//! minute's tokens alike. It must never grant a reservation it cannot see the budget for.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::caller::Caller;
use crate::kv::{Kv, KvError};
use crate::users::UserId;

/// KEYS: the period's budget, the minute's rates (a hash: `r` calls, `t` tokens).
/// ARGV: tokens wanted, budget, budget TTL, calls per minute, tokens per minute, rate TTL.
/// Returns {outcome, count}: 1 granted (the spend now), 0 over budget (the spend), 2 over
/// the call rate (the minute's calls), 3 over the token rate (the minute's tokens).
const RESERVE: &str = r"
local want = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + want > tonumber(ARGV[2]) then
  return {0, used}
end
local calls = tonumber(redis.call('HGET', KEYS[2], 'r') or '0')
if calls + 1 > tonumber(ARGV[4]) then
  return {2, calls}
end
local minute = tonumber(redis.call('HGET', KEYS[2], 't') or '0')
if minute + want > tonumber(ARGV[5]) then
  return {3, minute}
end
local now = redis.call('INCRBY', KEYS[1], want)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('HINCRBY', KEYS[2], 'r', 1)
redis.call('HINCRBY', KEYS[2], 't', want)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
return {1, now}
";

const MINUTE: i64 = 60;

#[derive(Clone)]
pub struct Budget {
    kv: Kv,
    period: Duration,
    /// The SHA-1 Redis knows [`RESERVE`] by, once loaded.
    script: Arc<OnceLock<String>>,
}

/// Tokens held for one call until it is settled.
#[derive(Debug, Clone)]
pub struct Reservation {
    key: String,
    rate_key: String,
    pub tokens: i64,
    /// How long the reservation waited for a Redis connection, and its round trip.
    pub pool_wait: Duration,
    pub round_trip: Duration,
}

/// Which limit refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Tokens per period.
    Budget,
    /// Calls per minute.
    Calls,
    /// Tokens per minute.
    Tokens,
}

/// A refused reservation, with what the sentence to the caller needs.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    pub limit_hit: Limit,
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
            script: Arc::new(OnceLock::new()),
        }
    }

    fn period_start(&self, now: i64) -> i64 {
        let secs = self.period.as_secs() as i64;
        now - now.rem_euclid(secs)
    }

    fn key(&self, user: UserId, start: i64) -> String {
        self.kv.key(&format!("ai-budget:{user}:{start}"))
    }

    fn rate_key(&self, user: UserId, minute: i64) -> String {
        self.kv.key(&format!("ai-rate:{user}:{minute}"))
    }

    /// Reserves `tokens` for `caller` within their level's budget and rates.
    pub async fn reserve(
        &self,
        caller: &Caller,
        tokens: i64,
    ) -> Result<Result<Reservation, Refused>, KvError> {
        let now = chrono::Utc::now().timestamp();
        let start = self.period_start(now);
        let end = start + self.period.as_secs() as i64;
        let minute = now - now.rem_euclid(MINUTE);
        let key = self.key(caller.user, start);
        let rate_key = self.rate_key(caller.user, minute);
        let ttl = self.period.as_secs() * 2 + 60;
        let (budget, rpm, tpm) = (
            caller.tokens_per_period,
            caller.requests_per_minute,
            caller.tokens_per_minute,
        );
        let reserve = |cmd: &str, script: &str| {
            let mut c = redis::cmd(cmd);
            c.arg(script)
                .arg(2)
                .arg(&key)
                .arg(&rate_key)
                .arg(tokens)
                .arg(budget)
                .arg(ttl)
                .arg(rpm)
                .arg(tpm)
                .arg(MINUTE * 2);
            c
        };
        let known = self.script.get().cloned();
        let asked = Instant::now();
        let ((outcome, used), connected, sha): ((i64, i64), Instant, String) = self
            .kv
            .run(async move |c| {
                let connected = Instant::now();
                // The script by its hash (what Redis keeps of it), loaded on first use and
                // sent whole again should Redis have lost it (a restart).
                let sha = match known {
                    Some(sha) => sha,
                    None => {
                        redis::cmd("SCRIPT")
                            .arg("LOAD")
                            .arg(RESERVE)
                            .query_async::<String>(c)
                            .await?
                    }
                };
                let answer = match reserve("EVALSHA", &sha).query_async(c).await {
                    Err(e) if e.code() == Some("NOSCRIPT") => {
                        reserve("EVAL", RESERVE).query_async(c).await
                    }
                    other => other,
                }?;
                Ok((answer, connected, sha))
            })
            .await?;
        let _ = self.script.set(sha);
        let (pool_wait, round_trip) = (connected - asked, connected.elapsed());
        let in_minute = Duration::from_secs((minute + MINUTE - now).max(1) as u64);
        Ok(match outcome {
            1 => Ok(Reservation {
                key,
                rate_key,
                tokens,
                pool_wait,
                round_trip,
            }),
            2 => Err(Refused {
                limit_hit: Limit::Calls,
                used,
                limit: rpm,
                renews_in: in_minute,
            }),
            3 => Err(Refused {
                limit_hit: Limit::Tokens,
                used,
                limit: tpm,
                renews_in: in_minute,
            }),
            _ => Err(Refused {
                limit_hit: Limit::Budget,
                used,
                limit: budget,
                renews_in: Duration::from_secs((end - now).max(1) as u64),
            }),
        })
    }

    /// Replaces a reservation by what the call used (0 refunds it all), in the period's
    /// budget and the minute's token rate.
    pub async fn settle(&self, reservation: &Reservation, used: i64) -> Result<(), KvError> {
        let delta = used - reservation.tokens;
        if delta == 0 {
            return Ok(());
        }
        let (key, rate_key) = (reservation.key.clone(), reservation.rate_key.clone());
        self.kv
            .run(async move |c| {
                redis::pipe()
                    .cmd("INCRBY")
                    .arg(&key)
                    .arg(delta)
                    .ignore()
                    .cmd("HINCRBY")
                    .arg(&rate_key)
                    .arg("t")
                    .arg(delta)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&rate_key)
                    .arg(MINUTE * 2)
                    .ignore()
                    .query_async::<()>(c)
                    .await
            })
            .await
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
