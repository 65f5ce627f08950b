//! Provider keys never leave the platform except towards their provider: with distinctive
//! keys configured, calls that succeed and calls that fail (a provider refusing the
//! request, failing, refusing the key — one of them echoing the Authorization header it was
//! sent back in its error body) leave no key in the platform's logs (captured at debug
//! level), in the door's answers and headers, nor in the admin's and the user's API views.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use reqwest::Method;
use serde_json::{Value, json};

use super::{PROVIDER_KEY, Tenant, Upstream, gateway_app, hello};
use crate::helpers::{LocalServer, Logs};

const ECHO_KEY: &str = "sk-echo-27182818284-distinctive";
const CLAUDE_KEY: &str = "sk-ant-31415926535-distinctive";

/// An OpenAI-compatible server that fails each model its own way, echoing what it was sent
/// (the Authorization or x-api-key header) in its error body, as careless servers do.
async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let sent = ["authorization", "x-api-key"]
        .iter()
        .filter_map(|h| req.headers().get(*h).and_then(|v| v.to_str().ok()))
        .collect::<Vec<_>>()
        .join(" ");
    let error = json!({"error": {"message": format!("request with {sent} refused"), "type": "invalid_request_error"}});
    match body["model"].as_str() {
        Some("fail") => HttpResponse::InternalServerError().json(error),
        Some("deny") => HttpResponse::Unauthorized().json(error),
        _ => HttpResponse::BadRequest().json(error),
    }
}

/// Everything a response shows: status, headers and body.
async fn shown(r: reqwest::Response) -> String {
    let mut out = format!("{}\n", r.status());
    for (k, v) in r.headers() {
        out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or_default()));
    }
    let body: String = r.text().await.unwrap_or_default();
    out.push_str(&body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_provider_key_appears_in_logs_answers_errors_or_the_api() {
    let logs = Logs::capture();
    let upstream = Upstream::start();
    let server = LocalServer::start(|cfg| {
        cfg.route("/v1/chat/completions", web::post().to(echo))
            .route("/v1/messages", web::post().to(echo));
    });
    let app = gateway_app(
        &upstream,
        &[
            ("WEBSPLAT_AI_ECHO_KIND", "openai".to_owned()),
            ("WEBSPLAT_AI_ECHO_BASE_URL", format!("{}/v1", server.base)),
            ("WEBSPLAT_AI_ECHO_API_KEY", ECHO_KEY.to_owned()),
            ("WEBSPLAT_AI_ECHO_MODELS", "refuse,fail,deny".to_owned()),
            ("WEBSPLAT_AI_CLAUDE_KIND", "anthropic".to_owned()),
            ("WEBSPLAT_AI_CLAUDE_BASE_URL", format!("{}/v1", server.base)),
            ("WEBSPLAT_AI_CLAUDE_API_KEY", CLAUDE_KEY.to_owned()),
            ("WEBSPLAT_AI_CLAUDE_MODELS", "refuse".to_owned()),
            ("WEBSPLAT_AI_ALIAS_REFUSE", "echo/refuse".to_owned()),
            ("WEBSPLAT_AI_ALIAS_FAIL", "echo/fail".to_owned()),
            ("WEBSPLAT_AI_ALIAS_DENY", "echo/deny".to_owned()),
            ("WEBSPLAT_AI_ALIAS_CLAUDE", "claude/refuse".to_owned()),
        ],
    )
    .await;
    let alice = Tenant::start(&app, "alice@example.com").await;
    let mut seen = String::new();
    for stream in [false, true] {
        let r = alice.chat(&hello(stream)).await;
        assert_eq!(r.status(), 200);
        seen += &shown(r).await;
    }
    let r = alice
        .call(
            Method::POST,
            "/v1/embeddings",
            Some(&json!({"model": "embed", "input": "hi"})),
        )
        .await;
    seen += &shown(r).await;
    let mut refused = false;
    for (model, status) in [
        ("refuse", 400),
        ("fail", 502),
        ("deny", 502),
        ("claude", 400),
    ] {
        for stream in [false, true] {
            let mut body = hello(stream);
            body["model"] = json!(model);
            let r = alice.chat(&body).await;
            assert_eq!(r.status(), status, "{model}");
            let text = shown(r).await;
            refused |= text.contains("[redacted]");
            seen += &text;
        }
    }
    assert!(
        refused,
        "the provider's refusal reaches the tenant, with the key taken out: {seen}"
    );
    // The upstream did get the keys: the test can tell where they went.
    assert!(
        upstream
            .seen()
            .iter()
            .all(|s| s.authorization.as_deref() == Some(&format!("Bearer {PROVIDER_KEY}")))
    );
    let r = alice
        .session
        .get(app.url("/api/v1/me/ai-usage"))
        .send()
        .await
        .expect("usage");
    assert_eq!(r.status(), 200);
    seen += &shown(r).await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    for path in ["/api/v1/admin/ai/providers", "/api/v1/admin/ai/usage"] {
        let r = app.call(Method::GET, path, &admin, None).await;
        assert_eq!(r.status(), 200, "{path}");
        seen += &shown(r).await;
    }
    seen += &app.metrics().await;
    // Written rows and their log lines are in before the logs are read.
    app.state.gateway.flush().await;
    let logged = logs.text();
    assert!(
        logged.contains("AI call metered") && logged.contains("provider call failed"),
        "the capture holds the gateway's logs"
    );
    for key in [PROVIDER_KEY, ECHO_KEY, CLAUDE_KEY] {
        assert!(!seen.contains(key), "{key} was shown: {seen}");
        assert!(!logged.contains(key), "{key} was logged");
        let in_ledger = app
            .query_one(&format!(
                "SELECT count(*) FROM ai_ledger WHERE error LIKE '%{key}%'"
            ))
            .await;
        assert_eq!(in_ledger, "0", "{key} in the ledger");
    }
}
