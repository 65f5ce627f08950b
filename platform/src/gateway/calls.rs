//! The door's use-cases, callable without HTTP: a chat completion (whole or streamed), an
//! embeddings call and the list of models a caller may use. Each call: validate, resolve
//! the model, reserve the budget, dispatch (retries and fallback), then meter, settle and
//! write the ledger row. The budget is refunded whenever no provider answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Gateway;
use super::budget::{Limit, Refused};
use super::caller::Caller;
use super::error::GatewayError;
use super::ledger::Outcome;
use super::providers;
use super::routing::{Body, Resolved, Target};
use super::stream::{CallRecord, Metered};
use super::usage::{Usage, estimate_chat_input, estimate_embeddings_input};
use crate::telemetry::current_request_id;

/// The largest output cap a call may ask for.
const MAX_OUTPUT_TOKENS: u64 = 1_000_000;

/// What a call answers: the provider that served it, the gateway's own time and where the
/// call's time went.
pub struct Served<T> {
    pub answer: T,
    pub provider: String,
    pub overhead: Duration,
    pub stages: Stages,
}

/// Where a call's time went, sent in the door's `Server-Timing` header (for operators and
/// the benchmark): the gateway's own stages, and the wait on the upstream it leaves out of
/// its overhead.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stages {
    /// Checking the caller's signature (and, when not cached, finding its live tenant).
    pub auth: Duration,
    /// Reading and parsing the request's body.
    pub body: Duration,
    /// Waiting for a Redis connection to reserve the budget.
    pub pool: Duration,
    /// The reservation's round trip to Redis (the Lua script).
    pub redis: Duration,
    /// Waiting on providers until their first bytes (connection, retries, fallbacks).
    pub upstream: Duration,
}

impl Stages {
    pub(super) fn of(record: &CallRecord, upstream: Duration) -> Stages {
        Stages {
            pool: record.reservation.pool_wait,
            redis: record.reservation.round_trip,
            upstream,
            ..Stages::default()
        }
    }
}

pub enum ChatAnswer {
    Whole(Value),
    Stream(Box<Metered>),
}

fn model_of(body: &Value) -> Result<&str, GatewayError> {
    match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() && m.len() <= 200 => Ok(m),
        Some(_) => Err(GatewayError::invalid(
            "model",
            "model must be a model name (a string); GET /v1/models lists them",
        )),
        None => Err(GatewayError::invalid(
            "model",
            "name a model (e.g. \"fast\"); GET /v1/models lists them",
        )),
    }
}

fn in_words(d: Duration) -> String {
    let (hours, minutes, seconds) = (
        d.as_secs() / 3600,
        (d.as_secs() % 3600) / 60,
        d.as_secs() % 60,
    );
    if hours > 0 {
        format!("{hours} h {minutes} min")
    } else if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{seconds} s")
    }
}

/// The 429 for a refused reservation, in a sentence the workspace shows as it is.
fn over_budget(r: Refused, wanted: i64, caller: &Caller) -> GatewayError {
    let level = &caller.access_level;
    let wait = in_words(r.renews_in);
    let message = match r.limit_hit {
        Limit::Budget if r.limit == 0 => {
            "Your access level includes no AI use. Ask an administrator for a level with an AI budget."
                .to_owned()
        }
        Limit::Budget => format!(
            "Your AI budget is used up for now: {} of {} tokens spent or in use, and this request may need up to {wanted}. It renews in {wait}.",
            r.used.min(r.limit),
            r.limit
        ),
        Limit::Calls => format!(
            "You are sending AI requests too fast: your access level ({level}) allows {} a minute. Try again in {wait}.",
            r.limit
        ),
        Limit::Tokens if wanted > r.limit => format!(
            "This AI request may need up to {wanted} tokens, more than your access level ({level}) allows in a minute ({}). Ask for fewer (max_tokens) or send less.",
            r.limit
        ),
        Limit::Tokens => format!(
            "You are using AI tokens too fast: your access level ({level}) allows {} a minute and this request may need up to {wanted}. Try again in {wait}.",
            r.limit
        ),
    };
    GatewayError::OverBudget {
        message,
        retry_after: r.renews_in,
    }
}

struct Begun {
    record: CallRecord,
}

/// Reserves the budget and opens the record of a call (for the search calls).
pub(super) async fn begin_record(
    gw: &Gateway,
    caller: &Caller,
    endpoint: &'static str,
    resolved: &Resolved,
    estimated_input: i64,
    reserve: i64,
    streamed: bool,
) -> Result<CallRecord, GatewayError> {
    begin(
        gw,
        caller,
        endpoint,
        resolved,
        estimated_input,
        reserve,
        streamed,
    )
    .await
    .map(|b| b.record)
}

