//! The API as a whole: its OpenAPI document, and HEAD answered like GET without a body.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_api() {
    let rt = Runtime::start().await;
    let doc = body(rt.get("/api/v1/openapi.json").await).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/projects", "post"),
        ("/api/v1/projects/{id}/pages/{path}", "put"),
        ("/api/v1/projects/{id}/undo", "post"),
        ("/api/v1/projects/{id}/seo", "get"),
        ("/api/v1/documents/search", "get"),
        ("/api/v1/projects/{id}/generate", "post"),
        ("/api/v1/projects/{id}/exports", "post"),
        ("/api/v1/projects/{id}/publish", "post"),
        ("/api/v1/jobs/{id}", "get"),
        ("/api/v1/jobs/{id}/artifact", "get"),
        ("/api/v1/documents", "post"),
        ("/api/v1/sessions/{id}/messages", "post"),
        ("/api/v1/projects/{id}/analytics", "get"),
        ("/ws", "get"),
        ("/api/v1/whoami", "get"),
        ("/api/v1/notes", "get"),
        ("/api/v1/notes", "post"),
        ("/api/v1/notes/{id}", "get"),
        ("/api/v1/notes/{id}", "delete"),
        ("/api/v1/uploads", "get"),
        ("/api/v1/uploads", "post"),
        ("/api/v1/uploads/{id}", "get"),
        ("/api/v1/uploads/{id}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    let operations: usize = paths
        .values()
        .filter_map(|p| p.as_object())
        .map(|p| p.len())
        .sum();
    assert!(operations >= 68, "{operations} operations documented");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_like_get_without_a_body() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Heads").await;
    for path in [
        "/healthz".to_owned(),
        "/api/v1/projects".to_owned(),
        format!("/api/v1/projects/{id}"),
        format!("/api/v1/projects/{id}/pages/index.html"),
        "/api/v1/uploads".to_owned(),
    ] {
        let get = rt.get(&path).await;
        let head = rt.http.head(rt.url(&path)).send().await.expect("HEAD");
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(
            head.bytes().await.expect("body").is_empty(),
            "HEAD {path} has no body"
        );
    }
    let missing = rt
        .http
        .head(rt.url(&format!("/api/v1/projects/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(missing.status(), 404);
}
