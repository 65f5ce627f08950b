//! The admin API and what it guards: roles, escalation, disabling, access levels and their
//! rate limits, the audit log, the first admin, and policy changes reaching every replica.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, body, error_code};

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
async fn me_lists_roles_access_level_and_what_the_pages_may_offer() {
    let app = TestApp::spawn().await;
    let me = app.signed_in("maria@example.com").await;
    assert_eq!(me["roles"], json!([]));
    assert_eq!(me["access_level"]["name"], "free");
    assert!(
        me["access_level"]["memory_mib"]
            .as_i64()
            .is_some_and(|m| m > 0)
    );
    assert_eq!(me["capabilities"], json!([]));

    app.grant(me["id"].as_str().expect("id"), "auditor").await;
    let me = body(app.get("/api/v1/me").await).await;
    assert_eq!(me["roles"], json!(["auditor"]));
    let caps: Vec<&str> = me["capabilities"]
        .as_array()
        .expect("capabilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "admin_console",
        "users.read",
        "roles.read",
        "access_levels.read",
        "audit.read",
    ] {
        assert!(caps.contains(&expected), "{expected} missing from {caps:?}");
    }
    for refused in [
        "users.write",
        "roles.write",
        "access_levels.write",
        "fleet.read",
        "metrics.read",
    ] {
        assert!(
            !caps.contains(&refused),
            "{refused} offered to an auditor: {caps:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_reach_another_members_tokens_or_sessions_by_swapping_ids() {
    let app = TestApp::spawn().await;
    let (_, a_client, a_token) = app.user_with_role("a@example.com", None).await;
    let (b, b_client, b_token) = app.user_with_role("b@example.com", None).await;
    let b_tokens = body(
        app.call(Method::GET, "/api/v1/tokens", &b_token, None)
            .await,
    )
    .await;
    let b_token_id = b_tokens["tokens"][0]["id"].as_str().expect("id").to_owned();
    let b_sessions = body(
        app.call(Method::GET, "/api/v1/sessions", &b_token, None)
            .await,
    )
    .await;
    let b_session_id = b_sessions["sessions"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // A swaps B's ids into their own paths: not found, and nothing of B's changes.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{b_token_id}"),
            &a_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 404).await, "not_found");
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/sessions/{b_session_id}"),
            &a_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 404).await, "not_found");
    let r = a_client
        .delete(app.url(&format!("/api/v1/sessions/{b_session_id}")))
        .header("Origin", &app.base)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 404, "with A's cookie too");
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", &b_token, None)
            .await
            .status(),
        200
    );
    let r = b_client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 200, "B is still signed in");

    // A's lists are A's only.
    let a_tokens = body(
        app.call(Method::GET, "/api/v1/tokens", &a_token, None)
            .await,
    )
    .await;
    assert!(!a_tokens.to_string().contains(&b_token_id));
    let a_sessions = body(
        app.call(Method::GET, "/api/v1/sessions", &a_token, None)
            .await,
    )
    .await;
    assert!(!a_sessions.to_string().contains(&b_session_id));

    // Nor through the admin routes with B's id.
    let b_id = b["id"].as_str().expect("id");
    for (method, path) in [
        (Method::GET, format!("/api/v1/admin/users/{b_id}")),
        (Method::POST, format!("/api/v1/admin/users/{b_id}/disable")),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{b_id}/roles/auditor"),
        ),
    ] {
        let r = app.call(method.clone(), &path, &a_token, None).await;
        assert_eq!(r.status(), 403, "{method} {path}");
    }
    // The owner can end their own.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/sessions/{b_session_id}"),
            &b_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = b_client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 401, "that browser is signed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_is_refused_with_a_clear_message_and_audited() {
    let app = TestApp::spawn().await;
    let (admin, _, admin_token) = app.user_with_role("root@example.com", Some("admin")).await;
    let (member, _, member_token) = app.user_with_role("eve@example.com", None).await;
    let (operator, _, operator_token) =
        app.user_with_role("op@example.com", Some("operator")).await;
    let member_id = member["id"].as_str().expect("id");
    let admin_id = admin["id"].as_str().expect("id");

    // A member makes themselves admin.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/admin"),
            &member_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 403);
    let message = body(r).await["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("your roles do not allow"), "{message}");
    // An operator hands out roles.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/operator"),
            &operator_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 403);
    let me = body(
        app.call(Method::GET, "/api/v1/me", &member_token, None)
            .await,
    )
    .await;
    assert_eq!(me["roles"], json!([]), "nothing was granted");

    // The only admin removes their own admin role, or disables themselves.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/users/{admin_id}/roles/admin"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 409);
    let message = body(r).await["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("last admin"), "{message}");
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{admin_id}/disable"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/roles", &admin_token, None)
            .await
            .status(),
        200,
        "still admin"
    );

    // Every attempt is in the audit log, with its actor and outcome.
    let denied = app.audit(&admin_token, "action=access.denied").await;
    let actors: Vec<&str> = denied
        .iter()
        .filter_map(|r| r["actor_id"].as_str())
        .collect();
    assert!(actors.contains(&member_id), "{denied:?}");
    assert!(
        actors.contains(&operator["id"].as_str().expect("id")),
        "{denied:?}"
    );
    assert!(
        denied
            .iter()
            .all(|r| r["outcome"] == "denied" && r["ip"] == "127.0.0.1")
    );
    let refused = app
        .audit(
            &admin_token,
            &format!("action=role.revoke&target=user:{admin_id}"),
        )
        .await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["outcome"], "failure");
    assert!(
        refused[0]["detail"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("last admin")
    );

    // Other refusals say what to do.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/member"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 409).await, "conflict");
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/wizard"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 404).await, "not_found");
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/Not%20A%20Role"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 400).await, "validation_failed");
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/roles/admin",
            &admin_token,
            Some(json!({"permissions": []})),
        )
        .await;
    assert_eq!(
        error_code(r, 409).await,
        "conflict",
        "admin's permissions are fixed"
    );

    // With a second admin, the first may step down.
    app.grant(member_id, "admin").await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/users/{admin_id}/roles/admin"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = app
        .call(Method::GET, "/api/v1/admin/roles", &admin_token, None)
        .await;
    assert_eq!(r.status(), 403, "no longer admin, at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_ends_their_sessions_and_tokens_at_once() {
    let app = TestApp::spawn().await;
    let (_, _, admin_token) = app.user_with_role("root@example.com", Some("admin")).await;
    let (user, user_client, user_token) = app.user_with_role("leaving@example.com", None).await;
    let id = user["id"].as_str().expect("id");

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{id}/disable"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let ended = body(r).await;
    assert_eq!(ended["sessions_ended"], 1);
    assert_eq!(ended["tokens_revoked"], 1);

    let r = user_client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 401, "the session is gone");
    let r = app.call(Method::GET, "/api/v1/me", &user_token, None).await;
    assert_eq!(r.status(), 401, "the token is revoked");
    let r = user_client
        .post(app.url("/api/v1/auth/login"))
        .header("Origin", &app.base)
        .json(&json!({"email": "leaving@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 403, "a disabled account cannot sign in");
    let shown = body(
        app.call(
            Method::GET,
            &format!("/api/v1/admin/users/{id}"),
            &admin_token,
            None,
        )
        .await,
    )
    .await;
    assert!(shown["disabled_at"].is_string());
    assert_eq!(shown["sessions"], 0);

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{id}/enable"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = user_client
        .post(app.url("/api/v1/auth/login"))
        .header("Origin", &app.base)
        .json(&json!({"email": "leaving@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "enabled again");
    let r = app.call(Method::GET, "/api/v1/me", &user_token, None).await;
    assert_eq!(r.status(), 401, "the old token stays revoked");

    let records = app
        .audit(&admin_token, &format!("target=user:{id}&action=user.*"))
        .await;
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions, ["user.enable", "user.disable"]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_who_did_what_and_cannot_be_changed() {
    let mut app = TestApp::spawn().await;
    let (admin, _, admin_token) = app.user_with_role("root@example.com", Some("admin")).await;
    let before = chrono::Utc::now();
    app.signed_in("lin@example.com").await;
    // Someone else, in another browser, tries Lin's account; then Lin signs in there.
    app.switch_browser();
    let wrong = app.login("lin@example.com", "not the right password").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.login("lin@example.com", PASSWORD).await.status(), 200);
    let created = body(
        app.post("/api/v1/tokens", &json!({"name": "audit me"}))
            .await,
    )
    .await;
    let token_id = created["id"].as_str().expect("id");
    assert_eq!(
        app.delete(&format!("/api/v1/tokens/{token_id}"))
            .await
            .status(),
        204
    );
    assert_eq!(app.post("/auth/logout", &json!({})).await.status(), 204);

    let records = app
        .audit(
            &admin_token,
            &format!("since={}", before.to_rfc3339().replace('+', "%2B")),
        )
        .await;
    let seen: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or_default().to_owned(),
                r["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("sign_in", "success"),
        ("sign_in", "failure"),
        ("token.create", "success"),
        ("token.revoke", "success"),
        ("sign_out", "success"),
    ] {
        assert!(
            seen.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {seen:?}"
        );
    }
    for r in &records {
        assert!(
            r["request_id"].as_str().is_some_and(|id| id.len() > 8),
            "{r}"
        );
        assert_eq!(r["ip"], "127.0.0.1");
        assert!(r["at"].is_string());
    }
    let failure = records
        .iter()
        .find(|r| r["action"] == "sign_in" && r["outcome"] == "failure")
        .expect("failure");
    assert_eq!(failure["actor"], "anonymous");
    assert_eq!(failure["detail"]["email"], "lin@example.com");
    assert!(
        !failure.to_string().contains("not the right password"),
        "never the password"
    );

    // Filters: by actor, by action prefix, by time range, and paging.
    let by_admin = app
        .audit(
            &admin_token,
            &format!("actor={}", admin["id"].as_str().expect("id")),
        )
        .await;
    assert!(by_admin.iter().all(|r| r["actor_id"] == admin["id"]));
    let tokens = app.audit(&admin_token, "action=token.*").await;
    assert!(
        !tokens.is_empty()
            && tokens.iter().all(|r| r["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("token.")))
    );
    let future = app.audit(&admin_token, "since=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());
    let page = body(
        app.call(
            Method::GET,
            "/api/v1/admin/audit?limit=2",
            &admin_token,
            None,
        )
        .await,
    )
    .await;
    let next = page["next_before"].as_i64().expect("another page");
    let older = app
        .audit(&admin_token, &format!("limit=2&before={next}"))
        .await;
    assert!(
        older
            .iter()
            .all(|r| r["id"].as_i64().is_some_and(|id| id < next))
    );
    let r = app
        .call(
            Method::GET,
            "/api/v1/admin/audit?limit=0",
            &admin_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 400).await, "validation_failed");
    let r = app
        .call(
            Method::GET,
            "/api/v1/admin/audit?outcome=maybe",
            &admin_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 400).await, "validation_failed");

    // Append-only: no route edits or deletes it, and the database refuses to.
    let r = app
        .call(Method::DELETE, "/api/v1/admin/audit", &admin_token, None)
        .await;
    assert_eq!(r.status(), 404);
    let count = app.count("audit_log").await;
    use diesel_async::RunQueryDsl;
    let mut conn = app.db.connect().await;
    for statement in [
        "UPDATE audit_log SET outcome = 'success'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let result = diesel::sql_query(statement).execute(&mut conn).await;
        let error = result.expect_err(statement).to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    assert_eq!(app.count("audit_log").await, count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_admins_become_admin_at_their_first_sign_in_only() {
    let app = TestApp::spawn_with(vec![(
        "WEBSPLAT_BOOTSTRAP_ADMINS".to_owned(),
        "local:Boss@Example.com, corp:12345".to_owned(),
    )])
    .await;
    let boss = app.signed_in("boss@example.com").await;
    assert_eq!(boss["roles"], json!(["admin"]));
    assert!(
        boss["capabilities"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("roles.write")))
    );
    let mut app = app;
    app.switch_browser();
    let other = app.signed_in("someone@example.com").await;
    assert_eq!(other["roles"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_grants_by_email_and_running_replicas_apply_it() {
    let app = TestApp::spawn().await;
    let me = app.signed_in("ops@example.com").await;
    assert_eq!(app.get("/api/v1/admin/fleet").await.status(), 403);

    let config = platform::Config::from_sources(None, app.env.clone()).expect("config");
    let said = platform::admin::cli::change_role(&config, "OPS@example.com", "operator", true)
        .await
        .expect("grant");
    assert!(said.contains("now holds the role \"operator\""), "{said}");
    // The running server hears of it over Redis, without a request to it.
    let mut status = 0;
    for _ in 0..50 {
        status = app.get("/api/v1/admin/fleet").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200, "applied within a second");
    let fleet = body(app.get("/api/v1/admin/fleet").await).await;
    assert_eq!(fleet["users_total"], 1);
    assert_eq!(fleet["dependencies"]["postgresql"], "ok");

    let err = platform::admin::cli::change_role(&config, "nobody@example.com", "operator", true)
        .await
        .expect_err("unknown user");
    assert!(err.to_string().contains("no user has the e-mail"), "{err}");
    let err =
        platform::admin::cli::change_role(&config, me["id"].as_str().expect("id"), "admin", false)
            .await
            .expect_err("not held");
    assert!(err.to_string().contains("does not hold"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_define_roles_and_the_defaults_never_come_back_over_their_changes() {
    let mut app = TestApp::spawn().await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let (support, _, support_token) = app.user_with_role("help@example.com", None).await;
    let (_, _, operator) = app.user_with_role("op@example.com", Some("operator")).await;

    // A new role that may read users.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/roles/support",
            &admin,
            Some(json!({"description": "Helpdesk", "permissions": [
                {"object": "/api/v1/admin/users", "action": "GET", "scope": "any"},
                {"object": "/api/v1/admin/users/{id}", "action": "GET", "scope": "any"}
            ]})),
        )
        .await;
    assert_eq!(r.status(), 201);
    app.grant(support["id"].as_str().expect("id"), "support")
        .await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/users", &support_token, None)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/roles", &support_token, None)
            .await
            .status(),
        403
    );
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/roles/support",
            &admin,
            Some(json!({"permissions": [{"object": "no-slash", "action": "GET", "scope": "any"}]})),
        )
        .await;
    assert_eq!(error_code(r, 400).await, "validation_failed");

    // The operator role loses /metrics by an admin's hand; a restart does not give it back.
    let roles = body(
        app.call(Method::GET, "/api/v1/admin/roles", &admin, None)
            .await,
    )
    .await;
    let operator_role = roles["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["name"] == "operator")
        .expect("operator")
        .clone();
    let kept: Vec<Value> = operator_role["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter(|p| p["object"] != "/metrics")
        .cloned()
        .collect();
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/roles/operator",
            &admin,
            Some(json!({"description": operator_role["description"], "permissions": kept})),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.call(Method::GET, "/metrics", &operator, None)
            .await
            .status(),
        403
    );
    app.restart().await;
    assert_eq!(
        app.call(Method::GET, "/metrics", &operator, None)
            .await
            .status(),
        403,
        "not re-seeded"
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/fleet", &operator, None)
            .await
            .status(),
        200
    );

    // Deleting a role takes it from its holders; built-in roles stay.
    assert_eq!(
        app.call(Method::DELETE, "/api/v1/admin/roles/support", &admin, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/users", &support_token, None)
            .await
            .status(),
        403
    );
    let r = app
        .call(Method::DELETE, "/api/v1/admin/roles/auditor", &admin, None)
        .await;
    assert_eq!(error_code(r, 409).await, "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_search_users_page_by_page() {
    let app = TestApp::spawn().await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    for i in 0..5 {
        app.user_with_role(&format!("team{i}@corp.example"), None)
            .await;
    }
    let page = body(
        app.call(
            Method::GET,
            "/api/v1/admin/users?q=CORP&per_page=2&page=2",
            &admin,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["users"].as_array().map(Vec::len), Some(2));
    let one = &page["users"][0];
    assert!(
        one["email"]
            .as_str()
            .is_some_and(|e| e.ends_with("@corp.example"))
    );
    assert_eq!(one["access_level"], "free");
    let admins = body(
        app.call(Method::GET, "/api/v1/admin/users?q=root", &admin, None)
            .await,
    )
    .await;
    assert_eq!(admins["users"][0]["roles"], json!(["admin"]));
    let none = body(
        app.call(Method::GET, "/api/v1/admin/users?q=%25", &admin, None)
            .await,
    )
    .await;
    assert_eq!(none["total"], 0, "% is a character, not a wildcard");
    let r = app
        .call(
            Method::GET,
            "/api/v1/admin/users?per_page=1000",
            &admin,
            None,
        )
        .await;
    assert_eq!(error_code(r, 400).await, "validation_failed");
    let r = app
        .call(Method::GET, "/api/v1/admin/users?sort=evil", &admin, None)
        .await;
    assert_eq!(r.status(), 400, "unknown parameters are refused");
    let r = app
        .call(Method::GET, "/api/v1/admin/users/not-a-uuid", &admin, None)
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_admin_requests_get_a_clear_4xx_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let (user, _, _) = app.user_with_role("u@example.com", None).await;
    let id = user["id"].as_str().expect("id");
    let rules = app.count("casbin_rule").await;
    let levels = app.count("access_levels").await;
    let client = reqwest::Client::new();
    let send = async |method: Method, path: &str, content_type: &str, raw: Vec<u8>| {
        client
            .request(method, app.url(path))
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(raw)
            .send()
            .await
            .expect("request")
    };

    let cases: Vec<(Method, String, &str, Vec<u8>, u16)> = vec![
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            b"{not json".to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            vec![0xff, 0xfe, 0x00],
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "text/plain",
            br#"{"permissions": []}"#.to_vec(),
            415,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            format!(
                r#"{{"description": "{}", "permissions": []}}"#,
                "x".repeat(100_000)
            )
            .into_bytes(),
            413,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            br#"{"permissions": [], "sneaky": true}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            br#"{"permissions": [{"object": "/a, b", "action": "GET", "scope": "any"}]}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            br#"{"permissions": [{"object": "/a", "action": "TRACE", "scope": "any"}]}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/..%2F..%2Fetc".into(),
            "application/json",
            br#"{"permissions": []}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/anonymous".into(),
            "application/json",
            br#"{"permissions": []}"#.to_vec(),
            400,
        ),
        (
            Method::POST,
            "/api/v1/admin/access-levels".into(),
            "application/json",
            br#"{"name": "x", "features": [], "cpu_millicores": 99999999999}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{id}/access-level"),
            "application/json",
            br#"{"access_level": "Robert'); DROP TABLE users;--"}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{id}/roles/{}", "a".repeat(300)),
            "application/json",
            Vec::new(),
            400,
        ),
        (
            Method::GET,
            "/api/v1/admin/audit?since=yesterday".into(),
            "application/json",
            Vec::new(),
            400,
        ),
    ];
    for (method, path, content_type, raw, status) in cases {
        let r = send(method.clone(), &path, content_type, raw).await;
        let got = r.status().as_u16();
        let b = body(r).await;
        assert_eq!(got, status, "{method} {path}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty() && m.len() < 500),
            "{method} {path}: a short message says what is wrong: {b}"
        );
    }
    assert_eq!(app.count("casbin_rule").await, rules, "no rule changed");
    assert_eq!(app.count("access_levels").await, levels);
    assert_eq!(app.count("roles").await, 4);
    assert_eq!(app.count("users").await, 2);
}
