//! AI gateway figures (a harness that prints, not a test), on real PostgreSQL and Redis with
//! the `platform` binary as its own process (tenant on the in-memory engine) and, in this
//! process, the clients and a local OpenAI-compatible upstream that streams like a model
//! (a first chunk at once, then one every WEBSPLAT_BENCH_CHUNK_MS, default 20 ms,
//! WEBSPLAT_BENCH_CHUNKS of them, default 25: about half a second a stream).
//!
//! **Sustained** (the goal's figure): WEBSPLAT_BENCH_STREAMS (default 200) streams held open
//! at once for WEBSPLAT_BENCH_SECONDS (default 5) per phase — each stream's client starts
//! the next call when its last one ended, their first calls spread over one stream's
//! length — through the gateway, then straight to the same upstream, alternating
//! WEBSPLAT_BENCH_ROUNDS (default 3) times (which goes first alternates too). Printed:
//! - the gateway's own time per call (its `x-websplat-gateway-overhead-ms`: arrival at the
//!   door's handler to the first byte in hand, minus the time spent waiting on the
//!   upstream) and its stages (the `Server-Timing` entries: the signature check, reading
//!   the body, the Redis pool and the Lua reservation's round trip, the upstream);
//! - what the gateway adds to the first byte a client sees, from the outside: the first
//!   byte through it minus straight to the upstream, per percentile, same run;
//! - the platform process's CPU per call through the gateway (its whole stream relayed)
//!   and its memory (RSS), before and at peak.
//!
//! **Burst** (for comparison, not the goal): the same number of calls fired in the same
//! instant, through and direct, WEBSPLAT_BENCH_BURSTS times (default 3). There every call
//! also waits for the CPU behind the others on two cores, so its figures are the burst's
//! size times the work per call, not one call's overhead.
//!
//! Run: `scripts/bench gateway` (starts PostgreSQL and Redis; release build).

use websplat_test_support as support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use futures_util::StreamExt;
use platform::Config;
use platform::tenants::{Slug, identity, routing::Routing};
use reqwest::Client;
use serde_json::{Value, json};
use support::ChildGuard;

const PASSWORD: &str = "correct horse battery staple";
/// The `Server-Timing` entries the door sends, in the order printed.
const STAGES: [&str; 5] = ["auth", "body", "pool", "redis", "upstream"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(ms: &[f64]) -> Vec<f64> {
    let mut ms = ms.to_vec();
    ms.sort_by(|a, b| a.total_cmp(b));
    ms
}

fn report(label: &str, ms: &[f64]) {
    let ms = sorted(ms);
    println!(
        "{label:<56} p50 {:>8.3} ms   p99 {:>8.3} ms   ({} calls)",
        percentile(&ms, 0.50),
        percentile(&ms, 0.99),
        ms.len()
    );
}

/// (VmRSS in MiB, user + system CPU in seconds) of a process.
fn process_stats(pid: u32) -> (f64, f64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) after the command's closing parenthesis, in ticks
    // of 1/100 s (USER_HZ on Linux).
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .map(|ticks| ticks / 100.0)
        .unwrap_or(0.0);
    (rss, cpu)
}

