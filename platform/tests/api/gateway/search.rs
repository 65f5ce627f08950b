//! Web search (Tavily) and retrieval (GroundX) behind the door: bodies pass through, the key
//! is added by the platform, each call counts against the same budget and is in the ledger;
//! web search needs the access level's `web_search` feature.

use std::sync::{Arc, Mutex};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use reqwest::Method;
use serde_json::{Value, json};

use super::{PROVIDER_KEY, Tenant, Upstream, gateway_app, ledger};
use crate::helpers::LocalServer;

type Seen = Arc<Mutex<Vec<(String, String, Option<String>, Value)>>>;

async fn provider(seen: web::Data<Seen>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth = req
        .headers()
        .get("authorization")
        .or_else(|| req.headers().get("x-api-key"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.lock().expect("lock").push((
        req.method().to_string(),
        req.path().to_owned(),
        auth,
        body.clone(),
    ));
    let path = req.path();
    if path == "/search" {
        return HttpResponse::Ok().json(json!({"query": body["query"], "results": [{"title": "Rust", "url": "https://www.rust-lang.org", "content": "A language", "score": 0.9}], "response_time": 0.5}));
    }
    if path == "/extract" {
        return HttpResponse::Ok().json(json!({"results": [{"url": body["urls"][0], "raw_content": "Hello"}], "failed_results": []}));
    }
    if let Some(id) = path.strip_prefix("/api/v1/search/") {
        return HttpResponse::Ok().json(json!({"search": {"count": 1, "query": body["query"], "results": [{"documentId": id, "text": "A passage", "score": 0.8}]}}));
    }
    if path == "/api/v1/ingest/documents/remote" {
        return HttpResponse::Ok()
            .json(json!({"ingest": {"processId": "proc-1", "status": "queued"}}));
    }
    if path == "/api/v1/ingest/proc-1" {
        return HttpResponse::Ok()
            .json(json!({"ingest": {"processId": "proc-1", "status": "complete"}}));
    }
    HttpResponse::NotFound().json(json!({"message": "no such path"}))
}

#[tokio::test]
async fn search_and_retrieval_pass_through_the_door_and_are_metered() {
    let seen: Seen = Arc::default();
    let shared = seen.clone();
    let server = LocalServer::start(move |cfg| {
        cfg.app_data(web::Data::new(shared.clone()))
            .default_service(web::to(provider));
    });
    let unused = Upstream::start();
    let app = gateway_app(
        &unused,
        &[
            ("WEBSPLAT_AI_WEB_KIND", "tavily".to_owned()),
            ("WEBSPLAT_AI_WEB_BASE_URL", server.base.clone()),
            ("WEBSPLAT_AI_WEB_API_KEY", PROVIDER_KEY.to_owned()),
            ("WEBSPLAT_AI_DOCS_KIND", "groundx".to_owned()),
            (
                "WEBSPLAT_AI_DOCS_BASE_URL",
                format!("{}/api/v1", server.base),
            ),
            ("WEBSPLAT_AI_DOCS_API_KEY", PROVIDER_KEY.to_owned()),
            ("WEBSPLAT_GATEWAY_SEARCH_TOKENS", "700".to_owned()),
        ],
    )
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;

    // The free level has no web search: refused in words, nothing sent, nothing billed.
    let r = alice
        .call(Method::POST, "/v1/search", Some(&json!({"query": "rust"})))
        .await;
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.expect("json");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("web_search")),
        "{b}"
    );
    assert!(seen.lock().expect("lock").is_empty());

    super::set_budget(&app, "free", 50_000).await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.db.connect().await;
        diesel::sql_query("UPDATE access_levels SET features = array_append(features, 'web_search') WHERE name = 'free'")
            .execute(&mut conn)
            .await
            .expect("add web_search");
        app.state.gateway.callers.changed(None).await;
    }
    let r = alice
        .call(
            Method::POST,
            "/v1/search",
            Some(&json!({"query": "rust", "max_results": 3, "search_depth": "basic"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-websplat-provider"], "web");
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["results"][0]["url"], "https://www.rust-lang.org");
    let r = alice
        .call(
            Method::POST,
            "/v1/extract",
            Some(&json!({"urls": ["https://example.com"]})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = alice
        .call(
            Method::POST,
            "/v1/retrieval/search/bucket-7",
            Some(&json!({"query": "passage", "n": 5})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["search"]["results"][0]["documentId"], "bucket-7");
    let r = alice
        .call(
            Method::POST,
            "/v1/retrieval/ingest",
            Some(
                &json!({"documents": [{"bucketId": 7, "sourceUrl": "https://example.com/a.pdf"}]}),
            ),
        )
        .await;
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["ingest"]["processId"], "proc-1");
    let r = alice
        .call(Method::GET, "/v1/retrieval/status/proc-1", None)
        .await;
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["ingest"]["status"], "complete");
    let r = alice
        .call(Method::GET, "/v1/retrieval/status/..%2Fetc", None)
        .await;
    assert_eq!(
        r.status(),
        400,
        "ids are checked before they reach a provider's path"
    );

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0].1, "/search");
    assert_eq!(
        seen[0].2.as_deref(),
        Some(format!("Bearer {PROVIDER_KEY}").as_str()),
        "Tavily's bearer key"
    );
    assert_eq!(seen[0].3["max_results"], 3, "the body as sent");
    assert_eq!(
        seen[2].2.as_deref(),
        Some(PROVIDER_KEY),
        "GroundX's X-API-Key"
    );
    assert_eq!(seen[4].0, "GET");
    let rows = ledger(&app, &alice.user, 5).await;
    let endpoints: Vec<&str> = rows.iter().filter_map(|r| r["endpoint"].as_str()).collect();
    assert_eq!(
        endpoints,
        ["search", "extract", "retrieve", "ingest", "status"]
    );
    assert!(rows.iter().all(|r| r["tokens_in"] == 700));
    assert!(
        rows[0]["cost_nanos"].as_i64().unwrap_or(0) > 0,
        "priced per request"
    );
    let used = app
        .state
        .gateway
        .budget
        .standing(alice.user)
        .await
        .expect("redis")
        .used;
    assert_eq!(used, 5 * 700, "the same budget as the models");
}
