//! The proxy under load (a harness that prints, not a test), on the machine's real Docker
//! Engine, PostgreSQL and Redis: the platform runs as its own process (the `platform`
//! binary), N users sign up and their workspaces start; each opens their workspace and a
//! bounded, closed-loop load generator on loopback (one loop per user, one request at a
//! time) drives a mix through the proxy for a few seconds — page reads and edits, document
//! searches, WebSocket round trips and server-sent job streams — then the very same mix
//! straight to the containers (signed as the proxy signs), side by side in one run. For
//! each N of `WEBSPLAT_BENCH_N` (default `10,50,100`) it prints requests/s, p50/p99 latency
//! and errors both ways, the proxy's added latency and throughput ratio against the goals,
//! and the platform's resident memory; at the end, the memory with 1000 workspace sessions
//! routed (each user opens their workspace again until there are that many, each session
//! used once).
//!
//! Run: `scripts/bench load` (starts PostgreSQL and Redis, uses the tenant image). Also
//! `WEBSPLAT_BENCH_SECONDS` (each phase, default 10) and `WEBSPLAT_BENCH_SESSIONS`
//! (default 1000). Everything it makes is removed when it ends, failed or not.

use websplat_test_support as support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use platform::tenants::identity;
use platform::tenants::routing::Route;
use reqwest::Client;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "correct horse battery staple";
const PAGE: &str =
    "<!doctype html><html><body><h1>Bakery</h1><p>Fresh bread every morning.</p></body></html>";
const DOCUMENT: &str =
    "# Opening hours\n\nThe bakery opens at seven and sells sourdough, rye and croissants.\n";

/// One signed-in user with their workspace open.
struct User {
    /// The user's browser, signed in on the platform.
    browser: Client,
    origin: String,
    host: String,
    cookie: String,
    route: Route,
    project: String,
    job: String,
}

