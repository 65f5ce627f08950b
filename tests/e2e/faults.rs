//! Faults, tested on the `platform` binary with real containers: PostgreSQL cut away,
//! Redis restarted, the Docker Engine's socket unreachable, each while people sign in and
//! write in their workspaces through the proxy. While the dependency is gone a request that
//! needs it answers 503 with a sentence (never another 5xx); nothing is left half-done (no
//! container without a live tenant, no tenant stuck starting or stopping, every write the
//! workspace acknowledged still there); and once it is back, sign-ins work again within
//! seconds, by themselves.
//!
//! The shared test PostgreSQL and Docker Engine are never touched: PostgreSQL and the
//! Engine are reached through relays this test cuts (`support::Outage`), and Redis is a
//! server of the test's own, stopped and started again on its data (append-only file), as a
//! production Redis restarts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::support::{ChildGuard, Outage, TestDb, env_var, free_port, workspace_browser};
use crate::workspaces::{containers, tenants};
use crate::{PASSWORD, Platform, register, wait_for_workspace};

/// How long the platform may take to serve again once its dependency is back.
const RECOVERY: Duration = Duration::from_secs(20);
/// How long the dependency stays away.
const OUTAGE: Duration = Duration::from_secs(4);

/// Workspaces started when asked (each sign-in would start a fresh one, and the traffic signs
/// in many times), sign-in limits out of the traffic's reach.
fn workspaces_on(extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "WEBSPLAT_TENANT_RECONCILE_INTERVAL".to_owned(),
            "2s".to_owned(),
        ),
        (
            "WEBSPLAT_RATE_LIMIT_PER_ACCOUNT".to_owned(),
            "100000".to_owned(),
        ),
        ("WEBSPLAT_RATE_LIMIT_PER_IP".to_owned(), "100000".to_owned()),
    ];
    env.extend(extra);
    env
}

/// A person signed in with their workspace open on its own origin.
struct Person {
    http: Client,
    origin: String,
}

