//! Fixed-window rate limits in Redis, shared by every replica. One atomic pipeline per hit
//! (create the window if absent, count, read its remaining time): no read-modify-write.

use std::time::Duration;

use crate::kv::{Kv, KvError};

/// Counts one hit in `bucket`; `Err(retry_after)` once more than `limit` hits fall in the
/// current window.
pub async fn hit(
    kv: &Kv,
    bucket: &str,
    limit: u32,
    window: Duration,
) -> Result<Result<(), Duration>, KvError> {
    hit_all(kv, &[(bucket.to_owned(), limit)], window).await
}

/// Counts one hit in each bucket, in one round trip; `Err(retry_after)` (the longest wait)
/// if any bucket is over its limit.
pub async fn hit_all(
    kv: &Kv,
    buckets: &[(String, u32)],
    window: Duration,
) -> Result<Result<(), Duration>, KvError> {
    let keys: Vec<String> = buckets
        .iter()
        .map(|(bucket, _)| kv.key(&format!("ratelimit:{bucket}")))
        .collect();
    let window_ms = window.as_millis().max(1) as u64;
    let counts: Vec<(u64, i64)> = kv
        .run(async move |c| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for key in &keys {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(0)
                    .arg("PX")
                    .arg(window_ms)
                    .arg("NX")
                    .ignore()
                    .cmd("INCR")
                    .arg(key)
                    .cmd("PTTL")
                    .arg(key);
            }
            let flat: Vec<i64> = pipe.query_async(c).await?;
            Ok(flat
                .chunks(2)
                .map(|pair| (pair[0].max(0) as u64, pair.get(1).copied().unwrap_or(-1)))
                .collect())
        })
        .await?;
    let mut wait: Option<Duration> = None;
    for ((count, ttl_ms), (_, limit)) in counts.iter().zip(buckets) {
        if *count > u64::from(*limit) {
            let ms = u64::try_from(*ttl_ms).unwrap_or(window_ms).max(1);
            let d = Duration::from_millis(ms);
            wait = Some(wait.map_or(d, |w| w.max(d)));
        }
    }
    Ok(wait.map_or(Ok(()), Err))
}
