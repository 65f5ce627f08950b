//! AI gateway figures (a harness that prints, not a test), on real PostgreSQL and Redis with
//! a tenant on the in-memory engine and a local OpenAI-compatible upstream that streams
//! at once (so what is measured is the gateway, not a model):
//! - the gateway's own overhead per call (its `x-websplat-gateway-overhead-ms`: arrival at
//!   the door to the first byte sent, signature check included, minus the time spent
//!   waiting on the upstream), p50/p99, with WEBSPLAT_BENCH_STREAMS (default 200) streams at
//!   once;
//! - what the gateway adds to the first byte seen by a client: the same requests through it
//!   and straight to the upstream, in alternating batches, p50 and p99 of each subtracted;
//! - time to first byte and to the end, through the gateway and straight to the same
//!   upstream, p50/p99, at the same concurrency;
//! - the memory (RSS) of the process serving the platform while doing it.
//!
//! Run: `scripts/bench gateway` (starts PostgreSQL and Redis).

use websplat_test_support as support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use futures_util::StreamExt;
use platform::tenants::{Slug, identity};
use platform::{Application, Config};
use reqwest::Client;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len().saturating_sub(1))]
}

fn sorted(ms: &[f64]) -> Vec<f64> {
    let mut ms = ms.to_vec();
    ms.sort_by(|a, b| a.total_cmp(b));
    ms
}

fn report(label: &str, ms: Vec<f64>) {
    let ms = sorted(&ms);
    println!(
        "{label:<52} p50 {:>8.3} ms   p99 {:>8.3} ms   ({} calls)",
        percentile(&ms, 0.50),
        percentile(&ms, 0.99),
        ms.len()
    );
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// An OpenAI-compatible upstream that streams ten chunks and its usage at once.
fn upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route(
            "/v1/chat/completions",
            actix_web::web::post().to(|| async {
                let mut events: Vec<Result<Bytes, std::io::Error>> = (0..10)
                    .map(|i| {
                        Ok(Bytes::from(format!(
                            "data: {}\n\n",
                            json!({"id": "b", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": format!("word{i} ")}, "finish_reason": null}]})
                        )))
                    })
                    .collect();
                events.push(Ok(Bytes::from(format!(
                    "data: {}\n\ndata: [DONE]\n\n",
                    json!({"id": "b", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
                ))));
                actix_web::HttpResponse::Ok()
                    .insert_header(("content-type", "text/event-stream"))
                    .streaming(futures_util::stream::iter(events))
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    base
}

/// One streamed call: (time to first byte, time to the end, the gateway's overhead).
async fn stream(
    client: &Client,
    url: &str,
    header: Option<String>,
) -> anyhow::Result<(f64, f64, Option<f64>)> {
    let body = json!({"model": "fast", "messages": [{"role": "user", "content": "Say ten words."}], "stream": true, "max_tokens": 20});
    let started = Instant::now();
    let mut request = client.post(url).json(&body);
    if let Some(h) = header {
        request = request.header(identity::HEADER, h);
    }
    let r = request.send().await?;
    anyhow::ensure!(r.status() == 200, "{}", r.status());
    let overhead = r
        .headers()
        .get("x-websplat-gateway-overhead-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok());
    let mut body = r.bytes_stream();
    let mut first = None;
    while let Some(chunk) = body.next().await {
        chunk?;
        first.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1e3);
    }
    Ok((
        first.unwrap_or(0.0),
        started.elapsed().as_secs_f64() * 1e3,
        overhead,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let streams: usize = std::env::var("WEBSPLAT_BENCH_STREAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rounds: usize = std::env::var("WEBSPLAT_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let upstream = upstream();
    let db = support::TestDb::create().await;
    let deployment = support::deployment();
    let port = support::free_port();
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
        ("WEBSPLAT_GATEWAY_PORT", "0".to_owned()),
        ("WEBSPLAT_AI_LOCAL_BASE_URL", upstream.clone()),
        ("WEBSPLAT_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_sources(None, env)?;
    let app = Application::with_listener(config, TcpListener::bind(("127.0.0.1", port))?).await?;
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
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
    let route = state
        .tenants
        .routing
        .route(&Slug::parse(&slug).map_err(anyhow::Error::msg)?)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no route"))?;
    let secret =
        secrecy::ExposeSecret::expose_secret(&state.tenants.keys.of_route(&route)).to_owned();
    let door = state.tenants.gateway_url.get().cloned().unwrap_or_default();
    let through = format!("{door}/v1/chat/completions");
    let direct = format!("{upstream}/chat/completions");
    let calls = Client::builder().pool_max_idle_per_host(streams).build()?;
    // Warm both paths.
    for _ in 0..20 {
        stream(
            &calls,
            &through,
            Some(identity::sign_now(
                &secret,
                user,
                "POST",
                "/v1/chat/completions",
            )),
        )
        .await?;
        stream(&calls, &direct, None).await?;
    }
    let rss_before = rss_mib();
    let mut peak = rss_before;
    let (mut overheads, mut g_first, mut g_total, mut d_first, mut d_total) =
        (vec![], vec![], vec![], vec![], vec![]);
    // Side by side: the same requests through the gateway and straight to the upstream, in
    // alternating batches (which goes first alternates too), so both meet the same machine.
    for round in 0..rounds {
        for through_now in [round % 2 == 0, round % 2 != 0] {
            if through_now {
                let gw = futures_util::future::join_all((0..streams).map(|_| {
                    let header = identity::sign_now(&secret, user, "POST", "/v1/chat/completions");
                    stream(&calls, &through, Some(header))
                }))
                .await;
                peak = peak.max(rss_mib());
                for r in gw {
                    let (first, total, overhead) = r?;
                    g_first.push(first);
                    g_total.push(total);
                    overheads.extend(overhead);
                }
            } else {
                let up = futures_util::future::join_all(
                    (0..streams).map(|_| stream(&calls, &direct, None)),
                )
                .await;
                for r in up {
                    let (first, total, _) = r?;
                    d_first.push(first);
                    d_total.push(total);
                }
            }
        }
    }
    println!(
        "AI gateway, {streams} concurrent streams × {rounds} rounds, local OpenAI-compatible upstream"
    );
    report("gateway overhead (its own time, per call)", overheads);
    let added = |p: f64| percentile(&sorted(&g_first), p) - percentile(&sorted(&d_first), p);
    println!(
        "{:<52} p50 {:>8.3} ms   p99 {:>8.3} ms",
        "added to the first byte (through − direct)",
        added(0.50),
        added(0.99)
    );
    report("first byte through the gateway", g_first);
    report("first byte straight to the upstream", d_first);
    report("whole stream through the gateway", g_total);
    report("whole stream straight to the upstream", d_total);
    println!(
        "{:<52} {:>8.1} MiB before, {:>8.1} MiB at peak",
        "memory of the process serving the platform (RSS)", rss_before, peak
    );
    Ok(())
}
