//! What one workspace, or one client address, may take of this replica's proxy: requests
//! and WebSockets in progress at once per workspace, and requests per minute per workspace
//! and per client address (a token bucket each, in process: no Redis round trip on the hot
//! path, so the limits are per replica). Every worker thread shares one [`Limits`].
//! A refusal is a sentence with `Retry-After`; this must never hold a lock across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::TenantsConfig;
use crate::error::ApiError;

/// Beyond this many buckets, those untouched for a minute go.
const MAX_BUCKETS: usize = 100_000;

#[derive(Default)]
struct InFlight {
    requests: u32,
    websockets: u32,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Limits {
    max_requests: u32,
    max_websockets: u32,
    per_workspace: u32,
    per_ip: u32,
    in_flight: Mutex<HashMap<String, InFlight>>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// What a request holds while it is in progress; given back when dropped.
pub struct Held {
    limits: Arc<Limits>,
    slug: String,
    websocket: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut in_flight = self
            .limits
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = in_flight.get_mut(&self.slug) {
            if self.websocket {
                n.websockets = n.websockets.saturating_sub(1);
            } else {
                n.requests = n.requests.saturating_sub(1);
            }
            if n.requests == 0 && n.websockets == 0 {
                in_flight.remove(&self.slug);
            }
        }
    }
}

impl Limits {
    pub fn new(config: &TenantsConfig) -> Arc<Self> {
        Arc::new(Limits {
            max_requests: config.proxy_max_requests_per_workspace,
            max_websockets: config.proxy_max_websockets_per_workspace,
            per_workspace: config.proxy_requests_per_minute,
            per_ip: config.proxy_requests_per_minute_per_ip,
            in_flight: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// One request from `client` (its rate key), before anything else is looked at.
    pub fn client(&self, client: &str) -> Result<(), ApiError> {
        self.take(&format!("ip:{client}"), self.per_ip)
            .map_err(|wait| {
                ApiError::TooMany(
                    format!(
                        "too many requests to workspaces from your address (more than {} a minute); retry in {} seconds",
                        self.per_ip,
                        wait.as_secs().max(1)
                    ),
                    wait,
                )
            })
    }

    /// One request to the workspace `slug` by its owner: counted against its rate, and held
    /// among its requests (or WebSockets) in progress until the [`Held`] is dropped.
    pub fn enter(self: &Arc<Self>, slug: &str, websocket: bool) -> Result<Held, ApiError> {
        self.take(&format!("ws:{slug}"), self.per_workspace)
            .map_err(|wait| {
                ApiError::TooMany(
                    format!(
                        "your workspace is getting more requests than it may (more than {} a minute); retry in {} seconds",
                        self.per_workspace,
                        wait.as_secs().max(1)
                    ),
                    wait,
                )
            })?;
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = in_flight.entry(slug.to_owned()).or_default();
        if websocket {
            if n.websockets >= self.max_websockets {
                return Err(ApiError::TooMany(
                    format!(
                        "your workspace already has {} live connections (WebSockets) open; close one (another tab) and retry",
                        self.max_websockets
                    ),
                    Duration::from_secs(5),
                ));
            }
            n.websockets += 1;
        } else {
            if n.requests >= self.max_requests {
                return Err(ApiError::TooMany(
                    format!(
                        "your workspace already has {} requests in progress; retry when some have finished",
                        self.max_requests
                    ),
                    Duration::from_secs(1),
                ));
            }
            n.requests += 1;
        }
        Ok(Held {
            limits: Arc::clone(self),
            slug: slug.to_owned(),
            websocket,
        })
    }

    /// Takes a token from the bucket `key` (`per_minute` of them, refilled steadily);
    /// `Err` is how long until one is there.
    fn take(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let capacity = f64::from(per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            buckets.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(60));
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second)
            .min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / per_second;
        Err(Duration::from_secs_f64(wait.ceil().max(1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: u32, websockets: u32, per_minute: u32) -> Arc<Limits> {
        Arc::new(Limits {
            max_requests: requests,
            max_websockets: websockets,
            per_workspace: per_minute,
            per_ip: per_minute,
            in_flight: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    #[test]
    fn requests_in_progress_are_capped_and_given_back() {
        let limits = limits(2, 1, 1000);
        let a = limits.enter("alice", false).expect("first");
        let _b = limits.enter("alice", false).expect("second");
        let refused = limits.enter("alice", false).err().expect("third refused");
        assert!(refused.to_string().contains("2 requests in progress"));
        assert!(
            limits.enter("bob", false).is_ok(),
            "another workspace is apart"
        );
        let _ws = limits
            .enter("alice", true)
            .expect("a WebSocket counts apart");
        assert!(limits.enter("alice", true).is_err());
        drop(a);
        assert!(limits.enter("alice", false).is_ok());
    }

    #[test]
    fn a_bucket_allows_a_minute_at_once_then_says_when() {
        let limits = limits(100, 100, 3);
        for _ in 0..3 {
            limits.client("1.2.3.4").expect("within the burst");
        }
        let refused = limits.client("1.2.3.4").expect_err("refused");
        assert!(
            refused.to_string().contains("retry in 20 seconds"),
            "{refused}"
        );
        assert!(limits.client("5.6.7.8").is_ok());
    }
}