/// An OpenAI-compatible upstream that streams `chunks` chunks, `pace` apart (the first at
/// once), then its usage. Its listen backlog is large, so a burst of connections is not
/// dropped (a dropped SYN is retried after a second).
fn upstream(chunks: usize, pace: Duration) -> anyhow::Result<String> {
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().route(
            "/v1/chat/completions",
            actix_web::web::post().to(move || async move {
                let events = futures_util::stream::unfold(0usize, move |i| async move {
                    if i > chunks {
                        return None;
                    }
                    if i > 0 {
                        tokio::time::sleep(pace).await;
                    }
                    let event = if i < chunks {
                        format!(
                            "data: {}\n\n",
                            json!({"id": "b", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": format!("word{i} ")}, "finish_reason": if i + 1 == chunks { json!("stop") } else { Value::Null }}]})
                        )
                    } else {
                        format!(
                            "data: {}\n\ndata: [DONE]\n\n",
                            json!({"id": "b", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": chunks, "total_tokens": 10 + chunks}})
                        )
                    };
                    Some((Ok::<_, std::io::Error>(Bytes::from(event)), i + 1))
                });
                actix_web::HttpResponse::Ok()
                    .insert_header(("content-type", "text/event-stream"))
                    .streaming(events)
            }),
        )
    })
    .workers(1)
    .backlog(4096)
    .bind(("127.0.0.1", 0))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("the upstream bound no address"))?;
    tokio::spawn(server.run());
    Ok(format!("http://{addr}/v1"))
}

/// What one streamed call saw.
struct Seen {
    /// When the call started.
    at: Instant,
    first: f64,
    total: f64,
    /// The gateway's own time, from its header.
    overhead: Option<f64>,
    /// The door's `Server-Timing` entries (name, ms).
    stages: Vec<(String, f64)>,
}

fn server_timing(value: &str) -> Vec<(String, f64)> {
    value
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.trim().split(';');
            let name = parts.next()?.trim().to_owned();
            let dur = parts.find_map(|p| p.trim().strip_prefix("dur="))?;
            Some((name, dur.parse().ok()?))
        })
        .collect()
}

/// One streamed call, read to its end.
async fn stream(client: &Client, url: &str, header: Option<String>) -> anyhow::Result<Seen> {
    let body = json!({"model": "fast", "messages": [{"role": "user", "content": "Say a few words."}], "stream": true, "max_tokens": 64});
    let started = Instant::now();
    let mut request = client.post(url).json(&body);
    if let Some(h) = header {
        request = request.header(identity::HEADER, h);
    }
    let r = request.send().await?;
    anyhow::ensure!(r.status() == 200, "{}", r.status());
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let overhead = header("x-websplat-gateway-overhead-ms").and_then(|v| v.parse().ok());
    let stages = header("server-timing")
        .map(|v| server_timing(&v))
        .unwrap_or_default();
    let mut body = r.bytes_stream();
    let mut first = None;
    while let Some(chunk) = body.next().await {
        chunk?;
        first.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Seen {
        at: started,
        first: first.unwrap_or(0.0),
        total: started.elapsed().as_secs_f64() * 1e3,
        overhead,
        stages,
    })
}

/// The platform key the bench's platform is started with (a throwaway deployment on
/// loopback, not a secret).
const BENCH_TENANT_KEY: &str = "gateway-bench-platform-key-0123456789abcdef";

/// Where a call goes: through the door (signed) or straight to the upstream.
#[derive(Clone)]
struct Path {
    url: String,
    /// The tenant's secret and user, when through the gateway.
    signer: Option<(String, platform::users::UserId)>,
}

impl Path {
    async fn call(&self, client: &Client) -> anyhow::Result<Seen> {
        let header = self.signer.as_ref().map(|(secret, user)| {
            identity::sign_now(secret, *user, "POST", "/v1/chat/completions")
        });
        stream(client, &self.url, header).await
    }
}

/// `streams` clients, each with one call in flight at all times for `length`, their first
/// calls spread over `spread`. Every call is returned (the platform's CPU counts them all);
/// the figures keep only those started once every stream was open.
async fn sustained(
    client: &Client,
    path: &Path,
    streams: usize,
    length: Duration,
    spread: Duration,
) -> anyhow::Result<Vec<Seen>> {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let (client, path, stop) = (client.clone(), path.clone(), stop.clone());
            let delay = spread.mul_f64(i as f64 / streams as f64);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.push(path.call(&client).await?);
                }
                anyhow::Ok(seen)
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

#[derive(Default)]
struct Figures {
    overhead: Vec<f64>,
    stages: Vec<Vec<f64>>,
    g_first: Vec<f64>,
    g_total: Vec<f64>,
    d_first: Vec<f64>,
    d_total: Vec<f64>,
}

impl Figures {
    fn add(&mut self, through: bool, seen: Vec<Seen>) {
        if self.stages.is_empty() {
            self.stages = vec![Vec::new(); STAGES.len()];
        }
        for s in seen {
            if through {
                self.g_first.push(s.first);
                self.g_total.push(s.total);
                self.overhead.extend(s.overhead);
                for (name, ms) in s.stages {
                    if let Some(i) = STAGES.iter().position(|n| *n == name) {
                        self.stages[i].push(ms);
                    }
                }
            } else {
                self.d_first.push(s.first);
                self.d_total.push(s.total);
            }
        }
    }

