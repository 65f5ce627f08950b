//! Browser sessions: logout revokes, expiry is enforced, a restart keeps them, CSRF is
//! checked, and cookies carry the right attributes.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, body, error_code, set_cookie};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_session_even_for_a_copied_cookie() {
    let app = TestApp::spawn().await;
    let r = app.register("gina@example.com", PASSWORD).await;
    let cookie = set_cookie(&r)
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let logout = app.post("/auth/logout", &json!({})).await;
    assert_eq!(logout.status(), 204);
    // The cookie a thief copied earlier is dead too: the session is gone from Redis.
    let stolen = reqwest::Client::new()
        .get(app.url("/api/v1/me"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("me");
    assert_eq!(error_code(stolen, 401).await, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_refused() {
    let app = TestApp::spawn_with(vec![
        ("WEBSPLAT_SESSION_IDLE_TIMEOUT".into(), "2s".into()),
        ("WEBSPLAT_SESSION_MAX_LIFETIME".into(), "4s".into()),
    ])
    .await;
    app.register("hank@example.com", PASSWORD).await;
    // Use keeps it alive past the idle timeout…
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(app.me_status().await, 200);
    }
    // …but not past the maximum lifetime.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.me_status().await, 401);

    // And idling past the timeout ends a fresh one.
    app.login("hank@example.com", PASSWORD).await;
    assert_eq!(app.me_status().await, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.me_status().await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_platform_restart() {
    let mut app = TestApp::spawn().await;
    let me = app.signed_in("ivy@example.com").await;
    app.restart().await;
    let after = body(app.get("/api/v1/me").await).await;
    assert_eq!(after["id"], me["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_and_unproven_requests_are_refused() {
    let app = TestApp::spawn().await;
    let me = app.signed_in("jack@example.com").await;

    let cross = app
        .client
        .post(app.url("/api/v1/tokens"))
        .header("Origin", "https://evil.example")
        .json(&json!({"name": "stolen"}))
        .send()
        .await
        .expect("post");
    assert_eq!(error_code(cross, 403).await, "forbidden");

    let no_origin = app
        .client
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "no-origin"}))
        .send()
        .await
        .expect("post");
    assert_eq!(error_code(no_origin, 403).await, "forbidden");

    let with_token = app
        .client
        .post(app.url("/api/v1/tokens"))
        .header(
            "X-CSRF-Token",
            me["csrf_token"].as_str().expect("csrf token"),
        )
        .json(&json!({"name": "with-csrf"}))
        .send()
        .await
        .expect("post");
    assert_eq!(with_token.status(), 201);

    let cross_logout = app
        .client
        .post(app.url("/auth/logout"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("post");
    assert_eq!(cross_logout.status(), 403);
    assert_eq!(
        app.me_status().await,
        200,
        "a cross-site logout must not sign the user out"
    );
    assert_eq!(app.count("api_tokens").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_http_only_and_lax_and_host_prefixed_over_https() {
    let app = TestApp::spawn().await;
    let r = app.register("kim@example.com", PASSWORD).await;
    let cookie = set_cookie(&r);
    assert!(cookie.starts_with("websplat_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http: no Secure flag ({cookie})"
    );

    // Behind TLS (the public URL is https), the cookie is Secure and __Host- prefixed.
    let tls = TestApp::spawn_with(vec![(
        "WEBSPLAT_PUBLIC_URL".into(),
        "https://websplat.example".into(),
    )])
    .await;
    let r = tls
        .client
        .post(tls.url("/api/v1/auth/register"))
        .header("Origin", "https://websplat.example")
        .json(&json!({"email": "kim@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 202);
    let r = tls
        .client
        .post(tls.url("/api/v1/auth/login"))
        .header("Origin", "https://websplat.example")
        .json(&json!({"email": "kim@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 200);
    let cookie = set_cookie(&r);
    assert!(cookie.starts_with("__Host-websplat_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain="), "{cookie}");
}
