//! The door: the HTTP handlers of the gateway's own listener, the only part of the
//! platform a tenant runtime can reach. It serves `/v1/…` and nothing else; each handler
//! authenticates the call as its tenant's user ([`super::caller`]), parses the body, calls
//! the use-case ([`super::calls`]) and answers with the provider it used and the gateway's
//! overhead in headers. Its routes are declared here, not in `web::routes` (whose routes
//! pass the session guard and casbin, which a tenant's signed call never meets). It must
//! never serve anything of the platform's own API, nor echo a provider's key or raw error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_util::StreamExt;
use serde_json::Value;

use super::Gateway;
use super::caller::{self, Caller};
use super::calls::{self, ChatAnswer, Served, Stages};
use super::error::GatewayError;
use super::search::{self, Operation};

/// The largest request body the door reads.
const MAX_BODY: usize = 4 * 1024 * 1024;

pub const PROVIDER_HEADER: HeaderName = HeaderName::from_static("x-websplat-provider");
pub const OVERHEAD_HEADER: HeaderName = HeaderName::from_static("x-websplat-gateway-overhead-ms");
/// On answers of the `local` provider (`platform models`): they come from a small local model.
pub const MODEL_LABEL_HEADER: HeaderName = HeaderName::from_static("x-websplat-model");

/// The HTTP client of one of the door's worker threads ([`Gateway::worker_client`]), in its
/// app data.
pub struct WorkerClient(pub reqwest::Client);

/// The door's routes (the whole of its surface).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/models", web::get().to(models))
        .route("/v1/chat/completions", web::post().to(chat_completions))
        .route("/v1/embeddings", web::post().to(embeddings))
        .route("/v1/search", web::post().to(web_search))
        .route("/v1/extract", web::post().to(extract))
        .route("/v1/retrieval/search/{id}", web::post().to(retrieve))
        .route("/v1/retrieval/ingest", web::post().to(ingest))
        .route("/v1/retrieval/status/{process}", web::get().to(status))
        .default_service(web::to(not_found));
}

async fn authenticate(gw: &Gateway, req: &HttpRequest) -> Result<Caller, GatewayError> {
    let header = req
        .headers()
        .get(caller_header())
        .and_then(|v| v.to_str().ok());
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let caller = caller::authenticate(
        &gw.callers,
        &gw.db,
        &gw.tenants.routing,
        &gw.tenants.keys,
        header,
        req.method().as_str(),
        path,
    )
    .await?;
    tracing::Span::current().record("user_id", tracing::field::display(caller.user));
    Ok(caller)
}

fn caller_header() -> HeaderName {
    HeaderName::from_static(websplat_contract::identity::HEADER)
}

