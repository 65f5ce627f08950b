//! Agents: configured through the API, with its validation.

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_configured_with_validation() {
    let rt = Runtime::start().await;
    let r = rt
        .post(
            "/api/v1/agents",
            &json!({
                "name": "Copywriter", "role": "Writes page copy", "instructions": "Warm, short sentences.",
                "model": "auto", "tools": ["site_editing", "document_search", "site_editing"],
                "autonomy": "suggest", "creativity": 0.7
            }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let agent = body(r).await;
    let id = agent["id"].as_str().expect("id").to_owned();
    assert_eq!(agent["tools"], json!(["document_search", "site_editing"]));
    assert_eq!(agent["autonomy"], "suggest");

    for (bad, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "tools": ["shell"]}), "tools"),
        (json!({"name": "x", "creativity": 1.5}), "creativity"),
        (json!({"name": "x", "model": "rm -rf /"}), "model"),
    ] {
        let b = error(rt.post("/api/v1/agents", &bad).await, 400).await;
        assert_eq!(b["error"]["field"], field, "{bad}");
    }
    error(
        rt.post("/api/v1/agents", &json!({"name": "x", "autonomy": "total"}))
            .await,
        400,
    )
    .await;
    error(
        rt.post("/api/v1/agents", &json!({"name": "Copywriter"}))
            .await,
        409,
    )
    .await;

    let r = rt
        .http
        .put(rt.url(&format!("/api/v1/agents/{id}")))
        .json(&json!({"name": "Editor", "autonomy": "autonomous", "creativity": 0.2}))
        .send()
        .await
        .expect("put");
    let replaced = body(r).await;
    assert_eq!(
        (replaced["name"].as_str(), replaced["autonomy"].as_str()),
        (Some("Editor"), Some("autonomous"))
    );
    let list = body(rt.get("/api/v1/agents").await).await;
    assert_eq!(list["total"], 1);
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/agents/{id}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    error(rt.get(&format!("/api/v1/agents/{id}")).await, 404).await;
}
