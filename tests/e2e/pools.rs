//! Pools across platform processes: a pool changed through one replica (or the command
//! line) is in force on another within a second, and starts queued on a replica that is
//! killed are started by the other.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Platform, TIMEOUT};
use crate::support::{TestDb, browser_client, redis_prefix};

const PASSWORD: &str = "correct horse battery staple";

/// A new account on `platform` with an API token; returns (its id, the token).
async fn account(platform: &Platform, email: &str) -> (String, String) {
    let client = browser_client();
    let r = client
        .post(platform.url("/api/v1/auth/register"))
        .header("Origin", &platform.url)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 202, "register {email}");
    let r = client
        .post(platform.url("/api/v1/auth/login"))
        .header("Origin", &platform.url)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 200, "sign in {email}");
    let me: Value = r.json().await.expect("json");
    let r = client
        .post(platform.url("/api/v1/tokens"))
        .header("Origin", &platform.url)
        .json(&json!({"name": "pools"}))
        .send()
        .await
        .expect("token");
    let token: Value = r.json().await.expect("json");
    (
        me["user"]["id"].as_str().expect("id").to_owned(),
        token["token"].as_str().expect("token").to_owned(),
    )
}

async fn start(platform: &Platform, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(platform.url("/api/v1/workspace/start"))
        .bearer_auth(token)
        .send()
        .await
        .expect("start")
}