    fn print(&self, what: &str) {
        report(
            &format!("{what}: gateway overhead (its own time, per call)"),
            &self.overhead,
        );
        for (name, ms) in STAGES.iter().zip(&self.stages) {
            report(&format!("  stage {name}"), ms);
        }
        let added =
            |p: f64| percentile(&sorted(&self.g_first), p) - percentile(&sorted(&self.d_first), p);
        println!(
            "{:<56} p50 {:>8.3} ms   p99 {:>8.3} ms",
            format!("{what}: added to the first byte (through − direct)"),
            added(0.50),
            added(0.99)
        );
        report("  first byte through the gateway", &self.g_first);
        report("  first byte straight to the upstream", &self.d_first);
        report("  whole stream through the gateway", &self.g_total);
        report("  whole stream straight to the upstream", &self.d_total);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let streams: usize = env_or("WEBSPLAT_BENCH_STREAMS", 200);
    let rounds: usize = env_or("WEBSPLAT_BENCH_ROUNDS", 3);
    let bursts: usize = env_or("WEBSPLAT_BENCH_BURSTS", 3);
    let seconds: f64 = env_or("WEBSPLAT_BENCH_SECONDS", 5.0);
    let chunks: usize = env_or("WEBSPLAT_BENCH_CHUNKS", 25);
    let pace = Duration::from_millis(env_or("WEBSPLAT_BENCH_CHUNK_MS", 20));
    let upstream = upstream(chunks, pace)?;
    let db = support::TestDb::create().await;
    let deployment = support::deployment();
    let (port, door_port) = (support::free_port(), support::free_port());
    let base = format!("http://127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("WEBSPLAT_DATABASE_URL", db.url.clone()),
        (
            "WEBSPLAT_REDIS_URL",
            support::env_var("WEBSPLAT_TEST_REDIS_URL"),
        ),
        ("WEBSPLAT_REDIS_KEY_PREFIX", support::redis_prefix()),
        ("WEBSPLAT_LISTEN", format!("127.0.0.1:{port}")),
        ("WEBSPLAT_PUBLIC_URL", base.clone()),
        ("WEBSPLAT_ORCHESTRATOR", "memory".to_owned()),
        ("WEBSPLAT_DEPLOYMENT", deployment.clone()),
        ("WEBSPLAT_TENANT_IMAGE", format!("memory/{deployment}:1")),
        ("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "true".to_owned()),
        ("WEBSPLAT_GATEWAY_LISTEN", format!("127.0.0.1:{door_port}")),
        ("WEBSPLAT_AI_LOCAL_BASE_URL", upstream.clone()),
        ("WEBSPLAT_LOG", "warn".to_owned()),
        // The bench's own platform key, so it can sign as the tenant's runtime is signed to.
        ("WEBSPLAT_TENANT_KEY", BENCH_TENANT_KEY.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // The platform as it runs in production: its own process, its own runtime and workers.
    let platform = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_platform"))
            .arg("serve")
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let pid = platform.0.id();
    support::wait_for_http(
        &format!("{base}/readyz"),
        "the platform",
        Duration::from_secs(60),
    )
    .await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = db.connect().await;
        diesel::sql_query("UPDATE access_levels SET ai_tokens_per_day = 1000000000000, ai_requests_per_minute = 1000000, ai_tokens_per_minute = 1000000000000")
            .execute(&mut conn)
            .await?;
    }
    let client = support::browser_client();
    let r = client
        .post(format!("{base}/api/v1/auth/register"))
        .header("Origin", &base)
        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 202, "register: {}", r.status());
    // Registration answers the same for every address; the sign-in that follows is what
    // makes the session (and starts the workspace).
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .header("Origin", &base)
        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await?;
    let me: Value = r.json().await?;
    let user = platform::users::UserId(me["user"]["id"].as_str().unwrap_or_default().parse()?);
    let deadline = Instant::now() + Duration::from_secs(30);
    let slug = loop {
        let w: Value = client
            .get(format!("{base}/api/v1/workspace"))
            .send()
            .await?
            .json()
            .await?;
        if w["state"] == "ready" {
            let url = w["url"].as_str().unwrap_or_default();
            break url
                .trim_start_matches("http://")
                .split('.')
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the workspace never became ready: {w}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The tenant's secret, as its runtime holds it: derived from the platform key and the
    // ids on its route in Redis.
    let config = Config::from_sources(None, env)?;
    let routing = Routing::new(platform::kv::Kv::new(&config.redis)?);
    let route = routing
        .route(&Slug::parse(&slug).map_err(anyhow::Error::msg)?)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no route"))?;
    let through = Path {
        url: format!("http://127.0.0.1:{door_port}/v1/chat/completions"),
        signer: Some((
            secrecy::ExposeSecret::expose_secret(
                &identity::TenantKeys::new(BENCH_TENANT_KEY.as_bytes()).of_route(&route),
            )
            .to_owned(),
            user,
        )),
    };
    let direct = Path {
        url: format!("{upstream}/chat/completions"),
        signer: None,
    };
    let calls = Client::builder()
        .pool_max_idle_per_host(streams)
        .tcp_nodelay(true)
        .build()?;
    // Warm both paths, with as many connections as there will be streams.
    for path in [&through, &direct] {
        for r in futures_util::future::join_all((0..streams).map(|_| path.call(&calls))).await {
            r?;
        }
    }
    let stream_length = pace * chunks as u32;
    let length = Duration::from_secs_f64(seconds);
    let (rss_before, _) = process_stats(pid);
    // The platform's memory, sampled while the calls run.
    let peak = Arc::new(std::sync::Mutex::new(rss_before));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let rss = process_stats(pid).0;
                if let Ok(mut p) = peak.lock() {
                    *p = p.max(rss);
                }
            }
        }
    });
    let (mut cpu, mut relayed) = (0.0, 0usize);
    let mut steady = Figures::default();
    for round in 0..rounds {
        for through_now in [round % 2 == 0, round % 2 != 0] {
            let path = if through_now { &through } else { &direct };
            let (_, cpu_before) = process_stats(pid);
            let began = Instant::now();
            let seen = sustained(&calls, path, streams, length, stream_length).await?;
            if through_now {
                cpu += process_stats(pid).1 - cpu_before;
                relayed += seen.len();
            }
            // The ramp (streams still opening) is left out.
            let all_open = began + stream_length;
            steady.add(
                through_now,
                seen.into_iter().filter(|s| s.at >= all_open).collect(),
            );
        }
    }
    let mut burst = Figures::default();
    for round in 0..bursts {
        for through_now in [round % 2 == 0, round % 2 != 0] {
            let path = if through_now { &through } else { &direct };
            let seen = futures_util::future::join_all((0..streams).map(|_| path.call(&calls)))
                .await
                .into_iter()
                .collect::<anyhow::Result<Vec<_>>>()?;
            burst.add(through_now, seen);
        }
    }
    println!(
        "AI gateway: local OpenAI-compatible upstream streaming {chunks} chunks {} ms apart (about {} ms a stream)",
        pace.as_millis(),
        stream_length.as_millis()
    );
    println!(
        "sustained: {streams} streams open at once, {rounds} rounds of {seconds} s through the gateway and straight to the upstream"
    );
    steady.print("sustained");
    println!(
        "{:<56} {:>8.1} µs per call ({} calls, {:.2} s of CPU)",
        "  platform process CPU (auth to the stream's end)",
        cpu * 1e6 / relayed.max(1) as f64,
        relayed,
        cpu
    );
    println!("burst: {streams} calls fired in the same instant, {bursts} times each way");
    burst.print("burst");
    sampler.abort();
    let peak = peak.lock().map(|p| *p).unwrap_or(rss_before);
    println!(
        "{:<56} {:>8.1} MiB before, {:>8.1} MiB at peak",
        "memory of the platform process (RSS)", rss_before, peak
    );
    drop(platform);
    Ok(())
}
