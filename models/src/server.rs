//! The HTTP face of the local model, OpenAI-compatible: `GET /v1/models`,
//! `POST /v1/chat/completions` (SSE when `stream` is true), `POST /v1/embeddings`,
//! `GET /healthz`, `GET /metrics`. Every answer carries `x-websplat-model: local-small`.
//!
//! Handlers check the request, tokenize, and hand the work to the inference pool; they
//! never run a model themselves. A mistake in a request is a 4xx in OpenAI's error shape
//! with a sentence that says what to change; a full queue is a 503 with `Retry-After`.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, HttpServer};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::chat::{self, ChatMessage, ChatModel, FinishReason, GenerationParams};
use crate::config::ModelsConfig;
use crate::embed::{self, Embedder};
use crate::metrics::metrics;
use crate::openai::{
    ApiError, ChatCompletionRequest, Content, EmbeddingRequest, EmbeddingUsage, Stop, Usage,
};
use crate::pool::{ChatEvent, ChatJob, EmbedJob, InferencePool};
use crate::{CHAT_MODEL_ID, EMBEDDING_MODEL_ID, MODEL_LABEL};

/// `max_tokens` when a request gives none (and the context has room).
pub const DEFAULT_MAX_TOKENS: usize = 512;
/// Sampling when a request says nothing: lower than OpenAI's default of 1, where a 135M
/// model wanders off the subject.
pub const DEFAULT_TEMPERATURE: f64 = 0.3;
pub const DEFAULT_TOP_P: f64 = 0.9;
/// Texts per embeddings request, as OpenAI allows.
pub const MAX_EMBEDDING_INPUTS: usize = 2048;
/// Request bodies larger than this are refused (413 in OpenAI's shape).
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// What the description of each model says in `/v1/models`.
const CHAT_DESCRIPTION: &str = "A small local model (SmolLM2-135M-Instruct, 4-bit, on the CPU): short, plain answers, no tool calls; for when no provider is configured.";
const EMBEDDING_DESCRIPTION: &str =
    "A small local embedding model (all-MiniLM-L6-v2): 384 dimensions, up to 256 tokens per text.";

struct State {
    chat: Arc<ChatModel>,
    embedder: Arc<Embedder>,
    pool: InferencePool,
}

/// A server that is listening. Dropping it leaves the server running; `stop` ends it.
pub struct RunningServer {
    pub address: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Serves until the process gets Ctrl-C or SIGTERM (or `stop` elsewhere).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await??;
        Ok(())
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Loads both models from `config.dir`, starts the inference pool and listens on
/// `config.listen` (port 0 picks a free one; see `RunningServer::address`).
pub async fn spawn(config: ModelsConfig) -> anyhow::Result<RunningServer> {
    let dir = config.dir.clone();
    let (chat, embedder) = tokio::task::spawn_blocking(move || {
        let chat = ChatModel::load(&dir)?;
        let embedder = Embedder::load(&dir)?;
        anyhow::Ok((chat, embedder))
    })
    .await??;
    let (chat, embedder) = (Arc::new(chat), Arc::new(embedder));
    let pool = InferencePool::start(chat.clone(), embedder.clone(), config.workers, config.queue)?;
    let state = web::Data::new(State {
        chat,
        embedder,
        pool,
    });
    let listener = TcpListener::bind(config.listen).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} (WEBSPLAT_MODELS_LISTEN): {e}",
            config.listen
        )
    })?;
    let address = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(BODY_LIMIT)
                    .error_handler(|e, _| {
                        let error = ApiError::invalid(
                            None,
                            format!("The body is not a valid JSON request for this endpoint: {e}."),
                        );
                        let error = if matches!(
                            e,
                            actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
                                | actix_web::error::JsonPayloadError::Overflow { .. }
                        ) {
                            ApiError {
                                status: actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                                ..error
                            }
                        } else {
                            error
                        };
                        error.into()
                    }),
            )
            .configure(routes)
            .default_service(web::to(not_found))
            .wrap(DefaultHeaders::new().add(("x-websplat-model", MODEL_LABEL)))
            .wrap(from_fn(count_requests))
    })
    .workers(2)
    .listen(listener)?
    .shutdown_timeout(5)
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    Ok(RunningServer {
        address,
        handle,
        task,
    })
}

/// Every route of the server.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(prometheus))
        .route("/v1/models", web::get().to(list_models))
        .route("/v1/chat/completions", web::post().to(chat_completions))
        .route("/v1/embeddings", web::post().to(embeddings));
}

