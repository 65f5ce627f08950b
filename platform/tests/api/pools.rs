//! Pools sized live by operators, and the start queue, on the in-memory engine with the real
//! PostgreSQL and Redis: what an operator, a member and an auditor see through the API and
//! the command line, what each start answers, and the audit records.

use std::time::{Duration, Instant};

use platform::pools::cli::{PoolsCommand, Settings, run};
use platform::tenants::memory::Startup;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body};
use crate::lifecycle_rules::{User, containers, engine, memory_app, refusal, setting};

fn config(app: &TestApp) -> platform::Config {
    platform::Config::from_sources(None, app.env.clone()).expect("config")
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    json: Option<Value>,
) -> reqwest::Response {
    app.call(method, path, token, json).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_creates_shrinks_and_drains_a_pool_others_are_refused_and_all_is_audited() {
    let app = memory_app(&[]).await;
    let (_, _, operator) = app.user_with_role("op@example.com", Some("operator")).await;
    let (_, _, auditor) = app
        .user_with_role("audit@example.com", Some("auditor"))
        .await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let alice = User::new(&app, "alice").await;
    let bob = User::new(&app, "bob").await;
    let carol = User::new(&app, "carol").await;

    // The default pool exists, seeded from the settings, serving every level.
    let r = call(&app, Method::GET, "/api/v1/pools", &operator, None).await;
    assert_eq!(r.status(), 200);
    let pools = body(r).await["pools"].clone();
    assert_eq!(pools[0]["name"], "default");
    assert_eq!(pools[0]["max_running"], 100);
    assert_eq!(pools[0]["max_starting"], 8);
    assert_eq!(
        pools[0]["access_levels"],
        json!(["free", "pro", "standard"])
    );

    // A pool for the free level, made by an operator.
    let new_pool =
        json!({"name": "class", "access_levels": ["free"], "max_running": 2, "max_starting": 2});
    let r = call(
        &app,
        Method::POST,
        "/api/v1/pools",
        &operator,
        Some(new_pool.clone()),
    )
    .await;
    assert_eq!(r.status(), 201);
    let class = body(r).await;
    assert_eq!(class["access_levels"], json!(["free"]));
    let r = call(
        &app,
        Method::POST,
        "/api/v1/pools",
        &operator,
        Some(new_pool),
    )
    .await;
    assert_eq!(
        refusal(r, 409).await["message"],
        "a pool named \"class\" already exists"
    );
    for (bad, field, words) in [
        (
            json!({"name": "Class", "max_running": 1, "max_starting": 1}),
            "name",
            "A pool's name is 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter.",
        ),
        (
            json!({"name": "x", "max_running": -1, "max_starting": 1}),
            "max_running",
            "The most workspaces running at once must be between 0 and 100000.",
        ),
        (
            json!({"name": "x", "max_running": 1, "max_starting": 0}),
            "max_starting",
            "The most workspaces starting at once must be between 1 and 1000.",
        ),
        (
            json!({"name": "x", "max_running": 1, "max_starting": 1, "access_levels": ["gold"]}),
            "access_levels",
            "There is no access level named \"gold\".",
        ),
    ] {
        let e = refusal(
            call(&app, Method::POST, "/api/v1/pools", &operator, Some(bad)).await,
            400,
        )
        .await;
        assert_eq!(
            (e["field"].as_str(), e["message"].as_str()),
            (Some(field), Some(words))
        );
    }
    alice.ready(&app).await;
    bob.ready(&app).await;
    let r = call(&app, Method::GET, "/api/v1/pools/class", &operator, None).await;
    assert_eq!(body(r).await["figures"]["running"], 2);

    // Shrunk while two run: they keep running, the next start is refused in words.
    let r = call(
        &app,
        Method::PATCH,
        "/api/v1/pools/class",
        &operator,
        Some(json!({"max_running": 1})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["max_running"], 1);
    let e = refusal(carol.start(&app).await, 429).await;
    assert_eq!(
        e["message"],
        "Every workspace of the class pool is in use (1 of 1). Please try again in a few minutes."
    );
    assert_eq!(alice.workspace(&app).await["state"], "ready");
    assert_eq!(bob.workspace(&app).await["state"], "ready");

    // Drained: no new starts, running workspaces finish.
    let r = call(
        &app,
        Method::POST,
        "/api/v1/pools/class/drain",
        &operator,
        None,
    )
    .await;
    assert_eq!(body(r).await["draining"], true);
    assert_eq!(alice.stop(&app).await.status(), 202);
    alice.wait_for(&app, "stopped").await;
    let e = refusal(alice.start(&app).await, 503).await;
    assert_eq!(e["code"], "pool_draining");
    assert_eq!(
        e["message"],
        "No new workspaces start in the class pool right now: the operators are draining it. Please try again later."
    );
    assert_eq!(bob.workspace(&app).await["state"], "ready");
    let r = call(&app, Method::DELETE, "/api/v1/pools/class", &operator, None).await;
    assert!(
        refusal(r, 409).await["message"]
            .as_str()
            .expect("words")
            .contains("1 workspaces are still running")
    );
    let r = call(
        &app,
        Method::POST,
        "/api/v1/pools/class/undrain",
        &operator,
        None,
    )
    .await;
    assert_eq!(body(r).await["draining"], false);
    // Starting again: refused for capacity (Bob's still runs), no longer for draining.
    let e = refusal(alice.start(&app).await, 429).await;
    assert_eq!(e["code"], "at_capacity");

    // A member and an auditor may neither read nor change pools.
    let member = alice.token.clone();
    for token in [&member, &auditor] {
        assert_eq!(
            call(&app, Method::GET, "/api/v1/pools", token, None)
                .await
                .status(),
            403
        );
        let r = call(
            &app,
            Method::PATCH,
            "/api/v1/pools/class",
            token,
            Some(json!({"max_running": 50})),
        )
        .await;
        assert_eq!(r.status(), 403);
        let r = call(&app, Method::POST, "/api/v1/pools/class/drain", token, None).await;
        assert_eq!(r.status(), 403);
    }
    let r = call(&app, Method::GET, "/api/v1/pools/class", &operator, None).await;
    let class = body(r).await;
    assert_eq!(
        (class["max_running"].as_i64(), class["draining"].as_bool()),
        (Some(1), Some(false))
    );

    // The command line: the same use-cases, audited as the command line.
    let said = run(
        &config(&app),
        PoolsCommand::Set {
            name: "class".to_owned(),
            settings: Settings {
                max_running: Some(3),
                max_starting: None,
                queue_max: None,
                idle_timeout_seconds: Some(600),
                warm_new: None,
                returning_ahead: Some(true),
                returning_warm: Some(1),
                returning_ttl_seconds: None,
                access_levels: None,
                description: None,
                engine: None,
                endpoint: None,
            },
        },
    )
    .await
    .expect("pools set");
    assert_eq!(said, "changed the pool class");
    let listed = run(&config(&app), PoolsCommand::List)
        .await
        .expect("pools list");
    let listed: Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed[0]["name"], "class");
    assert_eq!(listed[0]["returning_ahead"], true);
    assert_eq!(listed[0]["returning_warm"], 1);
    assert_eq!(listed[0]["max_running"], 3);
    assert_eq!(listed[0]["idle_timeout_seconds"], 600);
    let refused = run(
        &config(&app),
        PoolsCommand::Delete {
            name: "default".to_owned(),
        },
    )
    .await;
    assert!(
        refused
            .expect_err("default stays")
            .to_string()
            .contains("cannot be deleted")
    );

    // Every change is in the audit log, refusals included.
    let records = app.audit(&admin, "action=pool.*&limit=50").await;
    let seen: Vec<(String, String, String)> = records
        .iter()
        .rev()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or_default().to_owned(),
                r["actor"].as_str().unwrap_or_default().to_owned(),
                r["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let op = "op@example.com".to_owned();
    let cli = "command line".to_owned();
    let ok = "success".to_owned();
    let failed = "failure".to_owned();
    for expected in [
        ("pool.create".to_owned(), op.clone(), ok.clone()),
        ("pool.create".to_owned(), op.clone(), failed.clone()),
        ("pool.update".to_owned(), op.clone(), ok.clone()),
        ("pool.drain".to_owned(), op.clone(), ok.clone()),
        ("pool.delete".to_owned(), op.clone(), failed.clone()),
        ("pool.undrain".to_owned(), op.clone(), ok.clone()),
        ("pool.update".to_owned(), cli.clone(), ok.clone()),
        ("pool.delete".to_owned(), cli.clone(), failed.clone()),
    ] {
        assert!(seen.contains(&expected), "{expected:?} not in {seen:?}");
    }
    assert!(
        records
            .iter()
            .all(|r| r["target"].as_str().is_some_and(|t| t.starts_with("pool:")))
    );
}

/// Waits until `f` holds of the user's workspace; returns it.
async fn until(app: &TestApp, user: &User, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let w = user.workspace(app).await;
        if f(&w) {
            return w;
        }
        assert!(Instant::now() < deadline, "never {what}: {w}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_beyond_the_concurrency_wait_in_order_and_a_full_queue_refuses_in_words() {
    let app = memory_app(&[("WEBSPLAT_MAX_CONCURRENT_SPAWNS", "1")]).await;
    let (_, _, operator) = app.user_with_role("op@example.com", Some("operator")).await;
    let r = call(
        &app,
        Method::PATCH,
        "/api/v1/pools/default",
        &operator,
        Some(json!({"queue_max": 2})),
    )
    .await;
    assert_eq!(r.status(), 200);
    // The first runtime holds its start until the test lets it go.
    let image = setting(&app, "WEBSPLAT_TENANT_IMAGE");
    engine().set_startup(&image, Startup::NeverReady);
    let users = [
        User::new(&app, "ann").await,
        User::new(&app, "ben").await,
        User::new(&app, "cat").await,
    ];
    let dan = User::new(&app, "dan").await;
    let (a, b, c) = tokio::join!(
        users[0].start(&app),
        users[1].start(&app),
        users[2].start(&app)
    );
    let mut answers = Vec::new();
    for r in [a, b, c] {
        assert_eq!(r.status(), 202);
        answers.push(body(r).await);
    }
    // One starts; the other two wait, each told how many are ahead.
    let mut ahead: Vec<Value> = answers.iter().map(|w| w["ahead"].clone()).collect();
    ahead.sort_by_key(|v| v.as_i64().unwrap_or(-1));
    assert_eq!(ahead, vec![Value::Null, json!(0), json!(1)], "{answers:?}");
    let order: Vec<&User> = {
        let mut by_place: Vec<(i64, &User)> = answers
            .iter()
            .zip(users.iter())
            .map(|(w, u)| (w["ahead"].as_i64().unwrap_or(-1), u))
            .collect();
        by_place.sort_by_key(|(n, _)| *n);
        by_place.into_iter().map(|(_, u)| u).collect()
    };
    assert_eq!(order[2].workspace(&app).await["state"], "queued");

    // The queue holds two: the next start is refused, in words, with Retry-After.
    let r = dan.start(&app).await;
    assert_eq!(r.headers()["retry-after"], "30");
    let e = refusal(r, 429).await;
    assert_eq!(
        e["message"],
        "2 people are already waiting for their workspace to start, as many as the queue holds. Please try again in a minute."
    );

    // The operator shrinks the pool to one running workspace; the first start ends (it
    // never answered; its owner stops it). The queue moves on by itself: the second starts
    // and the last, next in line, sees that nobody is ahead any more…
    let r = call(
        &app,
        Method::PATCH,
        "/api/v1/pools/default",
        &operator,
        Some(json!({"max_running": 1})),
    )
    .await;
    assert_eq!(r.status(), 200);
    engine().set_startup(&image, Startup::Serves);
    assert_eq!(order[0].stop(&app).await.status(), 202);
    until(&app, order[1], "ready", |w| w["state"] == "ready").await;
    let w = until(&app, order[2], "next in line", |w| w["ahead"] == 0).await;
    assert_eq!(w["state"], "queued");
    // …and starts when the operator makes room again.
    let r = call(
        &app,
        Method::PATCH,
        "/api/v1/pools/default",
        &operator,
        Some(json!({"max_running": 5})),
    )
    .await;
    assert_eq!(r.status(), 200);
    until(&app, order[2], "ready", |w| w["state"] == "ready").await;
    let ready_at = |u: &User| {
        let id = u.id.clone();
        let app = &app;
        async move {
            app.query_one(&format!(
                "SELECT ready_at FROM tenants WHERE user_id = '{id}' AND state = 'ready'"
            ))
            .await
        }
    };
    assert!(
        ready_at(order[1]).await < ready_at(order[2]).await,
        "first come, first served"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_pool_queue_wait_seconds_count{pool="default"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"websplat_pool_running{pool="default"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"websplat_pool_queued{pool="default"} 0"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_runs_on_docker_or_on_a_swarm_named_by_its_manager_and_says_what_is_wrong_in_words()
{
    let app = memory_app(&[]).await;
    let (_, _, operator) = app.user_with_role("op@example.com", Some("operator")).await;
    let alice = User::new(&app, "alice").await;

    // Every pool runs on the platform's own engine unless it names a swarm.
    let r = call(&app, Method::GET, "/api/v1/pools/default", &operator, None).await;
    let default = body(r).await;
    assert_eq!(default["engine"], "docker");
    assert_eq!(default["endpoint"], Value::Null);
    let r = call(
        &app,
        Method::GET,
        "/api/v1/pools/default/machines",
        &operator,
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await, json!({"engine": "docker", "machines": []}));

    let base =
        json!({"name": "cluster", "access_levels": ["free"], "max_running": 5, "max_starting": 2});
    let with = |extra: Value| {
        let mut pool = base.clone();
        for (k, v) in extra.as_object().expect("object") {
            pool[k] = v.clone();
        }
        pool
    };
    for (bad, field, words) in [
        (
            with(json!({"engine": "kubernetes"})),
            "engine",
            "The engine is docker (the platform's own Docker Engine) or swarm (a Docker Swarm cluster).",
        ),
        (
            with(json!({"engine": "swarm"})),
            "endpoint",
            "A swarm pool needs the API of one of the cluster's managers: unix:///path/to/docker.sock or tcp://host:port.",
        ),
        (
            with(json!({"endpoint": "tcp://10.0.0.1:2375"})),
            "endpoint",
            "A docker pool runs on the platform's own Docker Engine; only a swarm pool takes an endpoint.",
        ),
        (
            with(json!({"engine": "swarm", "endpoint": "ftp://manager"})),
            "endpoint",
            "The endpoint is a manager's API: unix:// and an absolute socket path, or tcp:// (or http://) and host:port, at most 300 characters.",
        ),
        (
            with(json!({"engine": "swarm", "endpoint": "tcp://10.0.0.1:2375", "warm_new": 1})),
            "warm_new",
            "A swarm pool keeps no warm runtimes yet (a workspace's data is pinned to one machine): set warm_new to 0.",
        ),
    ] {
        let e = refusal(
            call(&app, Method::POST, "/api/v1/pools", &operator, Some(bad)).await,
            400,
        )
        .await;
        assert_eq!(
            (e["field"].as_str(), e["message"].as_str()),
            (Some(field), Some(words))
        );
    }

    // A swarm pool whose manager does not answer: made, and its machines say so (503).
    let r = call(
        &app,
        Method::POST,
        "/api/v1/pools",
        &operator,
        Some(with(
            json!({"engine": "swarm", "endpoint": "tcp://127.0.0.1:9"}),
        )),
    )
    .await;
    assert_eq!(r.status(), 201);
    let cluster = body(r).await;
    assert_eq!(
        (cluster["engine"].as_str(), cluster["endpoint"].as_str()),
        (Some("swarm"), Some("tcp://127.0.0.1:9"))
    );
    let r = call(
        &app,
        Method::GET,
        "/api/v1/pools/cluster/machines",
        &operator,
        None,
    )
    .await;
    assert_eq!(r.status(), 503);

    // Alice's level is served by it: her start fails in words, nothing runs elsewhere.
    let r = alice.start(&app).await;
    assert!(r.status().is_success(), "{}", r.status());
    let failed = alice.wait_for(&app, "failed").await;
    let reason = failed["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains("no machine could be chosen for it"),
        "{reason}"
    );
    assert!(containers(&app).await.is_empty());

    // Back to docker from the command line: the same checks, and it starts again.
    let said = run(
        &config(&app),
        PoolsCommand::Set {
            name: "cluster".to_owned(),
            settings: Settings {
                max_running: None,
                max_starting: None,
                queue_max: None,
                idle_timeout_seconds: None,
                warm_new: None,
                returning_ahead: None,
                returning_warm: None,
                returning_ttl_seconds: None,
                access_levels: None,
                description: None,
                engine: Some("docker".to_owned()),
                endpoint: Some(String::new()),
            },
        },
    )
    .await
    .expect("pools set");
    assert_eq!(said, "changed the pool cluster");
    alice.ready(&app).await;

    // Its engine does not change under running workspaces.
    let e = refusal(
        call(
            &app,
            Method::PATCH,
            "/api/v1/pools/cluster",
            &operator,
            Some(json!({"engine": "swarm", "endpoint": "tcp://127.0.0.1:9"})),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(
        e["message"],
        "1 workspaces are still running, starting or queued in the pool \"cluster\"; drain it and wait until they have stopped before changing its engine"
    );
}
