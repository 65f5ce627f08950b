//! One dispatch on a provider's kind: how to ask it for a chat completion or embeddings,
//! and how to read its answer and its stream, each in OpenAI's shapes for the tenant.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::error::GatewayError;
use super::routing::Target;
use super::stream::Translate;
use super::usage::Usage;
use super::{Gateway, anthropic, gemini, ollama, openai, responses};
use crate::config::{ProviderConfig, ProviderKind};

/// Access tokens of the token-based providers among `targets` (Vertex), fetched before
/// the call so building its requests needs no wait. A provider whose token cannot be had
/// is left out; its request then fails and the next target serves.
pub async fn tokens(gw: &Gateway, targets: &[Target]) -> HashMap<String, SecretString> {
    let mut out = HashMap::new();
    for t in targets {
        if t.provider.kind == ProviderKind::Vertex && !out.contains_key(&t.provider.id) {
            match gw.vertex.token(&gw.client, &t.provider).await {
                Ok(token) => {
                    out.insert(t.provider.id.clone(), token);
                }
                Err(e) => {
                    tracing::warn!(provider = %t.provider.id, error = %e, "no Vertex AI token")
                }
            }
        }
    }
    out
}

pub fn chat_request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
    stream: bool,
    tokens: &HashMap<String, SecretString>,
) -> Result<reqwest::RequestBuilder, GatewayError> {
    match provider.kind {
        ProviderKind::OpenAi
        | ProviderKind::OpenRouter
        | ProviderKind::Perplexity
        | ProviderKind::Ollama => Ok(openai::chat_request(client, provider, model, body, stream)),
        ProviderKind::OllamaNative => ollama::chat_request(client, provider, model, body, stream),
        ProviderKind::OpenAiResponses => {
            responses::chat_request(client, provider, model, body, stream)
        }
        ProviderKind::Anthropic => anthropic::chat_request(client, provider, model, body, stream),
        ProviderKind::Gemini => gemini::chat_request(client, provider, model, body, stream, None),
        ProviderKind::Vertex => {
            let token = tokens
                .get(&provider.id)
                .map(|t| t.expose_secret().to_owned());
            gemini::chat_request(client, provider, model, body, stream, token.as_deref())
        }
        ProviderKind::Tavily | ProviderKind::GroundX => Err(GatewayError::BadRequest(format!(
            "{} is a search provider, not a model",
            provider.id
        ))),
    }
}

pub fn embeddings_request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
) -> Result<reqwest::RequestBuilder, GatewayError> {
    match provider.kind {
        ProviderKind::OpenAi | ProviderKind::OpenRouter | ProviderKind::Ollama => {
            Ok(openai::embeddings_request(client, provider, model, body))
        }
        ProviderKind::OllamaNative => Ok(ollama::embeddings_request(client, provider, model, body)),
        other => Err(GatewayError::BadRequest(format!(
            "the {} provider behind this model has no OpenAI-compatible embeddings; use an alias served by an OpenAI-compatible provider (e.g. embed)",
            other.as_str()
        ))),
    }
}

/// A complete chat answer in OpenAI's shape, with its usage when the provider gave it.
pub fn chat_answer(
    provider: &ProviderConfig,
    body: Value,
) -> Result<(Value, Option<Usage>), String> {
    match provider.kind {
        ProviderKind::Anthropic => anthropic::answer(body),
        ProviderKind::Gemini | ProviderKind::Vertex => gemini::answer(body),
        ProviderKind::OllamaNative => ollama::answer(body),
        ProviderKind::OpenAiResponses => responses::answer(body),
        _ => openai::answer(body),
    }
}

/// A complete embeddings answer in OpenAI's shape, with its usage when the provider gave it.
pub fn embeddings_answer(
    provider: &ProviderConfig,
    body: Value,
) -> Result<(Value, Option<Usage>), String> {
    match provider.kind {
        ProviderKind::OllamaNative => ollama::embeddings_answer(body),
        _ if body.is_object() => {
            let usage = body.get("usage").and_then(Usage::from_openai);
            Ok((body, usage))
        }
        _ => Err("its answer is not a JSON object".to_owned()),
    }
}

pub fn translator(provider: &ProviderConfig) -> Box<dyn Translate> {
    match provider.kind {
        ProviderKind::Anthropic => Box::new(anthropic::StreamTranslator::default()),
        ProviderKind::Gemini | ProviderKind::Vertex => {
            Box::new(gemini::StreamTranslator::default())
        }
        ProviderKind::OllamaNative => Box::new(ollama::StreamTranslator::default()),
        ProviderKind::OpenAiResponses => Box::new(responses::StreamTranslator::default()),
        _ => Box::new(openai::PassThrough::default()),
    }
}