async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let endpoint = req.match_pattern().unwrap_or_else(|| "other".to_owned());
    let response = next.call(req).await?;
    metrics().request(&endpoint, response.status().as_u16());
    Ok(response)
}

async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError {
        status: actix_web::http::StatusCode::NOT_FOUND,
        kind: "invalid_request_error",
        code: Some("unknown_url"),
        param: None,
        message: format!(
            "There is no {} {} here; this server answers /v1/models, /v1/chat/completions and /v1/embeddings.",
            req.method(),
            req.path()
        ),
    })
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "models": [CHAT_MODEL_ID, EMBEDDING_MODEL_ID]}))
}

async fn prometheus(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics().render(state.pool.waiting()))
}

async fn list_models() -> HttpResponse {
    let model = |id: &str, description: &str| {
        json!({
            "id": id,
            "object": "model",
            "created": 0,
            "owned_by": "websplat-local",
            "description": description,
        })
    };
    HttpResponse::Ok().json(json!({
        "object": "list",
        "data": [
            model(CHAT_MODEL_ID, CHAT_DESCRIPTION),
            model(EMBEDDING_MODEL_ID, EMBEDDING_DESCRIPTION),
        ],
    }))
}

/// A chat request, checked: the prompt's tokens and how to sample.
struct ChatPlan {
    prompt: Vec<u32>,
    params: GenerationParams,
    stream: bool,
    include_usage: bool,
}

fn plan_chat(chat: &ChatModel, request: ChatCompletionRequest) -> Result<ChatPlan, ApiError> {
    if request.model != CHAT_MODEL_ID {
        if request.model == EMBEDDING_MODEL_ID {
            return Err(ApiError::invalid(
                Some("model"),
                format!(
                    "{EMBEDDING_MODEL_ID:?} is an embedding model; use it with /v1/embeddings, or chat with {CHAT_MODEL_ID:?}."
                ),
            ));
        }
        return Err(ApiError::unknown_model(&request.model, CHAT_MODEL_ID));
    }
    if request.messages.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "messages is empty; send at least one message.",
        ));
    }
    if request.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid(
            Some("n"),
            "The local model gives one choice per request; leave n out or set it to 1.",
        ));
    }
    let temperature = request.temperature.unwrap_or(DEFAULT_TEMPERATURE);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            Some("temperature"),
            "temperature must be between 0 and 2.",
        ));
    }
    let top_p = request.top_p.unwrap_or(DEFAULT_TOP_P);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            Some("top_p"),
            "top_p must be greater than 0 and at most 1.",
        ));
    }
    let stop = match request.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > 4 || stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            Some("stop"),
            "stop takes up to 4 non-empty strings.",
        ));
    }
    if let Some(choice) = &request.tool_choice {
        let forced = choice.as_str() == Some("required") || choice.is_object();
        if forced {
            return Err(ApiError::invalid(
                Some("tool_choice"),
                "The local model cannot call tools; leave tool_choice out or set it to \"auto\" or \"none\".",
            ));
        }
    }
    let mut messages = Vec::with_capacity(request.messages.len());
    for (i, m) in request.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            "tool" => "tool",
            other => {
                return Err(ApiError::invalid(
                    Some("messages"),
                    format!(
                        "messages[{i}].role is {other:?}; use system, developer, user, assistant or tool."
                    ),
                ));
            }
        };
        let content = match m.content {
            Some(Content::Text(text)) => text,
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        (kind, _) => {
                            return Err(ApiError::invalid(
                                Some("messages"),
                                format!(
                                    "messages[{i}] has a {kind:?} part; the local model reads text parts only."
                                ),
                            ));
                        }
                    }
                }
                text
            }
            // An assistant turn that only called tools has no content.
            None if role == "assistant" => String::new(),
            None => {
                return Err(ApiError::invalid(
                    Some("messages"),
                    format!("messages[{i}] has no content."),
                ));
            }
        };
        messages.push(ChatMessage {
            role: role.to_owned(),
            content: chat::sanitize(&content),
        });
    }
    let prompt = chat.encode(&messages).map_err(|e| {
        tracing::error!(error = ?e, "cannot tokenize a prompt");
        ApiError::internal()
    })?;
    let context = chat.context_length();
    if prompt.len() >= context {
        return Err(ApiError::invalid(
            Some("messages"),
            format!(
                "The messages are {} tokens; the local model reads at most {} tokens of prompt and answer together. Send fewer or shorter messages.",
                prompt.len(),
                context
            ),
        )
        .with_code("context_length_exceeded"));
    }
    let room = context - prompt.len();
    let max_tokens = match request.max_completion_tokens.or(request.max_tokens) {
        None => DEFAULT_MAX_TOKENS.min(room),
        Some(n) if n < 1 => {
            return Err(ApiError::invalid(
                Some("max_tokens"),
                "max_tokens must be at least 1.",
            ));
        }
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > room {
                return Err(ApiError::invalid(
                    Some("max_tokens"),
                    format!(
                        "max_tokens is {n}, but the prompt is {} tokens and the local model reads at most {context} in all: ask for at most {room}.",
                        prompt.len()
                    ),
                )
                .with_code("context_length_exceeded"));
            }
            n
        }
    };
    // Any i64 is a seed; without one each request samples differently.
    let seed = request.seed.map_or_else(
        || uuid::Uuid::new_v4().as_u64_pair().0,
        |s| u64::from_ne_bytes(s.to_ne_bytes()),
    );
    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
    Ok(ChatPlan {
        prompt,
        params: GenerationParams {
            max_tokens,
            temperature,
            top_p: Some(top_p),
            seed,
            stop,
        },
        stream: request.stream,
        include_usage,
    })
}

