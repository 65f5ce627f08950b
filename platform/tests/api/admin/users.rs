//! Users as admins and members see them: a member cannot reach another's tokens or sessions
//! by swapping ids; disabling a user ends their sessions and tokens at once; admins search
//! users page by page.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, body, error_code};

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