async fn workspace(platform: &Platform, token: &str) -> Value {
    reqwest::Client::new()
        .get(platform.url("/api/v1/workspace"))
        .bearer_auth(token)
        .send()
        .await
        .expect("workspace")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_drained_through_one_replica_is_enforced_by_the_other_within_a_second() {
    let db = TestDb::create().await;
    let shared = vec![
        ("WEBSPLAT_REDIS_KEY_PREFIX".to_owned(), redis_prefix()),
        ("WEBSPLAT_ORCHESTRATOR".to_owned(), "memory".to_owned()),
    ];
    let one = Platform::start(&db, shared.clone()).await;
    let two = Platform::start(&db, shared).await;
    account(&one, "op@example.com").await;
    let said = one
        .cli(&["admin", "grant", "op@example.com", "operator"])
        .await;
    assert!(said.contains("now holds the role"), "{said}");
    let (_, operator) = account(&one, "op2@example.com").await;
    one.cli(&["admin", "grant", "op2@example.com", "operator"])
        .await;
    let (_, member) = account(&two, "pat@example.com").await;

    // Drained through replica one…
    let r = reqwest::Client::new()
        .post(one.url("/api/v1/pools/default/drain"))
        .bearer_auth(&operator)
        .send()
        .await
        .expect("drain");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    // …replica two starts nothing within a second.
    let started = Instant::now();
    loop {
        let r = start(&two, &member).await;
        if r.status() == 503 {
            let e: Value = r.json().await.expect("json");
            assert_eq!(e["error"]["code"], "pool_draining");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "replica two still starts: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Undrained and shrunk on the command line: replica two starts again, one at most.
    let said = one.cli(&["pools", "undrain", "default"]).await;
    assert!(said.contains("starts workspaces again"), "{said}");
    one.cli(&["pools", "set", "default", "--max-running", "1"])
        .await;
    assert_eq!(start(&two, &member).await.status(), 202);
    let (_, other) = account(&two, "sam@example.com").await;
    let r = start(&two, &other).await;
    assert_eq!(r.status(), 429);
    let listed = one.cli(&["pools", "show", "default"]).await;
    let listed: Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed["max_running"], 1);
    assert_eq!(listed["operated"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_while_users_are_queued_loses_none_of_them() {
    let db = TestDb::create().await;
    let shared = vec![
        ("WEBSPLAT_REDIS_KEY_PREFIX".to_owned(), redis_prefix()),
        (
            "WEBSPLAT_DEPLOYMENT".to_owned(),
            crate::support::deployment(),
        ),
        ("WEBSPLAT_MAX_CONCURRENT_SPAWNS".to_owned(), "1".to_owned()),
        (
            "WEBSPLAT_TENANT_RECONCILE_INTERVAL".to_owned(),
            "1s".to_owned(),
        ),
    ];
    let mut one = Platform::start(&db, shared.clone()).await;
    let two = Platform::start(&db, shared).await;
    let mut people = Vec::new();
    for name in ["ann", "ben", "cat"] {
        people.push(account(&one, &format!("{name}@example.com")).await.1);
    }
    let (a, b, c) = tokio::join!(
        start(&one, &people[0]),
        start(&one, &people[1]),
        start(&one, &people[2])
    );
    let mut queued = Vec::new();
    for (r, token) in [(a, &people[0]), (b, &people[1]), (c, &people[2])] {
        assert_eq!(r.status(), 202);
        let w: Value = r.json().await.expect("json");
        if w["state"] == "queued" {
            queued.push(token.clone());
        }
    }
    assert_eq!(queued.len(), 2, "one starts, two wait");
    // Replica one dies with two people in its queue.
    let _ = one.child.0.kill();
    let _ = one.child.0.wait();
    // Replica two starts both (once the dead replica's start in progress is given up).
    for token in &queued {
        let deadline = Instant::now() + TIMEOUT + Duration::from_secs(15);
        loop {
            let w = workspace(&two, token).await;
            if w["state"] == "ready" {
                break;
            }
            assert!(
                ["queued", "requested", "creating", "starting"]
                    .contains(&w["state"].as_str().unwrap_or_default()),
                "{w}"
            );
            assert!(Instant::now() < deadline, "never started: {w}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_console_shows_a_pool_its_figures_and_chart_and_resizes_it() {
    use crate::support::{env_var, webdriver::Browser};

    let db = TestDb::create().await;
    let platform = Platform::start(
        &db,
        vec![("WEBSPLAT_ORCHESTRATOR".to_owned(), "memory".to_owned())],
    )
    .await;
    account(&platform, "op@example.com").await;
    platform
        .cli(&["admin", "grant", "op@example.com", "operator"])
        .await;
    // A member's workspace runs, so the pool has a figure and a start to chart.
    let (_, member) = account(&platform, "pat@example.com").await;
    assert_eq!(start(&platform, &member).await.status(), 202);
    let deadline = Instant::now() + TIMEOUT;
    while workspace(&platform, &member).await["state"] != "ready" {
        assert!(
            Instant::now() < deadline,
            "the member's workspace never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let browser = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    let console = platform.url("/operator");
    browser.goto(&console).await;
    browser
        .wait_for_url("the sign-in page", TIMEOUT, |u| u.path() == "/login")
        .await;
    super::sign_in_on_the_page(&browser, "op@example.com").await;
    browser
        .wait_for_url("the operator console", TIMEOUT, |u| u.as_str() == console)
        .await;
    let pool = r#"section.pool[data-pool="default"]"#;
    browser.wait_for_visible(pool, TIMEOUT).await;
    browser
        .wait_for_text(&format!(r#"{pool} [data-figure="running"]"#), "1", TIMEOUT)
        .await;
    browser
        .wait_for_text(
            &format!(r#"{pool} [data-figure="capacity"]"#),
            "1 of 100",
            TIMEOUT,
        )
        .await;
    browser
        .wait_for(
            &format!("{pool} figure.latency-chart svg polyline.p95"),
            TIMEOUT,
        )
        .await;
    let latest = browser
        .wait_for_visible(&format!("{pool} .latency-latest"), TIMEOUT)
        .await;
    let said = browser.text(&latest).await.expect("text");
    assert!(said.contains("over 1 start(s)"), "{said}");

    // Resized from the page: in force for the next start.
    let field = browser
        .wait_for_visible("#default-max_running", TIMEOUT)
        .await;
    browser.clear(&field).await;
    browser.send_keys(&field, "1").await;
    let save = browser
        .wait_for_visible(&format!("{pool} form button[type=submit]"), TIMEOUT)
        .await;
    browser.click(&save).await;
    browser
        .wait_for_text(
            &format!(r#"{pool} [data-figure="capacity"]"#),
            "1 of 1",
            TIMEOUT,
        )
        .await;
    browser.goto(&console).await;
    browser
        .wait_for_text(
            &format!(r#"{pool} [data-figure="capacity"]"#),
            "1 of 1",
            TIMEOUT,
        )
        .await;
    let shot = std::env::temp_dir().join("websplat-operator-console.png");
    std::fs::write(&shot, browser.screenshot().await).expect("write the screenshot");
    eprintln!("the operator console: {}", shot.display());
    let (_, other) = account(&platform, "sam@example.com").await;
    let r = start(&platform, &other).await;
    assert_eq!(r.status(), 429, "the pool is full at its new size");
}
