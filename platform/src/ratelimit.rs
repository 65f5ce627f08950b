//! Fixed-window rate limits in Redis, shared by every replica. One atomic pipeline per hit
//! (create the window if absent, count, read its remaining time): no read-modify-write.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::HttpRequest;

use crate::kv::{Kv, KvError};

/// Counts one hit in `bucket`; `Err(retry_after)` once more than `limit` hits fall in the
/// current window.
pub async fn hit(
    kv: &Kv,
    bucket: &str,
    limit: u32,
    window: Duration,
) -> Result<Result<(), Duration>, KvError> {
    let key = kv.key(&format!("ratelimit:{bucket}"));
    let window_ms = window.as_millis().max(1) as u64;
    let (count, ttl_ms): (u64, i64) = kv
        .run(async move |c| {
            let (count, ttl): (u64, i64) = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(0)
                .arg("PX")
                .arg(window_ms)
                .arg("NX")
                .ignore()
                .cmd("INCR")
                .arg(&key)
                .cmd("PTTL")
                .arg(&key)
                .query_async(c)
                .await?;
            Ok((count, ttl))
        })
        .await?;
    if count > u64::from(limit) {
        let ms = u64::try_from(ttl_ms).unwrap_or(window_ms).max(1);
        return Ok(Err(Duration::from_millis(ms)));
    }
    Ok(Ok(()))
}

/// The client's address: the TCP peer, or the first `X-Forwarded-For` hop when the
/// platform is configured to sit behind a trusted proxy.
pub fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.peer_addr().map(|a| a.ip())
}