/// How a request reaches the runtime.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    Through,
    Straight,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("WEBSPLAT_BENCH_N")
        .unwrap_or_else(|_| "10,50,100".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect();
    let seconds: u64 = std::env::var("WEBSPLAT_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let sessions: usize = std::env::var("WEBSPLAT_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let deployment = support::deployment();
    let result = runtime.block_on(run(
        &sizes,
        Duration::from_secs(seconds),
        sessions,
        &deployment,
    ));
    support::remove_deployment(&deployment);
    result
}

async fn run(
    sizes: &[usize],
    phase: Duration,
    sessions: usize,
    deployment: &str,
) -> anyhow::Result<()> {
    let db = support::TestDb::create().await;
    let port = support::free_port();
    let base = format!("http://localhost:{port}");
    let prefix = support::redis_prefix();
    let most = sizes.iter().copied().max().unwrap_or(10);
    let env: Vec<(&str, String)> = vec![
        ("WEBSPLAT_DATABASE_URL", db.url.clone()),
        (
            "WEBSPLAT_REDIS_URL",
            support::env_var("WEBSPLAT_TEST_REDIS_URL"),
        ),
        ("WEBSPLAT_REDIS_KEY_PREFIX", prefix.clone()),
        ("WEBSPLAT_LISTEN", format!("127.0.0.1:{port}")),
        ("WEBSPLAT_PUBLIC_URL", base.clone()),
        ("WEBSPLAT_DEPLOYMENT", deployment.to_owned()),
        ("WEBSPLAT_GATEWAY_PORT", "0".to_owned()),
        (
            "WEBSPLAT_TENANT_IMAGE",
            support::tenant_image(platform::config::DEFAULT_TENANT_IMAGE),
        ),
        ("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "true".to_owned()),
        ("WEBSPLAT_MAX_RUNNING_TENANTS", (most * 2).to_string()),
        ("WEBSPLAT_MAX_CONCURRENT_SPAWNS", "8".to_owned()),
        ("WEBSPLAT_TENANT_READY_TIMEOUT", "120s".to_owned()),
        // The load comes from one address: its limits are out of the way here.
        ("WEBSPLAT_RATE_LIMIT_PER_IP", "1000000".to_owned()),
        ("WEBSPLAT_RATE_LIMIT_WORKSPACE_OPENS", "1000000".to_owned()),
        ("WEBSPLAT_RATE_LIMIT_API_READS_PER_IP", "1000000".to_owned()),
        (
            "WEBSPLAT_RATE_LIMIT_API_WRITES_PER_IP",
            "1000000".to_owned(),
        ),
        (
            "WEBSPLAT_PROXY_REQUESTS_PER_MINUTE_PER_IP",
            "100000000".to_owned(),
        ),
        ("WEBSPLAT_PROXY_REQUESTS_PER_MINUTE", "10000000".to_owned()),
        ("WEBSPLAT_LOG", "warn".to_owned()),
        // The bench's own platform key, so it can sign the straight requests as the proxy does.
        ("WEBSPLAT_TENANT_KEY", BENCH_TENANT_KEY.to_owned()),
    ];
    let log = std::env::temp_dir().join(format!("websplat-load-{port}.log"));
    let log_file = std::fs::File::create(&log)?;
    let child = Command::new(env!("CARGO_BIN_EXE_platform"))
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(log_file.try_clone()?))
        .stderr(Stdio::from(log_file))
        .spawn()
        .context("start the platform binary")?;
    let pid = child.id();
    let _child = support::ChildGuard(child);
    support::wait_for_http(
        &format!("http://127.0.0.1:{port}/readyz"),
        "the platform",
        Duration::from_secs(120),
    )
    .await;
    println!(
        "proxy load figures: {} cores (load average {}), platform pid {pid} ({} build), image {}, {} s per phase",
        std::thread::available_parallelism().map_or(1, |p| p.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        },
        support::tenant_image(platform::config::DEFAULT_TENANT_IMAGE),
        phase.as_secs()
    );
    println!("platform memory, idle: {:.1} MiB", rss_mib(pid));
    let redis = redis::Client::open(support::env_var("WEBSPLAT_TEST_REDIS_URL"))?;
    let mut kv = redis.get_multiplexed_async_connection().await?;
    let http = Client::builder()
        .dns_resolver(Arc::new(support::Loopback))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(4)
        .timeout(Duration::from_secs(60))
        .build()?;

    let started = Instant::now();
    let mut users = Vec::with_capacity(most);
    for batch in (0..most).collect::<Vec<_>>().chunks(10) {
        let joined = futures_util::future::join_all(
            batch.iter().map(|i| sign_up(&base, port, &prefix, &kv, *i)),
        )
        .await;
        for user in joined {
            users.push(user?);
        }
    }
    println!(
        "{most} users signed up, workspaces ready and opened in {:.1} s; platform memory {:.1} MiB",
        started.elapsed().as_secs_f64(),
        rss_mib(pid)
    );
    for user in &mut users {
        prepare(&http, user).await?;
    }
    let users: Vec<Arc<User>> = users.into_iter().map(Arc::new).collect();
    // Let the documents' indexing jobs end before anything is timed.
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!();
    for &n in sizes {
        let some = &users[..n.min(users.len())];
        let through = drive(&http, some, Way::Through, phase).await;
        let straight = drive(&http, some, Way::Straight, phase).await;
        let line = |way: &str, t: &Tally| {
            println!(
                "N = {n:<4} {way:<9} {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>7.2} ms   errors {}   ({} requests){}",
                t.latencies.len() as f64 / phase.as_secs_f64(),
                ms(percentile(&t.latencies, 0.50)),
                ms(percentile(&t.latencies, 0.99)),
                t.errors,
                t.latencies.len() + t.errors,
                t.first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!("   first error: {e}"))
            );
        };
        line("through", &through);
        line("straight", &straight);
        let added_p50 =
            ms(percentile(&through.latencies, 0.50)) - ms(percentile(&straight.latencies, 0.50));
        let added_p99 =
            ms(percentile(&through.latencies, 0.99)) - ms(percentile(&straight.latencies, 0.99));
        let throughput = through.latencies.len() as f64 / straight.latencies.len().max(1) as f64;
        println!(
            "  goals: errors {} ({}); added p50 {added_p50:.2} ms (<= 0.3, {}); added p99 {added_p99:.2} ms (<= 2, {}); throughput {throughput:.2}x direct (>= 0.9, {}); platform memory {:.1} MiB",
            through.errors + straight.errors,
            verdict(through.errors + straight.errors == 0),
            verdict(added_p50 <= 0.3),
            verdict(added_p99 <= 2.0),
            verdict(throughput >= 0.9),
            rss_mib(pid)
        );
    }

    // Workspace sessions: every user opens their workspace again (as from another tab) until
    // there are `sessions`, each used once so the proxy routes it.
    println!();
    let before = rss_mib(pid);
    let per_user = sessions.div_ceil(users.len());
    let mut made = users.len();
    'opening: for _ in 1..per_user {
        for user in &users {
            if made >= sessions {
                break 'opening;
            }
            let cookie = open(&user.browser, &base).await?.1;
            let r = http
                .get(format!("{}/api/v1/notes", user.origin))
                .header("Cookie", &cookie)
                .header("Accept", "application/json")
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "a new session's request: {}", r.status());
            made += 1;
        }
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}ws-session:*"))
        .query_async(&mut kv)
        .await?;
    println!(
        "platform memory with {} workspace sessions routed ({} in Redis), {} workspaces: {:.1} MiB (before them {before:.1} MiB); goal <= 60 MiB, {}",
        made,
        keys.len(),
        users.len(),
        rss_mib(pid),
        verdict(rss_mib(pid) <= 60.0)
    );
    Ok(())
}

