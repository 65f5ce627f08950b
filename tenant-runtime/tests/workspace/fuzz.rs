//! The runtime's API fuzzed from its own OpenAPI document by the third-party `schemathesis`,
//! with a tenant secret, so every request is one the platform signed for the owner: no 5xx,
//! no status code the document does not list, no body that breaks its schema.
//!
//! schemathesis cannot sign, so it talks to a small relay of this test's own that does what
//! the platform's proxy does to each request (add the owner's identity header for its method,
//! path and query, signed with the tenant secret) and hands back the runtime's answer as it
//! came. The relay decides nothing; the runtime's own guard checks every signature.

use actix_web::web::{Bytes, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use reqwest::Client;
use tenant_runtime::trust::HEADER as IDENTITY;
use websplat_test_support::{Fuzz, free_port};

use crate::helpers::{Runtime, Tenant};

/// What the relay needs: the runtime and how to sign for its owner.
struct Relay {
    base: String,
    tenant: Tenant,
    http: Client,
}

/// Headers that belong to one hop, never passed on.
const HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "host",
    "content-length",
];

async fn relay(req: HttpRequest, body: Bytes, relay: Data<Relay>) -> HttpResponse {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut out = relay
        .http
        .request(method.clone(), format!("{}{path}", relay.base))
        .header(IDENTITY, relay.tenant.identity(method.as_str(), &path))
        .body(body);
    for (name, value) in req.headers() {
        if !HOP.contains(&name.as_str()) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let Ok(answer) = out.send().await else {
        return HttpResponse::BadGateway().body("the runtime did not answer");
    };
    let mut back = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(answer.status().as_u16())
            .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
    );
    for (name, value) in answer.headers() {
        if !HOP.contains(&name.as_str()) {
            back.append_header((name.as_str(), value.as_bytes()));
        }
    }
    match answer.bytes().await {
        Ok(bytes) => back.body(bytes),
        Err(_) => HttpResponse::BadGateway().body("the runtime's answer was cut"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_the_signed_api_finds_no_undocumented_answer() {
    let tenant = Tenant::new();
    let runtime = Runtime::start_for(&tenant).await;
    let port = free_port();
    let state = Data::new(Relay {
        base: runtime.base.clone(),
        tenant,
        http: Client::new(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(actix_web::web::PayloadConfig::new(64 * 1024 * 1024))
            .default_service(actix_web::web::to(relay))
    })
    .workers(2)
    .bind(("127.0.0.1", port))
    .expect("bind the relay")
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    let mut fuzz = Fuzz::new(format!("http://127.0.0.1:{port}/api/v1/openapi.json"));
    // Streams never end on their own (server-sent events, the WebSocket): a response the
    // relay would wait for forever.
    fuzz.exclude_path_regex = Some("^/(ws|api/v1/jobs/events|api/v1/jobs/\\{id\\}/events)$".into());
    fuzz.run().await;
    handle.stop(false).await;
}
