//! Web search and retrieval behind the same door: Tavily (`/search`, `/extract`) and GroundX
//! (search a bucket or documents, ingest a remote document, its processing status). Bodies
//! pass through as the tenant sent them; the platform adds the key. Each call counts a
//! fixed number of tokens (`WEBSPLAT_GATEWAY_SEARCH_TOKENS`) against the same budget as the
//! models, is retried like them, and gets its ledger row. Web search and extraction need the
//! access level's `web_search` feature.

use std::sync::Arc;
use std::time::Instant;

use secrecy::ExposeSecret;
use serde_json::Value;

use super::Gateway;
use super::caller::Caller;
use super::calls::Served;
use super::error::GatewayError;
use super::ledger::Outcome;
use super::routing::{Body, Resolved, Target};
use super::usage::Usage;
use crate::config::ProviderKind;

/// One operation of a search or retrieval provider.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Tavily `POST /search`.
    WebSearch,
    /// Tavily `POST /extract`.
    Extract,
    /// GroundX `POST /search/{id}` (a bucket, a group or a document).
    Retrieve { id: String },
    /// GroundX `POST /ingest/documents/remote`.
    Ingest,
    /// GroundX `GET /ingest/{process id}`.
    Status { process: String },
}

impl Operation {
    fn kind(&self) -> ProviderKind {
        match self {
            Operation::WebSearch | Operation::Extract => ProviderKind::Tavily,
            _ => ProviderKind::GroundX,
        }
    }

    /// The ledger's name for it (also its price row's model).
    fn name(&self) -> &'static str {
        match self {
            Operation::WebSearch => "search",
            Operation::Extract => "extract",
            Operation::Retrieve { .. } => "retrieve",
            Operation::Ingest => "ingest",
            Operation::Status { .. } => "status",
        }
    }

    fn path(&self) -> String {
        match self {
            Operation::WebSearch => "search".to_owned(),
            Operation::Extract => "extract".to_owned(),
            Operation::Retrieve { id } => format!("search/{id}"),
            Operation::Ingest => "ingest/documents/remote".to_owned(),
            Operation::Status { process } => format!("ingest/{process}"),
        }
    }
}

/// An id a tenant puts in a provider's path: letters, digits, `-` and `_` only.
pub fn path_id(field: &'static str, raw: &str) -> Result<String, GatewayError> {
    let ok = (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(GatewayError::invalid(
            field,
            format!("{field} must be 1 to 128 letters, digits, '-' or '_'"),
        ))
    }
}

#[tracing::instrument(skip_all, fields(user = %caller.user, operation = op.name()))]
pub async fn call(
    gw: &Arc<Gateway>,
    client: &reqwest::Client,
    caller: &Caller,
    op: Operation,
    body: Option<Value>,
) -> Result<Served<Value>, GatewayError> {
    let entered = Instant::now();
    if op.kind() == ProviderKind::Tavily && !caller.features.iter().any(|f| f == "web_search") {
        return Err(GatewayError::Forbidden(format!(
            "web search is not part of your access level ({}); ask an administrator for one with web_search",
            caller.access_level
        )));
    }
    if let Some(b) = &body
        && !b.is_object()
    {
        return Err(GatewayError::BadRequest("send a JSON object".to_owned()));
    }
    let Some(provider) = gw
        .routing
        .providers()
        .iter()
        .find(|p| p.kind == op.kind())
        .cloned()
    else {
        return Err(GatewayError::Unavailable(match op.kind() {
            ProviderKind::Tavily => "web search (no Tavily provider is configured)",
            _ => "retrieval (no GroundX provider is configured)",
        }));
    };
    let resolved = Resolved {
        alias: None,
        targets: vec![Target {
            provider,
            model: op.name().to_owned(),
        }],
    };
    let tokens = gw.config.search_tokens;
    let mut record =
        super::calls::begin_record(gw, caller, op.name(), &resolved, tokens, tokens, false).await?;
    let get = matches!(op, Operation::Status { .. });
    let dispatched = gw
        .routing
        .dispatch(&resolved.targets, false, |t| {
            let url = t.provider.endpoint(&op.path());
            let mut request = if get {
                client.get(url)
            } else {
                client.post(url).json(body.as_ref().unwrap_or(&Value::Null))
            };
            if let Some(key) = &t.provider.api_key {
                request = match t.provider.kind {
                    ProviderKind::GroundX => request.header("X-API-Key", key.expose_secret()),
                    _ => request.bearer_auth(key.expose_secret()),
                };
            }
            Ok(request)
        })
        .await;
    let dispatched = match dispatched {
        Ok(d) => d,
        Err(failed) => return Err(record.close_failed(gw, failed.error).await),
    };
    let provider = dispatched.target.provider.id.clone();
    let Body::Full(bytes) = dispatched.body else {
        return Err(GatewayError::Internal(anyhow::anyhow!(
            "a search answered as a stream"
        )));
    };
    let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
        let error =
            GatewayError::Upstream(format!("the provider {provider} gave an unreadable answer"));
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
    let overhead = entered.elapsed().saturating_sub(dispatched.waited);
    gw.metrics.overhead(op.name(), overhead);
    let stages = super::calls::Stages::of(&record, dispatched.waited);
    record.streamed = false;
    record
        .close(
            gw,
            Outcome::Ok,
            Usage {
                input: tokens,
                ..Usage::default()
            },
            None,
        )
        .await;
    Ok(Served {
        answer,
        provider,
        overhead,
        stages,
    })
}
