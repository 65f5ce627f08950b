//! Workspace figures (a harness that prints, not a test), on the machine's real Docker
//! Engine, PostgreSQL and Redis:
//! - sign-in-to-ready latency (a sign-in until `GET /api/v1/workspace` says `ready`),
//!   p50/p95/p99 over N sequential and N concurrent sign-ins;
//! - proxy overhead: the same request to the runtime through the workspace origin and
//!   straight to the container, as the ratio of their medians;
//! - the memory of one idle tenant (the container's RSS, from the engine's stats).
//!
//! Run: `scripts/bench workspaces` (starts PostgreSQL and Redis, builds the tenant image).
//! `WEBSPLAT_BENCH_N` sets N (default 10); `WEBSPLAT_BENCH_REQUESTS` the proxied requests
//! (default 500).

use websplat_test_support as support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt;
use platform::tenants::identity;
use platform::{Application, Config};
use reqwest::Client;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn browser() -> Client {
    support::workspace_browser()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{label:<44} p50 {:>7.0} ms   p95 {:>7.0} ms   p99 {:>7.0} ms   ({} sign-ins)",
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.95).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.len()
    );
}

/// Signs up (or in) and waits for the workspace to be ready; returns the time it took.
async fn sign_in_to_ready(base: &str, email: &str) -> anyhow::Result<(Client, Duration)> {
    let client = browser();
    let started = Instant::now();
    let r = client
        .post(format!("{base}/api/v1/auth/register"))
        .header("Origin", base)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "register: {}", r.status());
    loop {
        let w: Value = client
            .get(format!("{base}/api/v1/workspace"))
            .send()
            .await?
            .json()
            .await?;
        match w["state"].as_str() {
            Some("ready") => return Ok((client, started.elapsed())),
            Some("failed") => anyhow::bail!("the workspace failed: {w}"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "never ready");
    }
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("WEBSPLAT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let requests: usize = std::env::var("WEBSPLAT_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let deployment = support::deployment();
    let result = runtime.block_on(run(n, requests, &deployment));
    support::remove_deployment(&deployment);
    result
}

async fn run(n: usize, requests: usize, deployment: &str) -> anyhow::Result<()> {
    let db = support::TestDb::create().await;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let env = vec![
        ("WEBSPLAT_DATABASE_URL", db.url.clone()),
        (
            "WEBSPLAT_REDIS_URL",
            support::env_var("WEBSPLAT_TEST_REDIS_URL"),
        ),
        ("WEBSPLAT_REDIS_KEY_PREFIX", support::redis_prefix()),
        ("WEBSPLAT_PUBLIC_URL", base.clone()),
        ("WEBSPLAT_DEPLOYMENT", deployment.to_owned()),
        (
            "WEBSPLAT_TENANT_IMAGE",
            support::tenant_image(platform::config::DEFAULT_TENANT_IMAGE),
        ),
        ("WEBSPLAT_MAX_CONCURRENT_SPAWNS", n.max(8).to_string()),
        ("WEBSPLAT_RATE_LIMIT_PER_IP", "100000".to_owned()),
        ("WEBSPLAT_LOG", "warn".to_owned()),
    ];
    let config = Config::from_sources(None, env.into_iter().map(|(k, v)| (k.to_owned(), v)))?;
    let app = Application::with_listener(config, listener).await?;
    let state = app.state();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    println!(
        "workspace figures: {} cores, image {}, N = {n}",
        std::thread::available_parallelism().map_or(1, |p| p.get()),
        support::tenant_image(platform::config::DEFAULT_TENANT_IMAGE)
    );

    // Sequential sign-ins.
    let mut sequential = Vec::new();
    let mut first = None;
    for i in 0..n {
        let (client, took) = sign_in_to_ready(&base, &format!("seq{i}@example.com")).await?;
        sequential.push(took);
        if first.is_none() {
            first = Some(client);
        }
    }
    report("sign-in to ready, sequential", sequential);

    // Concurrent sign-ins (the earlier ones keep running, as they would).
    let concurrent = futures_util::future::join_all((0..n).map(|i| {
        let base = base.clone();
        async move { sign_in_to_ready(&base, &format!("con{i}@example.com")).await }
    }))
    .await
    .into_iter()
    .map(|r| r.map(|(_, d)| d))
    .collect::<anyhow::Result<Vec<_>>>()?;
    report(&format!("sign-in to ready, {n} at once"), concurrent);

    // Proxy overhead: one workspace, the same request both ways.
    let client = first.context("no workspace")?;
    // The platform, the workspace origin's nonce, the platform again, then the code.
    let mut handoff = format!("{base}/workspace/open");
    for _ in 0..4 {
        let r = client.get(&handoff).send().await?;
        handoff = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("no handoff")?
            .to_owned();
        if handoff.contains("code=") {
            break;
        }
    }
    client.get(&handoff).send().await?;
    let url = reqwest::Url::parse(&handoff)?;
    let host = url.host_str().context("host")?.to_owned();
    let origin = format!("http://{host}:{port}");
    let slug = platform::tenants::Slug::parse(host.split('.').next().context("slug")?)
        .map_err(anyhow::Error::msg)?;
    let route = state
        .tenants
        .routing
        .route(&slug)
        .await?
        .context("no route")?;
    let direct = Client::builder().no_proxy().build()?;
    let path = "/api/v1/notes";
    let mut through = Vec::with_capacity(requests);
    let mut straight = Vec::with_capacity(requests);
    for round in 0..requests + 20 {
        let started = Instant::now();
        let r = client
            .get(format!("{origin}{path}"))
            .header("Accept", "application/json")
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "through the proxy: {}", r.status());
        r.bytes().await?;
        let via_proxy = started.elapsed();
        let started = Instant::now();
        let r = direct
            .get(format!("http://{}{path}", route.address))
            .header(
                identity::HEADER,
                identity::sign_now(&route.secret, route.user, "GET", path),
            )
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "straight: {}", r.status());
        r.bytes().await?;
        let to_container = started.elapsed();
        if round >= 20 {
            through.push(via_proxy);
            straight.push(to_container);
        }
    }
    through.sort();
    straight.sort();
    let (p, s) = (percentile(&through, 0.5), percentile(&straight, 0.5));
    println!(
        "{:<44} through {:>6.2} ms   straight {:>6.2} ms   ratio {:.2}   ({requests} requests each)",
        format!("GET {path}, median"),
        p.as_secs_f64() * 1e3,
        s.as_secs_f64() * 1e3,
        p.as_secs_f64() / s.as_secs_f64()
    );

    // One idle tenant's memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let docker = bollard::Docker::connect_with_local_defaults()?;
    let tenant = route.tenant.to_string();
    let containers = state
        .tenants
        .orchestrator
        .list("websplat.tenant", &tenant)
        .await?;
    let id = &containers.first().context("no container")?.id;
    let stats = docker
        .stats(
            id,
            Some(
                StatsOptionsBuilder::new()
                    .stream(false)
                    .one_shot(false)
                    .build(),
            ),
        )
        .next()
        .await
        .context("no stats")??;
    let memory = stats.memory_stats.context("no memory stats")?;
    let usage = memory.usage.unwrap_or(0);
    let file = memory
        .stats
        .as_ref()
        .and_then(|s| {
            s.get("inactive_file")
                .or_else(|| s.get("total_inactive_file"))
                .copied()
        })
        .unwrap_or(0);
    println!(
        "{:<44} {:>6.1} MiB (usage {:.1} MiB minus inactive page cache {:.1} MiB)",
        "idle tenant memory (container RSS)",
        (usage.saturating_sub(file)) as f64 / 1048576.0,
        usage as f64 / 1048576.0,
        file as f64 / 1048576.0
    );
    handle.stop(true).await;
    Ok(())
}