/// The body, read up to [`MAX_BODY`].
async fn read_body(mut payload: web::Payload) -> Result<Bytes, GatewayError> {
    let mut buffer = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            GatewayError::BadRequest("the request body could not be read".to_owned())
        })?;
        if buffer.len() + chunk.len() > MAX_BODY {
            return Err(GatewayError::TooLarge(MAX_BODY));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

fn json_body(body: &Bytes) -> Result<Value, GatewayError> {
    if body.is_empty() {
        return Err(GatewayError::BadRequest("send a JSON body".to_owned()));
    }
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::BadRequest(format!("the request body is not valid JSON: {e}")))
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The provider, the gateway's overhead and where the call's time went (`Server-Timing`:
/// `gateway` first, then the stages of [`Stages`]).
fn with_served<T>(
    mut response: HttpResponseBuilder,
    served: &Served<T>,
    before: Stages,
) -> HttpResponseBuilder {
    let overhead = ms(served.overhead);
    let provider = served.provider.as_str();
    if let Ok(v) = HeaderValue::from_str(provider) {
        response.insert_header((PROVIDER_HEADER, v));
    }
    if provider == "local" {
        response.insert_header((
            MODEL_LABEL_HEADER,
            HeaderValue::from_static(crate::config::LOCAL_MODEL_LABEL),
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&overhead) {
        response.insert_header((OVERHEAD_HEADER, v));
    }
    let s = served.stages;
    let timing = format!(
        "gateway;dur={overhead}, auth;dur={}, body;dur={}, pool;dur={}, redis;dur={}, upstream;dur={}",
        ms(before.auth),
        ms(before.body),
        ms(s.pool),
        ms(s.redis),
        ms(s.upstream)
    );
    if let Ok(v) = HeaderValue::from_str(&timing) {
        response.insert_header((HeaderName::from_static("server-timing"), v));
    }
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

/// Authenticates the call and reads its JSON body, timing both.
async fn caller_and_body(
    gw: &Gateway,
    req: &HttpRequest,
    payload: Option<web::Payload>,
) -> Result<(Caller, Option<Value>, Stages), GatewayError> {
    let started = Instant::now();
    let caller = authenticate(gw, req).await?;
    let authenticated = Instant::now();
    let body = match payload {
        Some(p) => Some(json_body(&read_body(p).await?)?),
        None => None,
    };
    let stages = Stages {
        auth: authenticated - started,
        body: authenticated.elapsed(),
        ..Stages::default()
    };
    Ok((caller, body, stages))
}

async fn models(gw: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, GatewayError> {
    let caller = authenticate(&gw, &req).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(calls::models(&gw, &caller)))
}

async fn chat_completions(
    gw: web::Data<Gateway>,
    client: web::Data<WorkerClient>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, GatewayError> {
    let arrived = Instant::now();
    let (caller, body, before) = caller_and_body(&gw, &req, Some(payload)).await?;
    let gw: Arc<Gateway> = gw.into_inner();
    let served = calls::chat(&gw, &client.0, &caller, body.unwrap_or_default(), arrived).await?;
    let response = with_served(HttpResponse::Ok(), &served, before);
    Ok(match served.answer {
        ChatAnswer::Whole(answer) => {
            let mut r = response;
            r.json(answer)
        }
        ChatAnswer::Stream(stream) => {
            let mut r = response;
            r.insert_header((header::CONTENT_TYPE, "text/event-stream"))
                .insert_header((HeaderName::from_static("x-accel-buffering"), "no"))
                .streaming(*stream)
        }
    })
}

async fn embeddings(
    gw: web::Data<Gateway>,
    client: web::Data<WorkerClient>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, GatewayError> {
    let arrived = Instant::now();
    let (caller, body, before) = caller_and_body(&gw, &req, Some(payload)).await?;
    let gw: Arc<Gateway> = gw.into_inner();
    let served =
        calls::embeddings(&gw, &client.0, &caller, body.unwrap_or_default(), arrived).await?;
    Ok(with_served(HttpResponse::Ok(), &served, before).json(served.answer))
}

async fn search_op(
    gw: web::Data<Gateway>,
    client: web::Data<WorkerClient>,
    req: HttpRequest,
    payload: Option<web::Payload>,
    op: Operation,
) -> Result<HttpResponse, GatewayError> {
    let (caller, body, before) = caller_and_body(&gw, &req, payload).await?;
    let gw: Arc<Gateway> = gw.into_inner();
    let served = search::call(&gw, &client.0, &caller, op, body).await?;
    Ok(with_served(HttpResponse::Ok(), &served, before).json(served.answer))
}

async fn web_search(
    gw: web::Data<Gateway>,
    client: web::Data<WorkerClient>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, GatewayError> {
    search_op(gw, client, req, Some(payload), Operation::WebSearch).await
}

async fn extract(
    gw: web::Data<Gateway>,
    client: web::Data<WorkerClient>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, GatewayError> {
    search_op(gw, client, req, Some(payload), Operation::Extract).await
}

async fn retrieve(
    gw: web::Data<Gateway>,
    client: web::Data<WorkerClient>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, GatewayError> {
    let id = search::path_id("id", &id)?;
    search_op(gw, client, req, Some(payload), Operation::Retrieve { id }).await
}

async fn ingest(
    gw: web::Data<Gateway>,
    client: web::Data<WorkerClient>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, GatewayError> {
    search_op(gw, client, req, Some(payload), Operation::Ingest).await
}

async fn status(
    gw: web::Data<Gateway>,
    client: web::Data<WorkerClient>,
    req: HttpRequest,
    process: web::Path<String>,
) -> Result<HttpResponse, GatewayError> {
    let process = search::path_id("process", &process)?;
    search_op(gw, client, req, None, Operation::Status { process }).await
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, GatewayError> {
    Err(GatewayError::NotFound(format!(
        "the AI gateway has no {} {}; it serves GET /v1/models, POST /v1/chat/completions, POST /v1/embeddings, POST /v1/search, POST /v1/extract, POST /v1/retrieval/search/{{id}}, POST /v1/retrieval/ingest and GET /v1/retrieval/status/{{process}}",
        req.method(),
        req.path()
    )))
}
