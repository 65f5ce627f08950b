//! The rules of the workspace lifecycle, on the in-memory engine (`WEBSPLAT_ORCHESTRATOR=
//! memory`) with the real PostgreSQL and Redis: spawn and stop, crashes and out-of-memory
//! kills, a missing image, a runtime that never answers, the reconciler, the idle reaper and
//! admission under the limits. No Docker, so each runs in seconds; hardening and isolation
//! stay proven on the real engine (`workspaces.rs`). Each test asserts what a user or an
//! operator sees: the API's answer, the rows, the containers the engine holds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use platform::tenants::keeper::Reconciled;
use platform::tenants::memory::{MemoryDriver, Startup};
use platform::tenants::orchestrator::{ContainerInfo, ContainerSpec, Limits, Orchestrator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body};

/// A platform on the in-memory engine, with an image of this test's own (so what a test
/// does to its image stays in the test), and workspaces started on demand.
pub(crate) async fn memory_app(extra: &[(&str, &str)]) -> TestApp {
    let deployment = crate::support::deployment();
    let mut env = vec![
        ("WEBSPLAT_ORCHESTRATOR".to_owned(), "memory".to_owned()),
        ("WEBSPLAT_DEPLOYMENT".to_owned(), deployment.clone()),
        (
            "WEBSPLAT_TENANT_IMAGE".to_owned(),
            format!("memory/{deployment}:1"),
        ),
        ("WEBSPLAT_TENANT_READY_TIMEOUT".to_owned(), "5s".to_owned()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    TestApp::spawn_with(env).await
}

pub(crate) fn setting(app: &TestApp, name: &str) -> String {
    app.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{name} is set"))
}

pub(crate) fn engine() -> std::sync::Arc<MemoryDriver> {
    MemoryDriver::shared()
}

/// This test's containers, as the engine lists them.
pub(crate) async fn containers(app: &TestApp) -> Vec<ContainerInfo> {
    engine()
        .list("websplat.deployment", &setting(app, "WEBSPLAT_DEPLOYMENT"))
        .await
        .expect("list")
}

/// Waits until the engine lists none of this test's containers: a failed tenant is recorded
/// first (so its owner learns at once) and its container removed right after.
async fn until_no_containers(app: &TestApp, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = containers(app).await;
        if listed.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{why}: {listed:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A signed-up user driving the API with a token, as a program (or the dashboard) does.
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) token: String,
}

impl User {
    pub(crate) async fn new(app: &TestApp, name: &str) -> User {
        let (me, _, token) = app
            .user_with_role(&format!("{name}@example.com"), None)
            .await;
        User {
            id: me["id"].as_str().expect("id").to_owned(),
            token,
        }
    }

    pub(crate) async fn start(&self, app: &TestApp) -> reqwest::Response {
        app.call(Method::POST, "/api/v1/workspace/start", &self.token, None)
            .await
    }

    pub(crate) async fn stop(&self, app: &TestApp) -> reqwest::Response {
        app.call(Method::POST, "/api/v1/workspace/stop", &self.token, None)
            .await
    }

    pub(crate) async fn workspace(&self, app: &TestApp) -> Value {
        let r = app
            .call(Method::GET, "/api/v1/workspace", &self.token, None)
            .await;
        assert_eq!(r.status(), 200);
        body(r).await
    }

    /// Waits (a few seconds at most) for the workspace to reach `state`.
    pub(crate) async fn wait_for(&self, app: &TestApp, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let w = self.workspace(app).await;
            if w["state"] == state {
                return w;
            }
            assert!(
                w["state"] != "failed" || state == "failed",
                "the workspace failed: {w}"
            );
            assert!(Instant::now() < deadline, "never {state}: {w}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts the workspace and waits until it is ready; returns its container's id.
    pub(crate) async fn ready(&self, app: &TestApp) -> String {
        assert_eq!(self.start(app).await.status(), 202);
        self.wait_for(app, "ready").await;
        self.container(app).await
    }

    /// The container of the user's latest tenant, as PostgreSQL records it.
    async fn container(&self, app: &TestApp) -> String {
        app.query_one(&format!(
            "SELECT container_id FROM tenants WHERE user_id = '{}' ORDER BY requested_at DESC LIMIT 1",
            self.id
        ))
        .await
    }
}

/// The `error` of a refusal, after checking its status.
pub(crate) async fn refusal(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    body(r).await["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_starts_reports_its_usage_and_stops_keeping_its_volume() {
    let app = memory_app(&[]).await;
    let alice = User::new(&app, "alice").await;
    let container = alice.ready(&app).await;
    let listed = containers(&app).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].running);
    assert_eq!(listed[0].labels["websplat.user"], alice.id);
    assert_eq!(listed[0].labels["websplat.pool"], "default");
    assert_eq!(
        app.query_one(&format!(
            "SELECT address FROM tenants WHERE container_id = '{container}'"
        ))
        .await,
        listed[0].address.expect("an address").to_string()
    );

    // The runtime's report reaches the user's status (the free level has 1024 MiB).
    engine().set_used_bytes(&container, 4096);
    app.state.tenants.collect_all_usage().await.expect("usage");
    let w = alice.workspace(&app).await;
    assert_eq!(w["usage"]["used_bytes"], 4096, "{w}");
    assert_eq!(w["usage"]["quota_bytes"], 1024 * 1024 * 1024_i64, "{w}");

    assert_eq!(alice.stop(&app).await.status(), 202);
    let w = alice.wait_for(&app, "stopped").await;
    assert_eq!(w["reason"], "stopped by its owner", "{w}");
    assert!(
        containers(&app).await.is_empty(),
        "its container is removed"
    );
    let volume = app
        .query_one(&format!(
            "SELECT volume FROM workspaces WHERE user_id = '{}'",
            alice.id
        ))
        .await;
    assert!(engine().has_volume(&volume), "its data stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_runtime_fails_in_words_and_the_next_start_replaces_it() {
    let app = memory_app(&[]).await;
    let alice = User::new(&app, "alice").await;
    let before = alice.ready(&app).await;
    assert!(engine().crash(&before, 3));
    let w = alice.wait_for(&app, "failed").await;
    assert_eq!(
        w["reason"], "it stopped unexpectedly while running (exit code 3)",
        "{w}"
    );
    let after = alice.ready(&app).await;
    assert_ne!(after, before);
    let listed = containers(&app).await;
    assert_eq!(listed.len(), 1, "the dead one was removed: {listed:?}");
    assert_eq!(listed[0].id, after);
    assert!(
        app.metrics()
            .await
            .contains(r#"websplat_tenant_failures_total{reason="crashed"} 1"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_out_of_memory_fails_naming_the_memory_limit() {
    let app = memory_app(&[]).await;
    let alice = User::new(&app, "alice").await;
    let container = alice.ready(&app).await;
    assert!(engine().run_out_of_memory(&container));
    let w = alice.wait_for(&app, "failed").await;
    assert!(
        w["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ran out of memory")),
        "{w}"
    );
    assert!(
        app.metrics()
            .await
            .contains(r#"websplat_tenant_failures_total{reason="oom"} 1"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_fails_the_spawn_saying_how_to_build_it() {
    let app = memory_app(&[]).await;
    engine().remove_image(&setting(&app, "WEBSPLAT_TENANT_IMAGE"));
    let alice = User::new(&app, "alice").await;
    assert_eq!(alice.start(&app).await.status(), 202);
    let w = alice.wait_for(&app, "failed").await;
    let reason = w["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("its container could not be created")
            && reason.contains("build it with docker/build-tenant-image.sh"),
        "{w}"
    );
    until_no_containers(&app, "the failed one is removed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtimes_that_never_answer_or_exit_while_starting_fail_and_go() {
    let app = memory_app(&[("WEBSPLAT_TENANT_READY_TIMEOUT", "1s")]).await;
    let image = setting(&app, "WEBSPLAT_TENANT_IMAGE");
    engine().set_startup(&image, Startup::NeverReady);
    let alice = User::new(&app, "alice").await;
    assert_eq!(alice.start(&app).await.status(), 202);
    let w = alice.wait_for(&app, "failed").await;
    assert_eq!(
        w["reason"], "it did not become ready within 1 seconds",
        "{w}"
    );
    until_no_containers(&app, "the silent one is removed").await;

    engine().set_startup(&image, Startup::Exits(2));
    assert_eq!(alice.start(&app).await.status(), 202);
    // The previous failure is already "failed": wait for the new tenant's.
    let deadline = Instant::now() + Duration::from_secs(10);
    let w = loop {
        let w = alice.workspace(&app).await;
        if w["state"] == "failed" && w["reason"] != "it did not become ready within 1 seconds" {
            break w;
        }
        assert!(Instant::now() < deadline, "{w}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(
        w["reason"], "it stopped unexpectedly while starting (exit code 2)",
        "{w}"
    );
    until_no_containers(&app, "the failed one is removed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_removes_orphans_ends_ghosts_and_a_restart_keeps_what_agrees() {
    let mut app = memory_app(&[("WEBSPLAT_TENANT_RECONCILE_INTERVAL", "1h")]).await;
    let alice = User::new(&app, "alice").await;
    alice.ready(&app).await;
    // An orphan: a container of this deployment no tenant row knows.
    let orphan = engine()
        .create(&ContainerSpec {
            name: format!("orphan-{}", uuid::Uuid::new_v4().simple()),
            image: setting(&app, "WEBSPLAT_TENANT_IMAGE"),
            env: Vec::new(),
            labels: HashMap::from([
                (
                    "websplat.deployment".to_owned(),
                    setting(&app, "WEBSPLAT_DEPLOYMENT"),
                ),
                (
                    "websplat.tenant".to_owned(),
                    uuid::Uuid::new_v4().to_string(),
                ),
            ]),
            volume: "orphan".to_owned(),
            limits: Limits {
                cpu_millicores: 100,
                memory_bytes: 64 << 20,
                pids: 16,
                tmp_bytes: 1 << 20,
            },
            port: 8080,
            node: None,
        })
        .await
        .expect("create an orphan");
    // A ghost: a row that says ready, whose container is gone, its death unseen.
    let bob = User::new(&app, "bob").await;
    let bobs = bob.ready(&app).await;
    app.sql(&format!(
        "UPDATE tenants SET container_id = 'gone-{bobs}' WHERE container_id = '{bobs}'"
    ))
    .await;
    engine().remove(&bobs).await.expect("remove");

    let done = app.state.tenants.reconcile().await.expect("reconcile");
    assert_eq!(done.orphans_removed, 1, "{done:?}");
    assert_eq!(done.ghosts_ended, 1, "{done:?}");
    assert!(engine().inspect(&orphan).await.expect("inspect").is_none());
    let w = bob.workspace(&app).await;
    assert_eq!(w["state"], "failed", "{w}");
    assert_eq!(w["reason"], "its container disappeared", "{w}");
    assert_eq!(alice.workspace(&app).await["state"], "ready");
    let again = app.state.tenants.reconcile().await.expect("reconcile");
    assert_eq!(again, Reconciled::default());

    // A platform restart finds Alice's container running and leaves it be.
    app.restart().await;
    let again = app.state.tenants.reconcile().await.expect("reconcile");
    assert_eq!(again, Reconciled::default());
    assert_eq!(alice.workspace(&app).await["state"], "ready");
    assert_eq!(containers(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_workspace_is_stopped_and_a_busy_one_is_not() {
    let app = memory_app(&[]).await;
    let alice = User::new(&app, "alice").await;
    let bob = User::new(&app, "bob").await;
    alice.ready(&app).await;
    let bobs = bob.ready(&app).await;
    assert_eq!(app.state.tenants.reap_idle().await.expect("reap"), 0);
    // Alice's start and last traffic two hours ago, past the free level's 15 minutes.
    app.sql(&format!(
        "UPDATE tenants SET ready_at = now() - interval '2 hours' WHERE user_id = '{}'",
        alice.id
    ))
    .await;
    assert_eq!(app.state.tenants.reap_idle().await.expect("reap"), 1);
    let w = alice.wait_for(&app, "stopped").await;
    assert_eq!(w["reason"], "idle for 15m", "{w}");
    let listed = containers(&app).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, bobs);
    assert_eq!(bob.workspace(&app).await["state"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_refuses_beyond_each_limit_in_words() {
    // Over all users.
    let app = memory_app(&[("WEBSPLAT_MAX_RUNNING_TENANTS", "1")]).await;
    let alice = User::new(&app, "alice").await;
    let bob = User::new(&app, "bob").await;
    alice.ready(&app).await;
    let r = bob.start(&app).await;
    assert_eq!(r.headers()["retry-after"], "60");
    let e = refusal(r, 429).await;
    assert_eq!(e["code"], "at_capacity");
    assert_eq!(
        e["message"],
        "The platform is already running as many workspaces as it may (1). Please try again in a few minutes."
    );
    assert_eq!(bob.workspace(&app).await["state"], "stopped");
    // Once Alice's stops, there is room.
    assert_eq!(alice.stop(&app).await.status(), 202);
    alice.wait_for(&app, "stopped").await;
    bob.ready(&app).await;
    drop(app);

    // Per access level.
    let app = memory_app(&[("WEBSPLAT_MAX_RUNNING_TENANTS_PER_LEVEL", "free:1")]).await;
    let alice = User::new(&app, "alice").await;
    let bob = User::new(&app, "bob").await;
    alice.ready(&app).await;
    let e = refusal(bob.start(&app).await, 429).await;
    assert_eq!(
        e["message"],
        "Every workspace of the free pool is in use (1 of 1). Please try again in a few minutes."
    );
    drop(app);

    // Spawns at once: Alice's runtime never answers, so hers stays starting, and Bob's
    // start waits in the queue instead of being refused.
    let app = memory_app(&[("WEBSPLAT_MAX_CONCURRENT_SPAWNS", "1")]).await;
    engine().set_startup(&setting(&app, "WEBSPLAT_TENANT_IMAGE"), Startup::NeverReady);
    let alice = User::new(&app, "alice").await;
    let bob = User::new(&app, "bob").await;
    assert_eq!(alice.start(&app).await.status(), 202);
    let r = bob.start(&app).await;
    assert_eq!(r.status(), 202);
    let w = body(r).await;
    assert_eq!(
        (w["state"].as_str(), w["ahead"].as_i64()),
        (Some("queued"), Some(0))
    );
    assert!(
        app.metrics()
            .await
            .contains(r#"websplat_pool_queued{pool="default"} 1"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sign_in_replaces_a_ready_workspace_with_a_fresh_container() {
    let mut app = memory_app(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "true")]).await;
    let r = app
        .register("alice@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(r.status(), 200);
    let alice = User {
        id: body(r).await["user"]["id"].as_str().expect("id").to_owned(),
        token: String::new(),
    };
    let first = wait_ready_by_sql(&app, &alice).await;
    app.switch_browser();
    let r = app
        .login("alice@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The engine's list is read last: once the fresh container is recorded ready, it
        // must be in every later list.
        let latest = alice.container(&app).await;
        let ready = app
            .query_one(&format!(
                "SELECT state FROM tenants WHERE container_id = '{latest}'"
            ))
            .await;
        let listed = containers(&app).await;
        if latest != first && ready == "ready" && listed.len() == 1 {
            assert_eq!(listed[0].id, latest, "only the fresh one is left");
            break;
        }
        assert!(Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        app.query_one(&format!(
            "SELECT reason FROM tenants WHERE container_id = '{first}'"
        ))
        .await,
        "replaced by a new sign-in"
    );
}

/// Waits until the user's latest tenant is ready; returns its container.
async fn wait_ready_by_sql(app: &TestApp, user: &User) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = app
            .query_one(&format!(
                "SELECT state FROM tenants WHERE user_id = '{}' ORDER BY requested_at DESC LIMIT 1",
                user.id
            ))
            .await;
        if state == "ready" {
            return user.container(app).await;
        }
        assert!(Instant::now() < deadline, "never ready: {state:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_level_with_an_unusable_cpu_or_memory_is_refused_where_it_is_saved() {
    let app = memory_app(&[]).await;
    let (_, _, admin) = app.user_with_role("admin@example.com", Some("admin")).await;
    let level = |cpu: i64, memory: i64| {
        json!({
            "name": "tiny", "features": [], "cpu_millicores": cpu, "memory_mib": memory,
            "storage_mib": 512, "max_upload_mib": 5, "ai_tokens_per_day": 0,
            "read_requests_per_minute": 60, "write_requests_per_minute": 60,
            "idle_timeout_seconds": 600
        })
    };
    for (body, field, words) in [
        (
            level(50, 256),
            "cpu_millicores",
            "The CPU must be between 100 and 64000 millicores.",
        ),
        (
            level(-1, 256),
            "cpu_millicores",
            "The CPU must be between 100 and 64000 millicores.",
        ),
        (
            level(500, 0),
            "memory_mib",
            "The memory must be between 64 and 262144 MiB.",
        ),
    ] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/admin/access-levels",
                &admin,
                Some(body),
            )
            .await;
        let e = refusal(r, 400).await;
        assert_eq!(e["field"], field, "{e}");
        assert_eq!(e["message"], words, "{e}");
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(level(250, 256)),
        )
        .await;
    assert_eq!(r.status(), 201);
}

/// The container id of a user's latest tenant.
async fn container_of(app: &TestApp, user: &User) -> String {
    app.query_one(&format!(
        "SELECT container_id FROM tenants WHERE user_id = '{}' ORDER BY requested_at DESC LIMIT 1",
        user.id
    ))
    .await
}

#[tokio::test]
async fn warm_containers_of_both_kinds_are_claimed_on_the_in_memory_engine() {
    let app = memory_app(&[]).await;
    let (_, _, operator) = app.user_with_role("op@example.com", Some("operator")).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/pools/default",
            &operator,
            Some(json!({"warm_new": 1, "returning_ahead": true, "returning_warm": 1})),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(10);
    let warm = loop {
        let warm = app
            .query_one("SELECT container_id FROM warm_runtimes WHERE state = 'ready'")
            .await;
        if !warm.is_empty() {
            break warm;
        }
        assert!(Instant::now() < deadline, "no warm runtime");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // A first start claims the warm runtime; each stop makes the next container ahead,
    // started once she counts as active recently; each start takes that one.
    let alice = User::new(&app, "alice").await;
    let mut expected = warm;
    for (round, state) in [(1, "created"), (2, "ready")] {
        assert_eq!(alice.start(&app).await.status(), 202);
        alice.wait_for(&app, "ready").await;
        assert_eq!(container_of(&app, &alice).await, expected, "round {round}");
        assert_eq!(alice.stop(&app).await.status(), 202);
        expected = app
            .query_one(&format!(
                "SELECT container_id FROM returning_runtimes WHERE user_id = '{}' AND state = '{state}'",
                alice.id
            ))
            .await;
        assert!(
            !expected.is_empty(),
            "round {round}: no next container {state}"
        );
    }
    assert_eq!(alice.start(&app).await.status(), 202);
    alice.wait_for(&app, "ready").await;
    assert_eq!(container_of(&app, &alice).await, expected, "started ahead");
    assert_eq!(
        app.count(&format!(
            "returning_runtimes WHERE user_id = '{}'",
            alice.id
        ))
        .await,
        0,
        "taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclaimed_warm_runtime_that_dies_is_forgotten_and_replaced() {
    let app = memory_app(&[]).await;
    let (_, _, operator) = app.user_with_role("op@example.com", Some("operator")).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/pools/default",
            &operator,
            Some(json!({"warm_new": 1})),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let ready = "SELECT container_id FROM warm_runtimes WHERE state = 'ready'";
    let until_warm = |not: String| {
        let app = &app;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let warm = app.query_one(ready).await;
                if !warm.is_empty() && warm != not {
                    return warm;
                }
                assert!(Instant::now() < deadline, "no new warm runtime");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let dead = until_warm(String::new()).await;
    assert!(engine().crash(&dead, 1), "the warm runtime's container");
    let done = app.state.tenants.reconcile().await.expect("reconcile");
    assert_eq!(done.warm_forgotten, 1, "{done:?}");
    assert_eq!(
        app.count(&format!("warm_runtimes WHERE container_id = '{dead}'"))
            .await,
        0,
        "the dead one is no longer offered"
    );
    // The keeper makes a new one, and a first sign-in gets that one, running.
    let fresh = until_warm(dead.clone()).await;
    let alice = User::new(&app, "alice").await;
    assert_eq!(alice.start(&app).await.status(), 202);
    alice.wait_for(&app, "ready").await;
    assert_eq!(container_of(&app, &alice).await, fresh);
}
