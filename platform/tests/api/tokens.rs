//! Personal API tokens: shown once, stored as a hash, usable as a bearer token, revocable,
//! expiring, and private to their owner.

use serde_json::json;

use crate::helpers::{TestApp, body, error_code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_use_list_and_revoke_a_token() {
    let app = TestApp::spawn().await;
    let me = app.signed_in("lena@example.com").await;
    let r = app
        .post(
            "/api/v1/tokens",
            &json!({"name": "ci", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created = body(r).await;
    let secret = created["token"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("wsp_") && secret.len() > 40, "{secret}");
    assert!(created["expires_at"].is_string());

    // A program uses it, with no cookie.
    let r = app.me_with_token(&secret).await;
    assert_eq!(r.status(), 200);
    let seen = body(r).await;
    assert_eq!(seen["id"], me["id"]);
    assert!(seen["csrf_token"].is_null());

    // Listed without the secret, with its last use.
    let list = body(app.get("/api/v1/tokens").await).await;
    let listed = &list["tokens"][0];
    assert_eq!(listed["name"], "ci");
    assert!(listed["last_used_at"].is_string(), "{list}");
    assert!(!list.to_string().contains(&secret));
    assert!(secret.starts_with(listed["prefix"].as_str().expect("prefix")));

    // Only the hash is stored.
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Dump {
        #[diesel(sql_type = diesel::sql_types::Text)]
        t: String,
    }
    let mut conn = app.db.connect().await;
    let dump: Vec<Dump> = diesel::sql_query("SELECT row_to_json(t)::text AS t FROM api_tokens t")
        .load(&mut conn)
        .await
        .expect("dump");
    let random_part = &secret[4..];
    assert!(
        dump.iter().all(|d| !d.t.contains(random_part)),
        "the secret is stored"
    );

    let id = created["id"].as_str().expect("id");
    assert_eq!(
        app.delete(&format!("/api/v1/tokens/{id}")).await.status(),
        204
    );
    let r = app.me_with_token(&secret).await;
    assert_eq!(error_code(r, 401).await, "unauthorized");
    assert_eq!(
        body(app.get("/api/v1/tokens").await).await["tokens"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused() {
    let app = TestApp::spawn().await;
    app.signed_in("mia@example.com").await;
    let created = body(
        app.post(
            "/api/v1/tokens",
            &json!({"name": "short", "expires_in_days": 1}),
        )
        .await,
    )
    .await;
    let secret = created["token"].as_str().expect("secret").to_owned();
    assert_eq!(app.me_with_token(&secret).await.status(), 200);

    // A day passes.
    use diesel_async::RunQueryDsl;
    let mut conn = app.db.connect().await;
    diesel::sql_query("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
        .execute(&mut conn)
        .await
        .expect("age the token");
    let r = app.me_with_token(&secret).await;
    assert_eq!(error_code(r, 401).await, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_requests_are_explained() {
    let app = TestApp::spawn().await;
    app.signed_in("ned@example.com").await;
    for (request, field) in [
        (json!({"name": ""}), Some("name")),
        (json!({"name": "x".repeat(65)}), Some("name")),
        (
            json!({"name": "ok", "expires_in_days": 0}),
            Some("expires_in_days"),
        ),
        (
            json!({"name": "ok", "expires_in_days": 4000}),
            Some("expires_in_days"),
        ),
        (json!({"name": "ok", "expires_in_days": -1}), None),
        (json!({"name": "ok", "scope": "admin"}), None),
    ] {
        let r = app.post("/api/v1/tokens", &request).await;
        assert_eq!(r.status(), 400, "{request}");
        let b = body(r).await;
        if let Some(field) = field {
            assert_eq!(b["error"]["field"], field, "{request}");
        }
    }
    let r = app.delete("/api/v1/tokens/not-a-uuid").await;
    error_code(r, 404).await;
    let r = reqwest::Client::new()
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .expect("me");
    error_code(r, 401).await;
    let r = reqwest::Client::new()
        .get(app.url("/api/v1/me"))
        .bearer_auth("wsp_forged")
        .send()
        .await
        .expect("me");
    error_code(r, 401).await;
    assert_eq!(app.count("api_tokens").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_token_cannot_be_seen_or_revoked() {
    let app = TestApp::spawn().await;
    app.signed_in("olga@example.com").await;
    let created = body(app.post("/api/v1/tokens", &json!({"name": "olga's"})).await).await;
    let id = created["id"].as_str().expect("id").to_owned();

    let mut mallory = app;
    mallory.switch_browser();
    mallory.signed_in("mallory@example.com").await;
    assert_eq!(
        body(mallory.get("/api/v1/tokens").await).await["tokens"],
        json!([])
    );
    let r = mallory.delete(&format!("/api/v1/tokens/{id}")).await;
    assert_eq!(error_code(r, 404).await, "not_found");
    let r = mallory
        .me_with_token(created["token"].as_str().expect("secret"))
        .await;
    assert_eq!(
        body(r).await["email"],
        "olga@example.com",
        "olga's token still works"
    );
}