/// Reserves the budget and opens the call's record.
async fn begin(
    gw: &Gateway,
    caller: &Caller,
    endpoint: &'static str,
    resolved: &Resolved,
    estimated_input: i64,
    reserve: i64,
    streamed: bool,
) -> Result<Begun, GatewayError> {
    let started = Instant::now();
    let reservation = gw
        .budget
        .reserve(caller, reserve)
        .await?
        .map_err(|r| over_budget(r, reserve, caller))?;
    let first = resolved.targets.first();
    Ok(Begun {
        record: CallRecord {
            user: caller.user,
            endpoint,
            provider: first.map(|t| t.provider.id.clone()).unwrap_or_default(),
            kind: first.map(|t| t.provider.kind.as_str()).unwrap_or("none"),
            model: first.map(|t| t.model.clone()).unwrap_or_default(),
            alias: resolved.alias.clone(),
            streamed,
            reservation,
            estimated_input,
            started,
            started_at: chrono::Utc::now(),
            request_id: current_request_id(),
        },
    })
}

fn served_by(record: &mut CallRecord, target: &Target) {
    record.provider = target.provider.id.clone();
    record.kind = target.provider.kind.as_str();
    record.model = target.model.clone();
}

/// `POST /v1/chat/completions`, calling providers with `client` (the door worker's own,
/// [`Gateway::worker_client`]); `entered` is when the call reached the door (its overhead
/// counts from there).
#[tracing::instrument(skip_all, fields(user = %caller.user))]
pub async fn chat(
    gw: &Arc<Gateway>,
    client: &reqwest::Client,
    caller: &Caller,
    mut body: Value,
    entered: Instant,
) -> Result<Served<ChatAnswer>, GatewayError> {
    if !body.is_object() {
        return Err(GatewayError::BadRequest(
            "send a JSON object: {\"model\": …, \"messages\": […]}".to_owned(),
        ));
    }
    let model = model_of(&body)?.to_owned();
    match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => {}
        _ => {
            return Err(GatewayError::invalid(
                "messages",
                "messages must be a non-empty array of {role, content}",
            ));
        }
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(GatewayError::invalid(
                "stream",
                "stream must be true or false",
            ));
        }
    };
    // Every call has an output cap, so its reservation bounds what it can spend.
    let cap_key = if body.get("max_completion_tokens").is_some() {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let max_output = match body.get(cap_key) {
        None | Some(Value::Null) => {
            let cap = u64::from(gw.config.default_max_tokens);
            body[cap_key] = json!(cap);
            cap
        }
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_OUTPUT_TOKENS).contains(n))
            .ok_or_else(|| {
                GatewayError::invalid(
                    "max_tokens",
                    format!("{cap_key} must be a whole number from 1 to {MAX_OUTPUT_TOKENS}"),
                )
            })?,
    };
    let resolved = gw.routing.resolve(&model, &caller.access_level)?;
    let estimated_input = estimate_chat_input(&body);
    let reserve = estimated_input + max_output as i64;
    let Begun { mut record } = begin(
        gw,
        caller,
        "chat",
        &resolved,
        estimated_input,
        reserve,
        stream,
    )
    .await?;
    let tokens = providers::tokens(gw, &resolved.targets).await;
    let dispatched = gw
        .routing
        .dispatch(&resolved.targets, stream, |t| {
            providers::chat_request(client, &t.provider, &t.model, &body, stream, &tokens)
        })
        .await;
    let dispatched = match dispatched {
        Ok(d) => d,
        Err(failed) => {
            if let Some(t) = &failed.target {
                served_by(&mut record, t);
            }
            return Err(record.close_failed(gw, failed.error).await);
        }
    };
    served_by(&mut record, &dispatched.target);
    let provider = dispatched.target.provider.id.clone();
    match dispatched.body {
        Body::Stream { first, rest } => {
            let overhead = entered.elapsed().saturating_sub(dispatched.waited);
            gw.metrics.overhead("chat", overhead);
            let stages = Stages::of(&record, dispatched.waited);
            let translate = providers::translator(&dispatched.target.provider);
            Ok(Served {
                answer: ChatAnswer::Stream(Box::new(Metered::new(
                    gw.clone(),
                    first,
                    rest,
                    translate,
                    record,
                ))),
                provider,
                overhead,
                stages,
            })
        }
        Body::Full(bytes) => {
            let parsed = serde_json::from_slice::<Value>(&bytes)
                .map_err(|_| "its answer is not JSON".to_owned())
                .and_then(|v| providers::chat_answer(&dispatched.target.provider, v));
            match parsed {
                Ok((answer, usage)) => {
                    let usage = usage.unwrap_or_else(|| {
                        let text = answer
                            .pointer("/choices/0/message")
                            .map(|m| m.to_string().len())
                            .unwrap_or(0);
                        record.estimate(text)
                    });
                    let overhead = entered.elapsed().saturating_sub(dispatched.waited);
                    gw.metrics.overhead("chat", overhead);
                    let stages = Stages::of(&record, dispatched.waited);
                    // The ledger is written before the answer goes: what was served is paid for.
                    record.close(gw, Outcome::Ok, usage, None).await;
                    Ok(Served {
                        answer: ChatAnswer::Whole(answer),
                        provider,
                        overhead,
                        stages,
                    })
                }
                Err(why) => {
                    let error = GatewayError::Upstream(format!(
                        "the AI provider {provider} gave an unreadable answer ({why})"
                    ));
                    record
                        .close(
                            gw,
                            Outcome::ProviderError,
                            Usage::default(),
                            Some(error.to_string()),
                        )
                        .await;
                    Err(error)
                }
            }
        }
    }
}