/// Signs user `i` up (their workspace starts), waits until it is ready and opens it.
async fn sign_up(
    base: &str,
    port: u16,
    prefix: &str,
    kv: &redis::aio::MultiplexedConnection,
    i: usize,
) -> anyhow::Result<User> {
    let client = support::workspace_browser();
    register(&client, base, &format!("load{i}@example.com")).await?;
    let started = Instant::now();
    loop {
        let w: Value = client
            .get(format!("{base}/api/v1/workspace"))
            .send()
            .await?
            .json()
            .await?;
        match w["state"].as_str() {
            Some("ready") => break,
            Some("failed") => anyhow::bail!("a workspace failed: {w}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "never ready: {w}"
        );
    }
    let (host, cookie) = open(&client, base).await?;
    let slug = host.split('.').next().context("slug")?;
    let raw: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}tenant-route:{slug}"))
        .query_async(&mut kv.clone())
        .await?;
    let route: Route = serde_json::from_str(&raw.context("no route")?)?;
    Ok(User {
        browser: client,
        origin: format!("http://{host}:{port}"),
        host: format!("{host}:{port}"),
        cookie,
        route,
        project: String::new(),
        job: String::new(),
    })
}

async fn register(client: &Client, base: &str, email: &str) -> anyhow::Result<()> {
    let r = client
        .post(format!("{base}/api/v1/auth/register"))
        .header("Origin", base)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "registering {email}: {}", r.status());
    Ok(())
}

/// The workspace handoff; returns the workspace's host and its cookie (`name=value`).
async fn open(client: &Client, base: &str) -> anyhow::Result<(String, String)> {
    let handoff = support::handoff_link(client, format!("{base}/workspace/open")).await;
    let r = client.get(&handoff).send().await?;
    anyhow::ensure!(r.status() == 303, "the handoff: {}", r.status());
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("websplat_ws="))
        .and_then(|c| c.split(';').next())
        .context("no workspace cookie")?
        .to_owned();
    let host = reqwest::Url::parse(&handoff)?
        .host_str()
        .context("host")?
        .to_owned();
    Ok((host, cookie))
}

/// A project with a page, a document to search and a finished job whose events to stream.
async fn prepare(http: &Client, user: &mut User) -> anyhow::Result<()> {
    let call = |method: reqwest::Method, path: String| {
        http.request(method, format!("{}{path}", user.origin))
            .header("Cookie", &user.cookie)
            .header("Origin", &user.origin)
            .header("Accept", "application/json")
    };
    let r = call(reqwest::Method::POST, "/api/v1/projects".to_owned())
        .json(&json!({"name": "Bakery"}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "a project: {}", r.status());
    let project = r.json::<Value>().await?["id"]
        .as_str()
        .context("project id")?
        .to_owned();
    let r = call(
        reqwest::Method::PUT,
        format!("/api/v1/projects/{project}/pages/index.html"),
    )
    .header("Content-Type", "text/html")
    .header("If-Match", "*")
    .body(PAGE)
    .send()
    .await?;
    anyhow::ensure!(r.status().is_success(), "a page: {}", r.status());
    let boundary = "websplat-load-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"hours.md\"\r\nContent-Type: text/markdown\r\n\r\n{DOCUMENT}\r\n--{boundary}--\r\n"
    );
    let r = call(reqwest::Method::POST, "/api/v1/documents".to_owned())
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "a document: {}", r.status());
    let r = call(
        reqwest::Method::POST,
        format!("/api/v1/projects/{project}/exports"),
    )
    .json(&json!({"format": "site"}))
    .send()
    .await?;
    anyhow::ensure!(r.status() == 202, "a job: {}", r.status());
    let job = r.json::<Value>().await?["id"]
        .as_str()
        .context("job id")?
        .to_owned();
    user.project = project;
    user.job = job;
    Ok(())
}

/// Runs every user's loop for `phase`; their samples together.
async fn drive(http: &Client, users: &[Arc<User>], way: Way, phase: Duration) -> Tally {
    let until = Instant::now() + phase;
    let loops = users.iter().enumerate().map(|(i, user)| {
        let (http, user) = (http.clone(), Arc::clone(user));
        tokio::spawn(async move { user_loop(&http, &user, way, until, i).await })
    });
    let mut all = Tally::default();
    for tally in futures_util::future::join_all(loops)
        .await
        .into_iter()
        .flatten()
    {
        all.latencies.extend(tally.latencies);
        all.errors += tally.errors;
        if all.first_error.is_none() {
            all.first_error = tally.first_error;
        }
    }
    all.latencies.sort();
    all
}