#[tracing::instrument(skip_all, fields(model = %body.model, stream = body.stream))]
async fn chat_completions(
    state: web::Data<State>,
    body: web::Json<ChatCompletionRequest>,
) -> Result<HttpResponse, ApiError> {
    let plan = plan_chat(&state.chat, body.into_inner())?;
    let prompt_tokens = plan.prompt.len();
    metrics().prompt_tokens(prompt_tokens);
    let (events, receiver) = mpsc::channel(64);
    state
        .pool
        .submit_chat(ChatJob {
            prompt: plan.prompt,
            params: plan.params,
            events,
        })
        .map_err(|busy| {
            metrics().refused_busy();
            ApiError::busy(format!("{busy}; try again in a moment."))
        })?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = now();
    if plan.stream {
        let stream = ChatStream {
            events: receiver,
            id,
            created,
            prompt_tokens,
            include_usage: plan.include_usage,
            stage: Stage::Start,
        };
        return Ok(HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .streaming(futures_util::stream::unfold(stream, ChatStream::next)));
    }
    let mut receiver = receiver;
    let mut text = String::new();
    loop {
        match receiver.recv().await {
            Some(ChatEvent::Text(piece)) => text.push_str(&piece),
            Some(ChatEvent::Done(generated)) => {
                let finish = generated.finish_reason.unwrap_or(FinishReason::Stop);
                return Ok(HttpResponse::Ok().json(json!({
                    "id": id,
                    "object": "chat.completion",
                    "created": created,
                    "model": CHAT_MODEL_ID,
                    "system_fingerprint": MODEL_LABEL,
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": null,
                        "finish_reason": finish.as_str(),
                    }],
                    "usage": Usage::new(prompt_tokens, generated.completion_tokens),
                })));
            }
            Some(ChatEvent::Failed(_)) | None => return Err(ApiError::internal()),
        }
    }
}

enum Stage {
    Start,
    Body,
    Finished,
}

/// The SSE answer: a role chunk, one chunk per piece of text, a finish chunk, the usage
/// chunk when asked, then `[DONE]`. A failure ends the stream with an error event and no
/// `[DONE]`, so a client cannot mistake a cut answer for a whole one.
struct ChatStream {
    events: mpsc::Receiver<ChatEvent>,
    id: String,
    created: u64,
    prompt_tokens: usize,
    include_usage: bool,
    stage: Stage,
}

impl ChatStream {
    async fn next(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        let bytes = match self.stage {
            Stage::Finished => return None,
            Stage::Start => {
                self.stage = Stage::Body;
                self.chunk(json!({"role": "assistant", "content": ""}), None)
            }
            Stage::Body => match self.events.recv().await {
                Some(ChatEvent::Text(piece)) => self.chunk(json!({"content": piece}), None),
                Some(ChatEvent::Done(generated)) => {
                    self.stage = Stage::Finished;
                    let finish = generated.finish_reason.unwrap_or(FinishReason::Stop);
                    let mut out = self.chunk(json!({}), Some(finish.as_str()));
                    if self.include_usage {
                        let usage = Usage::new(self.prompt_tokens, generated.completion_tokens);
                        out.push_str(&sse(&json!({
                            "id": self.id,
                            "object": "chat.completion.chunk",
                            "created": self.created,
                            "model": CHAT_MODEL_ID,
                            "system_fingerprint": MODEL_LABEL,
                            "choices": [],
                            "usage": usage,
                        })));
                    }
                    out.push_str("data: [DONE]\n\n");
                    out
                }
                Some(ChatEvent::Failed(_)) | None => {
                    self.stage = Stage::Finished;
                    sse(&ApiError::internal().body())
                }
            },
        };
        Some((Ok(Bytes::from(bytes)), self))
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": CHAT_MODEL_ID,
            "system_fingerprint": MODEL_LABEL,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        sse(&chunk)
    }
}