/// `POST /v1/embeddings` (`client` and `entered`: as for [`chat`]).
#[tracing::instrument(skip_all, fields(user = %caller.user))]
pub async fn embeddings(
    gw: &Arc<Gateway>,
    client: &reqwest::Client,
    caller: &Caller,
    body: Value,
    entered: Instant,
) -> Result<Served<Value>, GatewayError> {
    if !body.is_object() {
        return Err(GatewayError::BadRequest(
            "send a JSON object: {\"model\": …, \"input\": …}".to_owned(),
        ));
    }
    let model = model_of(&body)?.to_owned();
    match body.get("input") {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= 2048 => {}
        _ => {
            return Err(GatewayError::invalid(
                "input",
                "input must be a non-empty string or an array of at most 2048 strings",
            ));
        }
    }
    let resolved = gw.routing.resolve(&model, &caller.access_level)?;
    let estimated_input = estimate_embeddings_input(&body);
    let Begun { mut record } = begin(
        gw,
        caller,
        "embeddings",
        &resolved,
        estimated_input,
        estimated_input,
        false,
    )
    .await?;
    let dispatched = gw
        .routing
        .dispatch(&resolved.targets, false, |t| {
            providers::embeddings_request(client, &t.provider, &t.model, &body)
        })
        .await;
    let dispatched = match dispatched {
        Ok(d) => d,
        Err(failed) => {
            if let Some(t) = &failed.target {
                served_by(&mut record, t);
            }
            record
                .close(
                    gw,
                    Outcome::ProviderError,
                    Usage::default(),
                    Some(failed.error.to_string()),
                )
                .await;
            return Err(failed.error);
        }
    };
    served_by(&mut record, &dispatched.target);
    let provider = dispatched.target.provider.id.clone();
    let Body::Full(bytes) = dispatched.body else {
        return Err(GatewayError::Internal(anyhow::anyhow!(
            "embeddings answered as a stream"
        )));
    };
    let parsed = serde_json::from_slice::<Value>(&bytes)
        .map_err(|_| "its answer is not JSON".to_owned())
        .and_then(|v| providers::embeddings_answer(&dispatched.target.provider, v));
    let Ok((answer, usage)) = parsed else {
        let error = GatewayError::Upstream(format!(
            "the AI provider {provider} gave an unreadable answer"
        ));
        record
            .close(
                gw,
                Outcome::ProviderError,
                Usage::default(),
                Some(error.to_string()),
            )
            .await;
        return Err(error);
    };
    let usage = usage.unwrap_or_else(|| record.estimate(0));
    let overhead = entered.elapsed().saturating_sub(dispatched.waited);
    gw.metrics.overhead("embeddings", overhead);
    let stages = Stages::of(&record, dispatched.waited);
    record.close(gw, Outcome::Ok, usage, None).await;
    Ok(Served {
        answer,
        provider,
        overhead,
        stages,
    })
}

/// `GET /v1/models`: what the caller's access level may use, in OpenAI's list shape.
pub fn models(gw: &Gateway, caller: &Caller) -> Value {
    let data: Vec<Value> = gw
        .routing
        .models_for(&caller.access_level)
        .into_iter()
        .map(|(id, alias)| {
            let mut m = json!({"id": id, "object": "model", "created": 0, "owned_by": "websplat"});
            if let Some(alias) = alias {
                m["targets"] = json!(
                    alias
                        .targets
                        .iter()
                        .map(|(p, m)| format!("{p}/{m}"))
                        .collect::<Vec<_>>()
                );
            }
            m
        })
        .collect();
    json!({"object": "list", "data": data})
}
