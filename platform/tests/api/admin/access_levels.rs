//! Access levels: managed, validated and assigned, and the API rate limits that come from
//! the access level and the address.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body, error_code};

fn level(write_per_minute: u32) -> Value {
    json!({
        "description": "tight",
        "features": ["sites", "chat", "sites"],
        "cpu_millicores": 250, "memory_mib": 256, "storage_mib": 512, "max_upload_mib": 5,
        "ai_tokens_per_day": 1000, "read_requests_per_minute": 1000,
        "write_requests_per_minute": write_per_minute, "idle_timeout_seconds": 600
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_levels_are_managed_validated_and_assigned() {
    let app = TestApp::spawn().await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let (user, _, user_token) = app.user_with_role("u@example.com", None).await;
    let id = user["id"].as_str().expect("id");

    let listed = body(
        app.call(Method::GET, "/api/v1/admin/access-levels", &admin, None)
            .await,
    )
    .await;
    let names: Vec<&str> = listed["access_levels"]
        .as_array()
        .expect("levels")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, ["free", "pro", "standard"]);
    assert_eq!(listed["default"], "free");

    // Bad input: the field and what to change.
    let mut bad = level(10);
    bad["name"] = json!("tiny");
    bad["memory_mib"] = json!(1);
    let r = app
        .call(
            Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(bad.clone()),
        )
        .await;
    assert_eq!(r.status(), 400);
    let b = body(r).await;
    assert_eq!(b["error"]["field"], "memory_mib", "{b}");
    // Memory too small for the largest upload the level allows.
    bad["memory_mib"] = json!(64);
    bad["max_upload_mib"] = json!(10);
    let r = app
        .call(
            Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(bad.clone()),
        )
        .await;
    assert_eq!(r.status(), 400);
    let b = body(r).await;
    assert_eq!(b["error"]["field"], "max_upload_mib", "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at least 80 MiB of memory")),
        "{b}"
    );
    bad["max_upload_mib"] = json!(5);
    bad["memory_mib"] = json!(256);
    bad["features"] = json!(["teleportation"]);
    let r = app
        .call(
            Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(bad.clone()),
        )
        .await;
    assert_eq!(body(r).await["error"]["field"], "features");
    bad["features"] = json!(["chat"]);
    bad["name"] = json!("Tiny Level");
    let r = app
        .call(
            Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(bad.clone()),
        )
        .await;
    assert_eq!(body(r).await["error"]["field"], "name");
    assert_eq!(app.count("access_levels").await, 3, "nothing stored");

    let mut good = level(10);
    good["name"] = json!("tiny");
    let r = app
        .call(
            Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(good.clone()),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        body(r).await["features"],
        json!(["chat", "sites"]),
        "sorted, once each"
    );
    let r = app
        .call(
            Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(good),
        )
        .await;
    assert_eq!(error_code(r, 409).await, "conflict");

    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{id}/access-level"),
            &admin,
            Some(json!({"access_level": "tiny"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let me = body(app.call(Method::GET, "/api/v1/me", &user_token, None).await).await;
    assert_eq!(me["access_level"]["name"], "tiny");
    assert_eq!(me["access_level"]["write_requests_per_minute"], 10);

    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{id}/access-level"),
            &admin,
            Some(json!({"access_level": "gold"})),
        )
        .await;
    assert_eq!(error_code(r, 404).await, "not_found");
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/admin/access-levels/tiny",
            &admin,
            None,
        )
        .await;
    let message = body(r).await["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("still have"), "in use: {message}");
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/admin/access-levels/free",
            &admin,
            None,
        )
        .await;
    assert_eq!(
        error_code(r, 409).await,
        "conflict",
        "the default for new users"
    );

    let mut changed = level(20);
    changed["description"] = json!("less tight");
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/access-levels/tiny",
            &admin,
            Some(changed),
        )
        .await;
    assert_eq!(r.status(), 200);
    let me = body(app.call(Method::GET, "/api/v1/me", &user_token, None).await).await;
    assert_eq!(
        me["access_level"]["write_requests_per_minute"], 20,
        "users get the new limits"
    );

    let records = app.audit(&admin, "action=access_level.*").await;
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(actions.contains(&"access_level.create"));
    assert!(actions.contains(&"access_level.assign"));
    assert!(actions.contains(&"access_level.update"));
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "access_level.delete" && r["outcome"] == "failure")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_rate_limits_come_from_the_access_level_and_the_address() {
    let app = TestApp::spawn_with(vec![(
        "WEBSPLAT_RATE_LIMIT_API_READS_PER_IP".to_owned(),
        "40".to_owned(),
    )])
    .await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let (user, _, token) = app.user_with_role("busy@example.com", None).await;
    let (_, _, other) = app.user_with_role("calm@example.com", None).await;
    let mut tight = level(3);
    tight["name"] = json!("tight");
    assert_eq!(
        app.call(
            Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(tight)
        )
        .await
        .status(),
        201
    );
    let id = user["id"].as_str().expect("id");
    app.call(
        Method::PUT,
        &format!("/api/v1/admin/users/{id}/access-level"),
        &admin,
        Some(json!({"access_level": "tight"})),
    )
    .await;

    // Three writes a minute for this user; the token made at sign-up was the first.
    for i in 0..2 {
        let r = app
            .call(
                Method::POST,
                "/api/v1/tokens",
                &token,
                Some(json!({"name": format!("t{i}")})),
            )
            .await;
        assert_eq!(r.status(), 201, "write {i}");
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            &token,
            Some(json!({"name": "one too many"})),
        )
        .await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(body(r).await["error"]["code"], "rate_limited");
    // Another user on the same address is not held back by it.
    let r = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            &other,
            Some(json!({"name": "fine"})),
        )
        .await;
    assert_eq!(r.status(), 201);

    // Reads from one address, whoever makes them, stop at the address's limit.
    let mut limited = false;
    for _ in 0..45 {
        let r = app.call(Method::GET, "/api/v1/me", &other, None).await;
        if r.status() == 429 {
            limited = true;
            break;
        }
        assert_eq!(r.status(), 200);
    }
    assert!(limited, "40 reads a minute per address");
}
