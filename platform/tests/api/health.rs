//! Health, readiness, metrics, the OpenAPI document, the pages and the error shape.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{TestApp, body, error_code};
use crate::support::{ChildGuard, env_var, free_port};

fn start_redis(port: u16) -> ChildGuard {
    let child = Command::new(env_var("WEBSPLAT_TEST_REDIS_SERVER"))
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    ChildGuard(child)
}

async fn ready(app: &TestApp) -> (u16, serde_json::Value) {
    let r = app.get("/readyz").await;
    (r.status().as_u16(), body(r).await)
}

async fn wait_ready(app: &TestApp, want: u16) -> serde_json::Value {
    for _ in 0..100 {
        let (status, b) = ready(app).await;
        if status == want {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_redis_when_it_stops_and_recovers_when_it_is_back() {
    let port = free_port();
    let redis = start_redis(port);
    let app = TestApp::spawn_with(vec![(
        "WEBSPLAT_REDIS_URL".into(),
        format!("redis://127.0.0.1:{port}/"),
    )])
    .await;
    let b = wait_ready(&app, 200).await;
    assert_eq!(b["checks"]["redis"], "ok");
    assert_eq!(b["checks"]["postgresql"], "ok");
    assert_eq!(app.get("/healthz").await.status(), 200);
    let (_, _, operator) = app
        .user_with_role("ops@example.com", Some("operator"))
        .await;

    drop(redis);
    let b = wait_ready(&app, 503).await;
    assert_eq!(b["checks"]["postgresql"], "ok");
    assert_eq!(
        b["checks"]["redis"], "unavailable",
        "an anonymous caller learns what is down, not the internal error: {b}"
    );
    // An operator (who may read the metrics) gets the reason.
    let r = app
        .call(reqwest::Method::GET, "/readyz", &operator, None)
        .await;
    assert_eq!(r.status(), 503);
    let detailed = body(r).await;
    let reason = detailed["checks"]["redis"].as_str().unwrap_or_default();
    assert!(reason.starts_with("unavailable: "), "{detailed}");
    let message = b["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("redis") && !message.contains("postgresql"),
        "{message}"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "alive even when not ready"
    );
    // A request that needs Redis says so with a 503.
    let r = app
        .register("pat@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(error_code(r, 503).await, "unavailable");

    let _redis = start_redis(port);
    let b = wait_ready(&app, 200).await;
    assert_eq!(b["checks"]["redis"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_postgresql_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    wait_ready(&app, 200).await;
    // Drop this test's database under the running platform.
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut admin = AsyncPgConnection::establish(&env_var("WEBSPLAT_TEST_DATABASE_URL"))
        .await
        .expect("admin");
    diesel::sql_query(format!("DROP DATABASE {} WITH (FORCE)", app.db.name))
        .execute(&mut admin)
        .await
        .expect("drop");
    let b = wait_ready(&app, 503).await;
    assert_eq!(b["checks"]["redis"], "ok");
    assert_eq!(b["checks"]["postgresql"], "unavailable", "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("postgresql"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/healthz").await;
    app.get("/api/v1/me").await;
    app.get("/no/such/page").await;
    let text = app.metrics().await;
    assert!(
        text.contains(
            r#"websplat_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"websplat_http_requests_total{method="GET",route="/api/v1/me",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(
        text.contains("websplat_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_share_one_shape_and_echo_the_request_id() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .expect("me");
    assert_eq!(
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-42")
    );
    let b = body(r).await;
    assert_eq!(b["error"]["request_id"], "trace-me-42");
    assert_eq!(b["error"]["code"], "unauthorized");

    let r = app.get("/nothing/here").await;
    assert!(r.headers().get("x-request-id").is_some());
    assert_eq!(error_code(r, 404).await, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_pages_are_served_without_a_cdn() {
    let app = TestApp::spawn().await;
    let doc = body(app.get("/api/v1/openapi.json").await).await;
    for path in [
        "/api/v1/me",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/auth/login/{provider}",
        "/readyz",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    for page in ["/login", "/dashboard", "/api/docs"] {
        let r = app.get(page).await;
        assert_eq!(r.status(), 200, "{page}");
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{page}: {csp}");
        let html = r.text().await.expect("html");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{page} loads something from elsewhere"
        );
        for asset in html
            .split("src=\"")
            .skip(1)
            .chain(html.split("href=\"").skip(1))
        {
            let path = asset.split('"').next().unwrap_or_default();
            if path.starts_with("/static/") {
                assert_eq!(app.get(path).await.status(), 200, "{page} needs {path}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_api_route() {
    let app = TestApp::spawn().await;
    let doc = body(app.get("/api/v1/openapi.json").await).await;
    // Pages and the document itself are left out of it; every API operation is in it.
    let not_api = ["/api/docs", "/api/v1/openapi.json"];
    for route in platform::web::routes::table() {
        if !route.documented {
            assert!(
                !route.pattern.starts_with("/api/") || not_api.contains(&route.pattern),
                "{} {} is an API route left out of the OpenAPI document",
                route.method,
                route.pattern
            );
            continue;
        }
        let method = route.method.to_ascii_lowercase();
        assert!(
            doc["paths"][route.pattern][&method].is_object(),
            "{} {} is served but not in the OpenAPI document",
            route.method,
            route.pattern
        );
    }
}
