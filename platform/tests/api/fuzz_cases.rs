//! What the fuzz runs (`fuzz.rs`) found, kept as plain requests: each sends the request that
//! got an answer the OpenAPI document did not list, and checks both the answer and that the
//! document now lists it for that operation.

use serde_json::{Value, json};

use crate::helpers::{TestApp, body, error_code};

async fn document(app: &TestApp) -> Value {
    body(app.get("/api/v1/openapi.json").await).await
}

/// Whether the document lists `status` for `method path`.
fn lists(doc: &Value, method: &str, path: &str, status: u16) -> bool {
    doc["paths"][path][method]["responses"][status.to_string()].is_object()
}

fn assert_lists(doc: &Value, method: &str, path: &str, status: u16) {
    assert!(
        lists(doc, method, path, status),
        "{} {path} answers {status}, which its document does not list: {}",
        method.to_uppercase(),
        doc["paths"][path][method]["responses"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_for_an_unknown_provider_is_a_documented_404() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(
        error_code(app.get("/auth/callback/0").await, 404).await,
        "not_found"
    );
    assert_lists(&doc, "get", "/auth/callback/{provider}", 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_refused_to_a_member_is_a_documented_403() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let (_, _, token) = app.user_with_role("mo@example.com", None).await;
    let r = app
        .call(reqwest::Method::GET, "/metrics", &token, None)
        .await;
    assert_eq!(error_code(r, 403).await, "forbidden");
    assert_lists(&doc, "get", "/metrics", 403);
    assert_lists(&doc, "get", "/metrics", 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_name_in_a_path_is_a_documented_400() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let (me, _, token) = app.user_with_role("ada@example.com", Some("admin")).await;
    let id = me["id"].as_str().expect("id");
    for (method, path, pattern) in [
        (
            reqwest::Method::DELETE,
            "/api/v1/admin/roles/0".to_owned(),
            "/api/v1/admin/roles/{role}",
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v1/admin/users/{id}/roles/0"),
            "/api/v1/admin/users/{id}/roles/{role}",
        ),
        (
            reqwest::Method::DELETE,
            "/api/v1/pools/%60%C2%94%5B".to_owned(),
            "/api/v1/pools/{name}",
        ),
    ] {
        let r = app.call(method.clone(), &path, &token, None).await;
        assert_eq!(r.status(), 400, "{method} {path}");
        assert_lists(&doc, &method.as_str().to_lowercase(), pattern, 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_access_level_is_one_object_that_a_valid_body_satisfies() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    // Once an `allOf` of a closed object and `name`, which no body could satisfy.
    let schema = &doc["components"]["schemas"]["NewAccessLevel"];
    assert!(schema["allOf"].is_null(), "{schema}");
    assert!(schema["properties"]["name"].is_object(), "{schema}");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        required.contains(&"name") && required.contains(&"memory_mib"),
        "{schema}"
    );
    let (_, _, token) = app.user_with_role("al@example.com", Some("admin")).await;
    let level = json!({
        "name": "fuzzed", "features": [], "cpu_millicores": 500, "memory_mib": 256,
        "storage_mib": 512, "max_upload_mib": 10, "ai_tokens_per_day": 1000,
        "read_requests_per_minute": 60, "write_requests_per_minute": 30,
        "idle_timeout_seconds": 600
    });
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/admin/access-levels",
            &token,
            Some(level),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_not_sent_as_json_or_too_large_is_documented() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let (_, _, token) = app.user_with_role("bo@example.com", None).await;
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{\"name\":\"x\"}")
        .send()
        .await
        .expect("POST");
    assert_eq!(error_code(r, 415).await, "unsupported_media_type");
    assert_lists(&doc, "post", "/api/v1/tokens", 415);
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            &token,
            Some(json!({ "name": "x".repeat(70 * 1024) })),
        )
        .await;
    assert_eq!(r.status(), 413);
    assert_lists(&doc, "post", "/api/v1/tokens", 413);
    // Every API operation can meet the guard's rate limit and a dependency's outage.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") || path.starts_with("/api/v1/auth/") {
            continue;
        }
        for method in item.as_object().expect("a path item").keys() {
            for status in [401, 403, 429, 503] {
                assert_lists(&doc, method, path, status);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_a_nul_byte_is_refused_in_words_and_the_refusal_is_audited() {
    let app = TestApp::spawn().await;
    let (_, _, token) = app.user_with_role("ada@example.com", Some("admin")).await;
    let name = "\u{db}\u{ef}\u{80}\u{f1}_\u{0}";
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/pools",
            &token,
            Some(json!({ "name": name, "max_running": -11790, "max_starting": 0 })),
        )
        .await;
    assert_eq!(r.status(), 400, "a NUL byte in a pool's name");
    let refusal = body(r).await;
    assert!(
        refusal["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("pool")),
        "{refusal}"
    );
    let r = app
        .call(
            reqwest::Method::GET,
            "/api/v1/admin/audit?action=pool.create",
            &token,
            None,
        )
        .await;
    let log = body(r).await;
    assert!(
        log.to_string().contains("\u{FFFD}"),
        "the refused create is in the audit log, its NUL written as U+FFFD: {log}"
    );
}
