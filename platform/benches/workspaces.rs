//! Workspace figures (a harness that prints, not a test), on the machine's real Docker
//! Engine, PostgreSQL and Redis, side by side in one run, for each N:
//! - the floor: a container made exactly as a tenant's (same image, hardening, network,
//!   a fresh volume) from create until its `/healthz` answers, N one after another and N
//!   at once;
//! - sign-in to ready (a sign-in until `GET /api/v1/workspace` says `ready`) for cold
//!   first sign-ins, returning people whose next container was made ahead or started
//!   ahead, and first sign-ins claiming from a pool of N warm runtimes, sequential and N at
//!   once, p50/p95/p99 and the ratio of each p50 to the floor's; then the goals,
//!   met or missed, and where a start's time goes (the platform's per-step metrics);
//! - proxy overhead: the same request to the runtime through the workspace origin and
//!   straight to the container, as the ratio of their medians;
//! - the memory of one idle tenant (the container's RSS, from the engine's stats).
//!
//! Run: `scripts/bench workspaces` (starts PostgreSQL and Redis, builds the tenant image).
//! `WEBSPLAT_BENCH_N` lists the Ns (default `8,50`); `WEBSPLAT_BENCH_REQUESTS` the proxied
//! requests (default 500). Everything it makes is removed when it ends, failed or not.

use websplat_test_support as support;

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt;
use platform::tenants::identity;
use platform::tenants::orchestrator::{ContainerSpec, Limits, label, runtime};
use platform::users::UserId;
use platform::{Application, Config};
use reqwest::Client;
use serde_json::{Value, json};

#[path = "workspaces/figures.rs"]
mod figures;
#[path = "workspaces/swarm.rs"]
mod swarm;

use figures::{percentile, ratio, report, verdict};

const PASSWORD: &str = "correct horse battery staple";

fn browser() -> Client {
    support::workspace_browser()
}

/// Signs up (`new`) or in and waits for the workspace to be ready; returns the time it took.
async fn sign_in_to_ready(
    base: &str,
    email: &str,
    new: bool,
) -> anyhow::Result<(Client, Duration)> {
    let client = browser();
    let started = Instant::now();
    if new {
        // Registration answers the same for every address (202, no session); the sign-in
        // below makes the session and starts the workspace, as the sign-in page does.
        let r = client
            .post(format!("{base}/api/v1/auth/register"))
            .header("Origin", base)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 202, "register: {}", r.status());
    }
    let (path, want) = ("/api/v1/auth/login", 200);
    let r = client
        .post(format!("{base}{path}"))
        .header("Origin", base)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == want, "{path}: {}", r.status());
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
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "never ready");
    }
}

fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("WEBSPLAT_BENCH_N")
        .unwrap_or_else(|_| "8,50".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect();
    let requests: usize = std::env::var("WEBSPLAT_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let deployment = support::deployment();
    let floor = format!("{deployment}-floor");
    let result = runtime.block_on(run(&sizes, requests, &deployment, &floor));
    // Everything this run made goes, also when it failed halfway.
    support::remove_deployment(&deployment);
    support::remove_deployment(&floor);
    result
}

/// The platform under measurement and what the bench reaches it with.
struct Bench {
    base: String,
    port: u16,
    state: actix_web::web::Data<platform::AppState>,
    floor_deployment: String,
    /// Every user signed up so far, by email, with their id.
    users: Vec<(String, UserId)>,
}

async fn run(
    sizes: &[usize],
    requests: usize,
    deployment: &str,
    floor_deployment: &str,
) -> anyhow::Result<()> {
    let db = support::TestDb::create().await;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let most = sizes.iter().copied().max().unwrap_or(8);
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
        ("WEBSPLAT_MAX_RUNNING_TENANTS", (most * 6).to_string()),
        ("WEBSPLAT_MAX_CONCURRENT_SPAWNS", most.max(8).to_string()),
        ("WEBSPLAT_RATE_LIMIT_PER_IP", "100000".to_owned()),
        ("WEBSPLAT_LOG", "warn".to_owned()),
    ];
    let config = Config::from_sources(None, env.into_iter().map(|(k, v)| (k.to_owned(), v)))?;
    let app = Application::with_listener(config, listener).await?;
    let state = app.state();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    println!(
        "workspace figures: {} cores (load average {}), image {}",
        std::thread::available_parallelism().map_or(1, |p| p.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        support::tenant_image(platform::config::DEFAULT_TENANT_IMAGE)
    );
    let mut bench = Bench {
        base,
        port,
        state,
        floor_deployment: floor_deployment.to_owned(),
        users: Vec::new(),
    };
    for &n in sizes {
        bench.round(n).await?;
    }
    bench.breakdown();
    bench.proxy_and_memory(requests).await?;
    handle.stop(true).await;
    Ok(())
}

/// p50 of the floor, sequential and at once; every figure prints its ratio to them.
#[derive(Clone, Copy)]
struct Floor {
    sequential_p50: Duration,
    at_once_p50: Duration,
    at_once_p99: Duration,
}

impl Bench {
    /// Every measurement for `n`: the floor, then cold, claimed-from-the-pool and
    /// returning starts, sequential and `n` at once.
    async fn round(&mut self, n: usize) -> anyhow::Result<()> {
        println!("\n== N = {n} ==");
        let seq = self.floor_runs(n, false).await?;
        let at_once = self.floor_runs(n, true).await?;
        let floor = Floor {
            sequential_p50: percentile(&seq, 0.5),
            at_once_p50: percentile(&at_once, 0.5),
            at_once_p99: percentile(&at_once, 0.99),
        };
        report("floor: docker run to /healthz, sequential", seq, None);
        report(&format!("floor: {n} at once"), at_once, None);
        swarm::floor(n, &self.state.config.tenants.image).await?;

        // Cold: first sign-ins with no warm runtime anywhere; their next containers are
        // made as they stop (for the returning rounds below).
        self.pool("warm_new = 0, returning_ahead = true, returning_warm = 0")
            .await?;
        let cold_seq = self
            .sign_ins(&format!("cold-seq-{n}"), n, false, true)
            .await?;
        let cold_p50 = percentile(&cold_seq, 0.5);
        report(
            "cold sign-in to ready, sequential",
            cold_seq,
            Some(floor.sequential_p50),
        );
        let cold_all = self
            .sign_ins(&format!("cold-all-{n}"), n, true, true)
            .await?;
        report(
            &format!("cold sign-in to ready, {n} at once"),
            cold_all,
            Some(floor.at_once_p50),
        );
        self.stop_all().await?;
        self.until_next(n * 2, "created").await?;

        // Returning, made ahead (started on the path), then started ahead.
        let made_seq = self
            .sign_ins(&format!("cold-seq-{n}"), n, false, false)
            .await?;
        report(
            "returning (made ahead), sequential",
            made_seq,
            Some(floor.sequential_p50),
        );
        let made_all = self
            .sign_ins(&format!("cold-all-{n}"), n, true, false)
            .await?;
        report(
            &format!("returning (made ahead), {n} at once"),
            made_all,
            Some(floor.at_once_p50),
        );
        self.pool(&format!("returning_warm = {}", n * 2)).await?;
        self.stop_all().await?;
        self.until_next(n * 2, "ready").await?;
        let warm_seq = self
            .sign_ins(&format!("cold-seq-{n}"), n, false, false)
            .await?;
        let returning_p50 = percentile(&warm_seq, 0.5);
        report(
            "returning (started ahead), sequential",
            warm_seq,
            Some(floor.sequential_p50),
        );
        let warm_all = self
            .sign_ins(&format!("cold-all-{n}"), n, true, false)
            .await?;
        report(
            &format!("returning (started ahead), {n} at once"),
            warm_all,
            Some(floor.at_once_p50),
        );
        self.stop_all().await?;

        // First sign-ins claiming from a pool of n started, unclaimed runtimes.
        self.pool(&format!(
            "returning_ahead = false, returning_warm = 0, warm_new = {n}"
        ))
        .await?;
        self.until_warm(n).await?;
        let new_seq = self
            .sign_ins(&format!("warm-seq-{n}"), n, false, true)
            .await?;
        let new_p50 = percentile(&new_seq, 0.5);
        report(
            "claimed from the pool, sequential",
            new_seq,
            Some(floor.sequential_p50),
        );
        self.until_warm(n).await?;
        let new_all = self.sign_ins(&format!("warm-all-{n}"), n, true, true).await;
        let (ready, refused) = match &new_all {
            Ok(v) => (v.len(), 0),
            Err(_) => (0, n),
        };
        let new_all = new_all?;
        let new_all_p99 = percentile(&new_all, 0.99);
        report(
            &format!("claimed from the pool, {n} at once"),
            new_all,
            Some(floor.at_once_p50),
        );
        self.pool("warm_new = 0").await?;
        self.stop_all().await?;

        println!("goals (N = {n}):");
        let cold = ratio(cold_p50, floor.sequential_p50);
        println!(
            "  cold p50 <= 1.2x floor: {cold:.2}x, {}",
            verdict(cold <= 1.2)
        );
        let warm = ratio(new_p50, floor.sequential_p50);
        println!(
            "  claimed-from-the-pool p50 <= 0.25x floor: {warm:.2}x, {}",
            verdict(warm <= 0.25)
        );
        let back = ratio(returning_p50, floor.sequential_p50);
        println!(
            "  returning (started ahead) p50 <= 0.25x floor: {back:.2}x, {}",
            verdict(back <= 0.25)
        );
        let tail = ratio(new_all_p99, floor.at_once_p99);
        println!(
            "  {n} at once with a warm pool of {n}: {ready} ready, {refused} refused, p99 {tail:.2}x the floor's own {n}-at-once p99 (goal <= 0.5x), {}",
            verdict(ready == n && refused == 0 && tail <= 0.5)
        );
        Ok(())
    }

    /// Changes the default pool as an operator would (SQL: the bench is not the API's test).
    async fn pool(&self, set: &str) -> anyhow::Result<()> {
        use diesel_async::RunQueryDsl;
        let mut conn = self.state.db.get().await?;
        diesel::sql_query(format!("UPDATE pools SET {set} WHERE name = 'default'"))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    async fn count(&self, query: &str) -> anyhow::Result<i64> {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.state.db.get().await?;
        let found: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {query}"))
            .get_result(&mut conn)
            .await?;
        Ok(found.n)
    }

    async fn until(&self, query: &str, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(600);
        while self.count(query).await? < n as i64 {
            anyhow::ensure!(Instant::now() < deadline, "never {n} of {query}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn until_warm(&self, n: usize) -> anyhow::Result<()> {
        self.until("warm_runtimes WHERE state = 'ready'", n).await
    }

    async fn until_next(&self, n: usize, state: &str) -> anyhow::Result<()> {
        self.until(&format!("returning_runtimes WHERE state = '{state}'"), n)
            .await
    }

    /// Stops every workspace (as sign-outs do), eight at a time.
    async fn stop_all(&self) -> anyhow::Result<()> {
        let users: Vec<UserId> = self.users.iter().map(|(_, u)| *u).collect();
        for chunk in users.chunks(8) {
            futures_util::future::join_all(
                chunk
                    .iter()
                    .map(|u| self.state.tenants.stop(*u, "the benchmark moved on")),
            )
            .await;
        }
        self.until(
            "tenants WHERE state IN ('requested', 'creating', 'starting', 'ready', 'stopping')",
            0,
        )
        .await
        .ok();
        Ok(())
    }

    /// `n` people named `{prefix}-{i}` sign up (`new`) or in, one after another or all at
    /// once; returns how long each waited until ready.
    async fn sign_ins(
        &mut self,
        prefix: &str,
        n: usize,
        at_once: bool,
        new: bool,
    ) -> anyhow::Result<Vec<Duration>> {
        let emails: Vec<String> = (0..n)
            .map(|i| format!("{prefix}-{i}@example.com"))
            .collect();
        let done: Vec<(Client, Duration)> = if at_once {
            futures_util::future::join_all(
                emails.iter().map(|e| sign_in_to_ready(&self.base, e, new)),
            )
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?
        } else {
            let mut out = Vec::new();
            for e in &emails {
                out.push(sign_in_to_ready(&self.base, e, new).await?);
            }
            out
        };
        if new {
            for e in emails {
                let id = self.user_id(&e).await?;
                self.users.push((e, id));
            }
        }
        Ok(done.into_iter().map(|(_, d)| d).collect())
    }

    async fn user_id(&self, email: &str) -> anyhow::Result<UserId> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use platform::schema::users;
        let mut conn = self.state.db.get().await?;
        let id: uuid::Uuid = users::table
            .filter(users::email.eq(email))
            .select(users::id)
            .first(&mut conn)
            .await?;
        Ok(UserId(id))
    }

    /// The floor: `n` containers made by hand exactly as the platform makes a tenant's
    /// (the driver's create, so the same hardening and network), each with a fresh volume,
    /// from create until its `/healthz` answers; one after another or all at once.
    async fn floor_runs(&self, n: usize, at_once: bool) -> anyhow::Result<Vec<Duration>> {
        let runs: Vec<(Duration, String, String)> = if at_once {
            futures_util::future::join_all((0..n).map(|_| self.floor_once()))
                .await
                .into_iter()
                .collect::<anyhow::Result<_>>()?
        } else {
            let mut out = Vec::new();
            for _ in 0..n {
                out.push(self.floor_once().await?);
            }
            out
        };
        let engine = &self.state.tenants.orchestrator;
        for (_, container, volume) in &runs {
            engine.remove(container).await?;
            engine.remove_volume(volume).await?;
        }
        Ok(runs.into_iter().map(|(d, _, _)| d).collect())
    }

    async fn floor_once(&self) -> anyhow::Result<(Duration, String, String)> {
        let engine = &self.state.tenants.orchestrator;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("websplat-{}-{id}", self.floor_deployment);
        let user = UserId(uuid::Uuid::new_v4());
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let labels = HashMap::from([(label::DEPLOYMENT.to_owned(), self.floor_deployment.clone())]);
        let spec = ContainerSpec {
            name: name.clone(),
            image: self.state.config.tenants.image.clone(),
            env: vec![
                (runtime::env::TENANT_SECRET.to_owned(), secret.clone()),
                (runtime::env::TENANT_USER.to_owned(), user.to_string()),
                (runtime::env::LISTEN.to_owned(), runtime::listen_address()),
                (
                    runtime::env::DATA_DIR.to_owned(),
                    runtime::DATA_DIR.to_owned(),
                ),
                (runtime::env::STORAGE_QUOTA.to_owned(), "1024M".to_owned()),
                (runtime::env::MAX_UPLOAD.to_owned(), "10M".to_owned()),
            ],
            labels: labels.clone(),
            volume: name.clone(),
            // The free level's limits, which the platform's cold starts get too.
            limits: Limits {
                cpu_millicores: 500,
                memory_bytes: 512 * 1024 * 1024,
                pids: self.state.config.tenants.pids_limit,
                tmp_bytes: u64::from(self.state.config.tenants.tmp_mib) * 1024 * 1024,
            },
            port: runtime::PORT,
            node: None,
        };
        let probe = Client::builder().no_proxy().build()?;
        let started = Instant::now();
        engine.ensure_volume(&name, &labels).await?;
        let container = engine.create(&spec).await?;
        engine.start(&container).await?;
        let address = engine
            .inspect(&container)
            .await?
            .and_then(|i| i.address)
            .context("the floor's container has no address")?;
        let url = format!("http://{address}{}", runtime::HEALTH_PATH);
        loop {
            let header = identity::sign_now(&secret, user, "GET", runtime::HEALTH_PATH);
            if let Ok(r) = probe
                .get(&url)
                .header(identity::HEADER, header)
                .send()
                .await
                && r.status().is_success()
            {
                return Ok((started.elapsed(), container, name));
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "the floor never answered"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Where a start's time goes: the mean of each step the platform records per start
    /// (`websplat_tenant_start_step_seconds`), by kind of start, and the queue's wait.
    fn breakdown(&self) {
        println!("\nwhere the time goes (mean per start, from the platform's own metrics):");
        let families = self.state.metrics.registry().gather();
        let mut rows: Vec<(String, String, f64, u64)> = Vec::new();
        for family in &families {
            let name = family.name();
            if name != "websplat_tenant_start_step_seconds"
                && name != "websplat_pool_queue_wait_seconds"
            {
                continue;
            }
            for m in family.get_metric() {
                let labels: HashMap<&str, &str> = m
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                let h = m.get_histogram();
                let (kind, step) = if name == "websplat_pool_queue_wait_seconds" {
                    ("queued", "queue")
                } else {
                    (
                        labels.get("kind").copied().unwrap_or("?"),
                        labels.get("step").copied().unwrap_or("?"),
                    )
                };
                rows.push((
                    kind.to_owned(),
                    step.to_owned(),
                    h.get_sample_sum(),
                    h.get_sample_count(),
                ));
            }
        }
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        for (kind, step, sum, count) in rows {
            println!(
                "  {kind:<16} {step:<10} {:>8.1} ms   ({count} starts)",
                sum * 1e3 / (count.max(1) as f64)
            );
        }
    }

    /// Proxy overhead on one workspace (the same request through the workspace origin and
    /// straight to the container), and one idle tenant's memory.
    async fn proxy_and_memory(&mut self, requests: usize) -> anyhow::Result<()> {
        println!();
        let (base, port, state) = (self.base.clone(), self.port, self.state.clone());
        let (client, _) = sign_in_to_ready(&base, "proxy@example.com", true).await?;
        let handoff = support::handoff_link(&client, format!("{base}/workspace/open")).await;
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
                    identity::sign_route(&state.tenants.keys, &route, "GET", path),
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
        // Its tenant row names its container (a claimed warm one carries no tenant label).
        let id: String = {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            use platform::schema::tenants;
            let mut conn = state.db.get().await?;
            tenants::table
                .find(route.tenant.0)
                .select(tenants::container_id)
                .first::<Option<String>>(&mut conn)
                .await?
                .context("no container")?
        };
        let id = &id;
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
        Ok(())
    }
}
