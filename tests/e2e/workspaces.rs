//! Workspaces end to end: Chromium signs in and watches its workspace start, then opens it
//! on its own origin; a platform killed in the middle of a spawn leaves nothing behind once
//! it is back.

use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

use crate::support::{TestDb, browser_client, env_var};
use crate::{Platform, TIMEOUT, register};
use websplat_test_support::webdriver::Browser;

const SPAWN: Duration = Duration::from_secs(90);

fn workspaces_on() -> Vec<(String, String)> {
    vec![
        (
            "WEBSPLAT_WORKSPACE_START_ON_SIGN_IN".to_owned(),
            "true".to_owned(),
        ),
        (
            "WEBSPLAT_TENANT_RECONCILE_INTERVAL".to_owned(),
            "2s".to_owned(),
        ),
    ]
}

#[derive(QueryableByName, Debug)]
pub(crate) struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub(crate) state: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub(crate) container_id: Option<String>,
}

pub(crate) async fn tenants(db: &TestDb) -> Vec<Row> {
    let mut conn = db.connect().await;
    diesel::sql_query("SELECT state, container_id FROM tenants ORDER BY requested_at")
        .load(&mut conn)
        .await
        .expect("tenants")
}

/// Ids of this deployment's containers (`all`: also those not running).
pub(crate) fn containers(platform: &Platform, all: bool) -> Vec<String> {
    let deployment = platform
        .env
        .iter()
        .find(|(k, _)| k == "WEBSPLAT_DEPLOYMENT")
        .map(|(_, v)| v.clone())
        .expect("deployment");
    let out = std::process::Command::new("docker")
        .args(["ps", "-q", "--no-trunc", "--filter"])
        .arg(format!("label=websplat.deployment={deployment}"))
        .args(all.then_some("--all"))
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_watches_its_workspace_start_and_opens_it_on_its_own_origin() {
    let db = TestDb::create().await;
    let platform = Platform::start(&db, workspaces_on()).await;
    register(
        &platform,
        &browser_client(),
        "ada@example.com",
        "Ada Lovelace",
    )
    .await;
    // The registration started one; this browser's sign-in makes a fresh one and watches it.
    let browser = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    browser.goto(&platform.url("/login")).await;
    crate::sign_in_on_the_page(&browser, "ada@example.com").await;
    let dashboard = platform.url("/dashboard");
    browser
        .wait_for_url(&dashboard, TIMEOUT, |u| u.as_str() == dashboard)
        .await;
    browser
        .wait_for_text("#workspace-state", "Your workspace is ready.", SPAWN)
        .await;
    let state = browser.wait_for("#workspace-state", TIMEOUT).await;
    let seen = browser.property(&state, "title").await.expect("title");
    assert!(
        seen.ends_with("ready")
            && ["requested", "creating", "starting"]
                .iter()
                .any(|s| seen.contains(s)),
        "the page showed the start as it went: {seen}"
    );
    let address = browser.wait_for("#workspace-url", TIMEOUT).await;
    let address = browser.text(&address).await.expect("the address");
    assert!(
        address.starts_with("http://ada-") && address.contains(".ws.localhost:"),
        "{address}"
    );

    // Open it: through the handoff to the workspace's own origin, which serves WebSplat.
    let open = browser.wait_for_visible("#workspace-open", TIMEOUT).await;
    browser.click(&open).await;
    let landed = browser
        .wait_for_url("the workspace origin", SPAWN, |u| {
            u.host_str().is_some_and(|h| h.ends_with(".ws.localhost")) && u.path() == "/"
        })
        .await;
    assert_eq!(
        format!(
            "{}://{}:{}",
            landed.scheme(),
            landed.host_str().unwrap_or_default(),
            landed.port().unwrap_or(80)
        ),
        address
    );
    browser.wait_for("#usage-meter", SPAWN).await;
    let title = browser.source().await;
    assert!(
        title.contains("WebSplat workspace"),
        "the workspace's own page"
    );
    // The platform's session cookie stays on the platform's origin.
    let cookies = browser.cookies().await;
    assert!(
        cookies
            .iter()
            .all(|c| c != "websplat_session" && !c.starts_with("__Host-websplat_session")),
        "the workspace origin holds only its own cookie: {cookies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_killed_mid_spawn_is_reconciled_with_no_orphans_and_no_ghosts() {
    let db = TestDb::create().await;
    let mut platform = Platform::start(&db, workspaces_on()).await;
    let http = browser_client();
    register(&platform, &http, "kim@example.com", "Kim").await;
    // Kill it as soon as the spawn is under way.
    let deadline = Instant::now() + SPAWN;
    loop {
        let rows = tenants(&db).await;
        if rows
            .iter()
            .any(|r| r.state == "creating" || r.state == "starting")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no spawn seen: {rows:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    platform.restart().await;

    // Reconciled: no spawn left half-done, and every container belongs to a live tenant.
    let deadline = Instant::now() + SPAWN;
    loop {
        let rows = tenants(&db).await;
        let live: Vec<&Row> = rows.iter().filter(|r| r.state == "ready").collect();
        let spawning = rows
            .iter()
            .any(|r| ["requested", "creating", "starting", "stopping"].contains(&r.state.as_str()));
        let list = containers(&platform, true);
        let orphans = list
            .iter()
            .filter(|c| {
                !live
                    .iter()
                    .any(|r| r.container_id.as_deref() == Some(c.as_str()))
            })
            .count();
        if !spawning && orphans == 0 {
            assert!(
                rows.iter().any(|r| r.state == "failed"),
                "the interrupted spawn is recorded: {rows:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not reconciled: {rows:?} containers {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // And the user gets a workspace again.
    let r = http
        .post(platform.url("/api/v1/workspace/start"))
        .header("Origin", &platform.url)
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    crate::wait_for_workspace(&platform, &http).await;
    assert_eq!(containers(&platform, true).len(), 1);
}