fn sse(value: &Value) -> String {
    format!("data: {value}\n\n")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads `input` as OpenAI allows it, text only: a string or an array of strings.
fn embedding_texts(input: Value) -> Result<Vec<String>, ApiError> {
    let texts = match input {
        Value::String(s) => vec![s],
        Value::Array(items) => {
            let mut texts = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => texts.push(s),
                    _ => {
                        return Err(ApiError::invalid(
                            Some("input"),
                            "input must be a string or an array of strings; the local model does not take token arrays.",
                        ));
                    }
                }
            }
            texts
        }
        _ => {
            return Err(ApiError::invalid(
                Some("input"),
                "input must be a string or an array of strings.",
            ));
        }
    };
    if texts.is_empty() {
        return Err(ApiError::invalid(
            Some("input"),
            "input is an empty array; send at least one text.",
        ));
    }
    if texts.len() > MAX_EMBEDDING_INPUTS {
        return Err(ApiError::invalid(
            Some("input"),
            format!(
                "input has {} texts; send at most {MAX_EMBEDDING_INPUTS} per request.",
                texts.len()
            ),
        ));
    }
    if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
        return Err(ApiError::invalid(
            Some("input"),
            format!("input[{i}] is empty; every text must have something to embed."),
        ));
    }
    Ok(texts)
}

#[tracing::instrument(skip_all, fields(model = %body.model))]
async fn embeddings(
    state: web::Data<State>,
    body: web::Json<EmbeddingRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    if request.model != EMBEDDING_MODEL_ID {
        if request.model == CHAT_MODEL_ID {
            return Err(ApiError::invalid(
                Some("model"),
                format!("{CHAT_MODEL_ID:?} is a chat model; embed with {EMBEDDING_MODEL_ID:?}."),
            ));
        }
        return Err(ApiError::unknown_model(&request.model, EMBEDDING_MODEL_ID));
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                Some("encoding_format"),
                format!("encoding_format is {other:?}; use \"float\" or \"base64\"."),
            ));
        }
    };
    if request
        .dimensions
        .is_some_and(|d| d != embed::DIMENSIONS as i64)
    {
        return Err(ApiError::invalid(
            Some("dimensions"),
            format!(
                "{EMBEDDING_MODEL_ID} gives {} dimensions; leave dimensions out or set it to {}.",
                embed::DIMENSIONS,
                embed::DIMENSIONS
            ),
        ));
    }
    let texts = embedding_texts(request.input)?;
    let counts = state.embedder.token_counts(&texts).map_err(|e| {
        tracing::error!(error = ?e, "cannot tokenize an embedding input");
        ApiError::internal()
    })?;
    if let Some((i, n)) = counts
        .iter()
        .enumerate()
        .find(|(_, n)| **n > embed::MAX_TOKENS)
    {
        return Err(ApiError::invalid(
            Some("input"),
            format!(
                "input[{i}] is {n} tokens; {EMBEDDING_MODEL_ID} reads at most {}. Split the text into shorter pieces.",
                embed::MAX_TOKENS
            ),
        )
        .with_code("context_length_exceeded"));
    }
    let prompt_tokens: usize = counts.iter().sum();
    metrics().prompt_tokens(prompt_tokens);
    let (reply, answer) = oneshot::channel();
    state
        .pool
        .submit_embed(EmbedJob { texts, reply })
        .map_err(|busy| {
            metrics().refused_busy();
            ApiError::busy(format!("{busy}; try again in a moment."))
        })?;
    let vectors = match answer.await {
        Ok(Ok(vectors)) => vectors,
        Ok(Err(_)) | Err(_) => return Err(ApiError::internal()),
    };
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect::<Vec<_>>();
    Ok(HttpResponse::Ok().json(json!({
        "object": "list",
        "data": data,
        "model": EMBEDDING_MODEL_ID,
        "usage": EmbeddingUsage { prompt_tokens, total_tokens: prompt_tokens },
    })))
}
