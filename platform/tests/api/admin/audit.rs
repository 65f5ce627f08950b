//! The audit log records who did what and cannot be changed.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, body, error_code};

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
async fn a_failed_registration_is_recorded_as_a_registration_not_a_sign_in() {
    let mut app = TestApp::spawn().await;
    let (_, _, admin_token) = app.user_with_role("root@example.com", Some("admin")).await;
    let before = chrono::Utc::now();
    app.switch_browser();
    let weak = app.register("newcomer@example.com", "short").await;
    assert_eq!(weak.status(), 400);
    assert_eq!(
        app.register("newcomer@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    let records = app
        .audit(
            &admin_token,
            &format!("since={}", before.to_rfc3339().replace('+', "%2B")),
        )
        .await;
    let of = |outcome: &str| {
        records
            .iter()
            .find(|r| r["action"] == "register" && r["outcome"] == outcome)
            .cloned()
            .unwrap_or_else(|| panic!("no {outcome} registration in {records:?}"))
    };
    let failed = of("failure");
    assert_eq!(failed["detail"]["email"], "newcomer@example.com");
    assert!(
        !failed.to_string().contains("\"short\""),
        "never the password"
    );
    assert_eq!(of("success")["actor"], "newcomer@example.com");
    // The sign-in that follows a registration is one; the failed registration is not.
    assert!(
        !records
            .iter()
            .any(|r| r["action"] == "sign_in" && r["outcome"] == "failure"),
        "no registration is recorded as a sign-in: {records:?}"
    );
}