/// One user's closed loop: one request at a time, the mix in a fixed order of 20 slots
/// (8 page reads, 5 page edits, 4 searches, 2 WebSocket round trips, 1 job stream).
async fn user_loop(http: &Client, user: &User, way: Way, until: Instant, offset: usize) -> Tally {
    let mut tally = Tally::default();
    let mut socket: Option<TcpStream> = None;
    let mut slot = offset;
    while Instant::now() < until {
        let started = Instant::now();
        let outcome = match slot % 20 {
            0..=7 => {
                request(
                    http,
                    user,
                    way,
                    reqwest::Method::GET,
                    &format!("/api/v1/projects/{}/pages/index.html", user.project),
                    None,
                )
                .await
            }
            8..=12 => {
                request(
                    http,
                    user,
                    way,
                    reqwest::Method::PUT,
                    &format!("/api/v1/projects/{}/pages/index.html", user.project),
                    Some(PAGE),
                )
                .await
            }
            13..=16 => {
                request(
                    http,
                    user,
                    way,
                    reqwest::Method::GET,
                    "/api/v1/documents/search?q=sourdough",
                    None,
                )
                .await
            }
            17 | 18 => websocket_round_trip(user, way, &mut socket).await,
            _ => {
                request(
                    http,
                    user,
                    way,
                    reqwest::Method::GET,
                    &format!("/api/v1/jobs/{}/events", user.job),
                    None,
                )
                .await
            }
        };
        match outcome {
            Ok(()) => tally.latencies.push(started.elapsed()),
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| format!("{e:#}"));
                socket = None;
            }
        }
        slot += 1;
    }
    tally
}

/// The platform key the bench's platform is started with (not a secret: a throwaway
/// deployment on loopback).
const BENCH_TENANT_KEY: &str = "load-bench-platform-key-0123456789abcdef";

fn bench_keys() -> identity::TenantKeys {
    identity::TenantKeys::new(BENCH_TENANT_KEY.as_bytes())
}

async fn request(
    http: &Client,
    user: &User,
    way: Way,
    method: reqwest::Method,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<()> {
    let mut request = match way {
        Way::Through => http
            .request(method.clone(), format!("{}{path}", user.origin))
            .header("Cookie", &user.cookie)
            .header("Origin", &user.origin),
        Way::Straight => http
            .request(
                method.clone(),
                format!("http://{}{path}", user.route.address),
            )
            .header(
                identity::HEADER,
                identity::sign_route(&bench_keys(), &user.route, method.as_str(), path),
            ),
    };
    if let Some(body) = body {
        request = request
            .header("Content-Type", "text/html")
            .header("If-Match", "*")
            .body(body.to_owned());
    }
    let r = request.send().await?;
    let status = r.status();
    r.bytes().await?;
    anyhow::ensure!(status.is_success(), "{method} {path}: {status}");
    Ok(())
}

/// A ping and its pong on the user's WebSocket (opened on first use).
async fn websocket_round_trip(
    user: &User,
    way: Way,
    socket: &mut Option<TcpStream>,
) -> anyhow::Result<()> {
    if socket.is_none() {
        let (address, headers) = match way {
            Way::Through => (
                format!("127.0.0.1:{}", user.host.rsplit(':').next().unwrap_or("80")),
                format!(
                    "Host: {}\r\nOrigin: {}\r\nCookie: {}\r\n",
                    user.host, user.origin, user.cookie
                ),
            ),
            Way::Straight => (
                user.route.address.clone(),
                format!(
                    "Host: {}\r\n{}: {}\r\n",
                    user.route.address,
                    identity::HEADER,
                    identity::sign_route(&bench_keys(), &user.route, "GET", "/ws")
                ),
            ),
        };
        let mut s = TcpStream::connect(&address).await?;
        s.set_nodelay(true)?;
        let handshake = format!(
            "GET /ws HTTP/1.1\r\n{headers}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(handshake.as_bytes()).await?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).await?;
            head.push(byte[0]);
        }
        anyhow::ensure!(
            head.starts_with(b"HTTP/1.1 101"),
            "WebSocket: {}",
            String::from_utf8_lossy(&head)
        );
        *socket = Some(s);
    }
    let s = socket.as_mut().context("socket")?;
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x89, 0x80 | 4];
    frame.extend_from_slice(&mask);
    frame.extend(b"load".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).await?;
    loop {
        let mut header = [0u8; 2];
        s.read_exact(&mut header).await?;
        let len = match usize::from(header[1] & 0x7f) {
            126 => {
                let mut ext = [0u8; 2];
                s.read_exact(&mut ext).await?;
                usize::from(u16::from_be_bytes(ext))
            }
            127 => anyhow::bail!("a huge frame"),
            n => n,
        };
        let mut data = vec![0u8; len];
        s.read_exact(&mut data).await?;
        match header[0] & 0x0f {
            0xA => return Ok(()),
            0x8 => anyhow::bail!("the WebSocket was closed"),
            _ => {}
        }
    }
}

/// The resident memory of process `pid`, in MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