impl Person {
    async fn with_workspace(platform: &Platform, email: &str) -> Person {
        let http = workspace_browser();
        register(platform, &http, email, email).await;
        let r = http
            .post(platform.url("/api/v1/workspace/start"))
            .header("Origin", &platform.url)
            .send()
            .await
            .expect("start");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "start the workspace");
        wait_for_workspace(platform, &http).await;
        let handoff = crate::support::handoff_link(&http, platform.url("/workspace/open")).await;
        let r = http.get(&handoff).send().await.expect("handoff");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "the handoff");
        let url = reqwest::Url::parse(&handoff).expect("a URL");
        let origin = format!(
            "http://{}:{}",
            url.host_str().expect("host"),
            url.port().expect("port")
        );
        Person { http, origin }
    }

    /// A note written through the proxy; its text when the workspace acknowledged it.
    async fn write(&self, text: &str) -> Answer {
        let r = self
            .http
            .post(format!("{}/api/v1/notes", self.origin))
            .header("Origin", &self.origin)
            .json(&json!({ "text": text }))
            .send()
            .await;
        Answer::of("write a note", r).await
    }

    async fn notes(&self) -> Vec<String> {
        let r = self
            .http
            .get(format!("{}/api/v1/notes", self.origin))
            .send()
            .await
            .expect("notes");
        assert_eq!(r.status(), StatusCode::OK, "read the notes");
        let b: Value = r.json().await.expect("JSON");
        b["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|n| n["text"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What one request got.
#[derive(Debug)]
struct Answer {
    what: &'static str,
    status: u16,
    body: String,
}

impl Answer {
    async fn of(what: &'static str, r: reqwest::Result<reqwest::Response>) -> Answer {
        match r {
            Ok(r) => Answer {
                what,
                status: r.status().as_u16(),
                body: r.text().await.unwrap_or_default(),
            },
            Err(e) => Answer {
                what,
                status: 0,
                body: format!("no answer: {e}"),
            },
        }
    }

    /// A success, or a 503 that says what is unavailable in words.
    fn is_success_or_503_in_words(&self) -> bool {
        if (200..300).contains(&self.status) {
            return true;
        }
        let message = serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|b| b["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        self.status == 503 && message.split_whitespace().count() >= 3
    }
}

/// Someone who signs in again and again (a second account: the writer keeps its session).
async fn signer(platform: &Platform) -> String {
    let email = "sam@example.com";
    register(platform, &workspace_browser(), email, "Sam").await;
    email.to_owned()
}

async fn sign_in(platform: &Platform, email: &str) -> Answer {
    let r = workspace_browser()
        .post(platform.url("/api/v1/auth/login"))
        .header("Origin", &platform.url)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await;
    Answer::of("sign in", r).await
}

/// Sign-ins (of `signing_in`) and writes (by `writer`) for `how_long`; every answer, and the
/// notes the workspace acknowledged.
async fn traffic(
    platform: &Platform,
    signing_in: &str,
    writer: &Person,
    label: &str,
    how_long: Duration,
) -> (Vec<Answer>, Vec<String>) {
    let mut answers = Vec::new();
    let mut acknowledged = Vec::new();
    let end = Instant::now() + how_long;
    let mut i = 0;
    while Instant::now() < end {
        answers.push(sign_in(platform, signing_in).await);
        let text = format!("{label} {i}");
        let answer = writer.write(&text).await;
        if answer.status == 201 {
            acknowledged.push(text);
        }
        answers.push(answer);
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (answers, acknowledged)
}

/// Waits until a sign-in succeeds again; how long it took.
async fn recovered(platform: &Platform, email: &str) -> Duration {
    let back = Instant::now();
    loop {
        let answer = sign_in(platform, email).await;
        if answer.status == 200 {
            return back.elapsed();
        }
        assert!(
            back.elapsed() < RECOVERY,
            "sign-in still fails {RECOVERY:?} after the dependency came back: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Nothing half-done: every tenant settles in a resting state, and every container of this
/// deployment belongs to a ready tenant.
async fn nothing_half_done(db: &TestDb, platform: &Platform) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = tenants(db).await;
        let transient = rows
            .iter()
            .any(|r| ["requested", "creating", "starting", "stopping"].contains(&r.state.as_str()));
        let list = containers(platform, true);
        let orphans: Vec<&String> = list
            .iter()
            .filter(|c| {
                !rows
                    .iter()
                    .any(|r| r.state == "ready" && r.container_id.as_deref() == Some(c.as_str()))
            })
            .collect();
        if !transient && orphans.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left half-done: tenants {rows:?}, containers without a ready tenant {orphans:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The checks every fault shares, once traffic ran through the outage.
async fn check_after(
    db: &TestDb,
    platform: &Platform,
    signer: &str,
    writer: &Person,
    answers: &[Answer],
    acknowledged: &[String],
    outage_felt_by: &str,
) {
    let bad: Vec<&Answer> = answers
        .iter()
        .filter(|a| !a.is_success_or_503_in_words())
        .collect();
    assert!(
        bad.is_empty(),
        "during the outage, answers other than a success or a 503 in words: {bad:#?}"
    );
    assert!(
        answers
            .iter()
            .any(|a| a.what == outage_felt_by && a.status == 503),
        "no {outage_felt_by:?} was refused with a 503 while the dependency was away: {answers:#?}"
    );
    let took = recovered(platform, signer).await;
    eprintln!("signed in again {took:?} after the dependency came back");
    let after = writer.write("after the outage").await;
    assert_eq!(after.status, 201, "a write after the outage: {after:?}");
    let notes = writer.notes().await;
    let lost: Vec<&String> = acknowledged.iter().filter(|t| !notes.contains(t)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    nothing_half_done(db, platform).await;
}

/// `url` with its `host:port` replaced by `addr`.
fn via(url: &str, addr: &str) -> String {
    let mut u = reqwest::Url::parse(url).expect("a URL");
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    u.set_host(Some(host)).expect("host");
    u.set_port(Some(port.parse().expect("port"))).expect("port");
    u.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_cut_away_is_a_503_in_words_and_recovers_with_nothing_half_done() {
    let db = TestDb::create().await;
    let pg = reqwest::Url::parse(&db.url).expect("the database URL");
    let relay = Outage::tcp(&format!(
        "{}:{}",
        pg.host_str().expect("host"),
        pg.port().unwrap_or(5432)
    ))
    .await;
    let platform = Platform::start(
        &db,
        workspaces_on(vec![(
            "WEBSPLAT_DATABASE_URL".to_owned(),
            via(&db.url, relay.addr()),
        )]),
    )
    .await;
    let writer = Person::with_workspace(&platform, "wren@example.com").await;
    let signer = signer(&platform).await;

    relay.cut();
    let (answers, acknowledged) = traffic(&platform, &signer, &writer, "during", OUTAGE).await;
    relay.restore();

    check_after(
        &db,
        &platform,
        &signer,
        &writer,
        &answers,
        &acknowledged,
        "sign in",
    )
    .await;
}

/// A Redis server of the test's own that keeps its data across a restart.
struct Redis {
    port: u16,
    dir: PathBuf,
    child: Option<ChildGuard>,
}

impl Redis {
    fn start() -> Redis {
        let dir = std::env::temp_dir().join(format!(
            "websplat-e2e-redis-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("the Redis directory");
        let mut redis = Redis {
            port: free_port(),
            dir,
            child: None,
        };
        redis.up();
        redis
    }

    fn up(&mut self) {
        let child = Command::new(env_var("WEBSPLAT_TEST_REDIS_SERVER"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(ChildGuard(child));
        wait_for_port(self.port);
    }

    /// A restart: stopped (its clients cut), then started again on the same data.
    fn stop(&mut self) {
        self.child = None;
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.child = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_is_a_503_in_words_and_recovers_with_nothing_half_done() {
    let db = TestDb::create().await;
    let mut redis = Redis::start();
    let platform = Platform::start(
        &db,
        workspaces_on(vec![("WEBSPLAT_REDIS_URL".to_owned(), redis.url())]),
    )
    .await;
    let writer = Person::with_workspace(&platform, "rae@example.com").await;
    let signer = signer(&platform).await;

    redis.stop();
    let (answers, acknowledged) = traffic(&platform, &signer, &writer, "during", OUTAGE).await;
    redis.up();

    check_after(
        &db,
        &platform,
        &signer,
        &writer,
        &answers,
        &acknowledged,
        "sign in",
    )
    .await;
}

/// The Docker Engine's socket, as a relay at a path of this test's own.
fn docker_socket() -> PathBuf {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    PathBuf::from(
        host.strip_prefix("unix://")
            .unwrap_or("/var/run/docker.sock"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_unreachable_is_a_503_in_words_and_recovers_with_nothing_half_done() {
    let socket = std::env::temp_dir().join(format!(
        "websplat-e2e-docker-{}.sock",
        uuid::Uuid::new_v4().simple()
    ));
    let relay = Outage::unix(&socket, Path::new(&docker_socket()));
    let db = TestDb::create().await;
    let platform = Platform::start(
        &db,
        workspaces_on(vec![(
            "DOCKER_HOST".to_owned(),
            format!("unix://{}", socket.display()),
        )]),
    )
    .await;
    let writer = Person::with_workspace(&platform, "dee@example.com").await;
    let signer = signer(&platform).await;

    relay.cut();
    // A start of a workspace already up changes nothing and needs no engine: it is not
    // refused for want of one.
    let r = writer
        .http
        .post(platform.url("/api/v1/workspace/start"))
        .header("Origin", &platform.url)
        .send()
        .await
        .expect("start");
    assert_eq!(
        r.status(),
        202,
        "a running workspace's start: {:?}",
        r.text().await
    );
    // Someone new signs up while the Engine is away: their workspace cannot start.
    let newcomer = workspace_browser();
    let r = newcomer
        .post(platform.url("/api/v1/auth/register"))
        .header("Origin", &platform.url)
        .json(&json!({ "email": "nia@example.com", "password": PASSWORD }))
        .send()
        .await;
    let mut answers = vec![Answer::of("sign up", r).await];
    let r = newcomer
        .post(platform.url("/api/v1/auth/login"))
        .header("Origin", &platform.url)
        .json(&json!({ "email": "nia@example.com", "password": PASSWORD }))
        .send()
        .await;
    answers.push(Answer::of("sign in after signing up", r).await);
    let (during, acknowledged) = traffic(&platform, &signer, &writer, "during", OUTAGE).await;
    answers.extend(during);
    let r = newcomer
        .post(platform.url("/api/v1/workspace/start"))
        .header("Origin", &platform.url)
        .send()
        .await;
    answers.push(Answer::of("start a workspace", r).await);
    relay.restore();

    check_after(
        &db,
        &platform,
        &signer,
        &writer,
        &answers,
        &acknowledged,
        "start a workspace",
    )
    .await;
    // The newcomer's workspace comes up once the Engine is back, when they ask again.
    let deadline = Instant::now() + RECOVERY;
    loop {
        let r = newcomer
            .post(platform.url("/api/v1/workspace/start"))
            .header("Origin", &platform.url)
            .send()
            .await
            .expect("start");
        if r.status().is_success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the newcomer's workspace does not start after the Engine came back: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_for_workspace(&platform, &newcomer).await;
}
