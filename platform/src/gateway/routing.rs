//! Routing: which provider and model serve a call, and what happens when one fails.
//!
//! - A model a tenant names is an **alias** (`fast`, `quality`, `embed`, … each an ordered
//!   list of provider/model pairs, limited to some access levels if configured), or, when
//!   `WEBSPLAT_GATEWAY_DIRECT_MODELS` is on, `<provider>/<model>`.
//! - Each target is tried in order. A failure worth retrying (429, 408, 5xx, no connection,
//!   no first byte in time) is retried with exponential backoff, honouring `Retry-After`
//!   when it is short; a long one moves on to the next target at once.
//! - **Fallback happens only before the first byte reaches the client**: a call is committed
//!   when its provider's first body bytes are in hand; a failure after that ends the stream
//!   with an error event ([`super::stream`]), never a silent switch.
//! - A **breaker** per provider (per replica) skips a provider after consecutive failures
//!   for a cooldown, then lets one call try it again.
//!
//! It must never retry a request the provider refused on its merits (a 4xx of its own):
//! that answer goes back to the tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use secrecy::ExposeSecret;

use super::error::GatewayError;
use crate::config::{AiConfig, AliasConfig, ProviderConfig};

/// The longest `Retry-After` the gateway waits for before moving on to the next target.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
const BACKOFF: Duration = Duration::from_millis(100);

/// One provider/model pair to try.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Arc<ProviderConfig>,
    pub model: String,
}

/// What the tenant asked for, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The alias, when the model named one.
    pub alias: Option<String>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct Router {
    providers: Vec<Arc<ProviderConfig>>,
    aliases: Vec<AliasConfig>,
    direct: bool,
    max_attempts: u32,
    first_byte_timeout: Duration,
    threshold: u32,
    cooldown: Duration,
    breakers: Mutex<HashMap<String, BreakerState>>,
}

/// A provider's answer, once its first bytes are in hand.
pub enum Body {
    Full(Bytes),
    Stream {
        first: Bytes,
        rest: BoxStream<'static, reqwest::Result<Bytes>>,
    },
}

pub struct Dispatched {
    pub target: Target,
    pub body: Body,
    /// Time spent waiting on providers (and their backoff), not the gateway's own.
    pub waited: Duration,
}

/// No target answered: the error for the tenant, and the last target tried (for the ledger).
pub struct Failed {
    pub error: GatewayError,
    pub target: Option<Target>,
    pub waited: Duration,
}

/// One attempt's failure.
enum AttemptError {
    /// Worth trying again, after this long if the provider said.
    Retry {
        what: String,
        retry_after: Option<Duration>,
    },
    /// Not worth retrying on this provider (its key is refused, say); the next may serve.
    NextTarget(String),
    /// The request itself was refused: the answer goes back to the tenant.
    Refused { status: u16, message: String },
}

impl Router {
    pub fn new(config: &AiConfig) -> Self {
        Router {
            providers: config.providers.iter().cloned().map(Arc::new).collect(),
            aliases: config.aliases.clone(),
            direct: config.direct_models,
            max_attempts: config.max_attempts,
            first_byte_timeout: config.first_byte_timeout,
            threshold: config.breaker_threshold,
            cooldown: config.breaker_cooldown,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    pub fn providers(&self) -> &[Arc<ProviderConfig>] {
        &self.providers
    }

    /// The model names `level` may use: its aliases, then direct names if allowed.
    pub fn models_for(&self, level: &str) -> Vec<(String, Option<&AliasConfig>)> {
        let mut names: Vec<(String, Option<&AliasConfig>)> = self
            .aliases
            .iter()
            .filter(|a| a.levels.is_empty() || a.levels.iter().any(|l| l == level))
            .map(|a| (a.name.clone(), Some(a)))
            .collect();
        if self.direct {
            for p in &self.providers {
                for m in &p.models {
                    names.push((format!("{}/{m}", p.id), None));
                }
            }
        }
        names
    }

    pub fn aliases(&self) -> &[AliasConfig] {
        &self.aliases
    }

    /// Resolves the model a tenant named, for its access level.
    pub fn resolve(&self, model: &str, level: &str) -> Result<Resolved, GatewayError> {
        if let Some(alias) = self.aliases.iter().find(|a| a.name == model) {
            if !alias.levels.is_empty() && !alias.levels.iter().any(|l| l == level) {
                return Err(GatewayError::Forbidden(format!(
                    "the model {model:?} is not available on your access level ({level}); GET /v1/models lists the ones that are"
                )));
            }
            let targets = alias
                .targets
                .iter()
                .filter_map(|(p, m)| {
                    let provider = self.providers.iter().find(|x| &x.id == p)?.clone();
                    Some(Target {
                        provider,
                        model: m.clone(),
                    })
                })
                .collect();
            return Ok(Resolved {
                alias: Some(alias.name.clone()),
                targets,
            });
        }
        if self.direct
            && let Some((p, m)) = model.split_once('/')
            && let Some(provider) = self.providers.iter().find(|x| x.id == p)
            && provider.models.iter().any(|x| x == m)
        {
            return Ok(Resolved {
                alias: None,
                targets: vec![Target {
                    provider: provider.clone(),
                    model: m.to_owned(),
                }],
            });
        }
        Err(GatewayError::ModelNotFound(format!(
            "there is no model {model:?} for you here; GET /v1/models lists the ones you may use"
        )))
    }

    fn breaker_open(&self, provider: &str) -> bool {
        let Ok(mut breakers) = self.breakers.lock() else {
            return false;
        };
        let state = breakers.entry(provider.to_owned()).or_default();
        match state.open_until {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                // Half-open: let this call try; one more failure opens it again.
                state.open_until = None;
                state.failures = self.threshold.saturating_sub(1);
                false
            }
            None => false,
        }
    }

    fn record(&self, provider: &str, ok: bool) {
        let Ok(mut breakers) = self.breakers.lock() else {
            return;
        };
        let state = breakers.entry(provider.to_owned()).or_default();
        if ok {
            *state = BreakerState::default();
        } else {
            state.failures += 1;
            if state.failures >= self.threshold {
                state.open_until = Some(Instant::now() + self.cooldown);
                tracing::warn!(
                    provider,
                    cooldown_s = self.cooldown.as_secs(),
                    "circuit opened"
                );
            }
        }
    }

    /// Whether the breaker of each provider is open now: `(id, open, consecutive failures)`.
    pub fn health(&self) -> Vec<(String, bool, u32)> {
        let breakers = self.breakers.lock().ok();
        self.providers
            .iter()
            .map(|p| {
                let s = breakers.as_ref().and_then(|b| b.get(&p.id));
                let open = s
                    .and_then(|s| s.open_until)
                    .is_some_and(|u| Instant::now() < u);
                (p.id.clone(), open, s.map(|s| s.failures).unwrap_or(0))
            })
            .collect()
    }

    /// Tries the targets in order until one answers, as described above. `make` builds the
    /// request for a target.
    pub async fn dispatch<F>(
        &self,
        targets: &[Target],
        stream: bool,
        make: F,
    ) -> Result<Dispatched, Failed>
    where
        F: Fn(&Target) -> Result<reqwest::RequestBuilder, GatewayError>,
    {
        let mut waited = Duration::ZERO;
        let mut tried: Vec<String> = Vec::new();
        let mut last = None;
        for target in targets {
            let id = target.provider.id.as_str();
            if self.breaker_open(id) {
                tried.push(format!("{id}: skipped (failing; it is retried shortly)"));
                continue;
            }
            last = Some(target.clone());
            let mut attempt = 0;
            let outcome = loop {
                attempt += 1;
                let request = match make(target) {
                    Ok(r) => r,
                    Err(e) => {
                        return Err(Failed {
                            error: e,
                            target: Some(target.clone()),
                            waited,
                        });
                    }
                };
                let began = Instant::now();
                let result = self.attempt(target, request, stream).await;
                waited += began.elapsed();
                match result {
                    Ok(body) => break Ok(body),
                    Err(AttemptError::Retry { what, retry_after }) => {
                        tracing::warn!(provider = id, attempt, %what, "provider call failed");
                        let pause = match retry_after {
                            Some(d) if d > MAX_RETRY_AFTER => {
                                break Err(format!("{what}; it asked to wait {} s", d.as_secs()));
                            }
                            Some(d) => d,
                            None => BACKOFF * 2u32.pow(attempt.min(6) - 1),
                        };
                        if attempt >= self.max_attempts {
                            break Err(format!("{what} after {attempt} attempts"));
                        }
                        tokio::time::sleep(pause).await;
                        waited += pause;
                    }
                    Err(AttemptError::NextTarget(what)) => break Err(what),
                    Err(AttemptError::Refused { status, message }) => {
                        self.record(id, true);
                        return Err(Failed {
                            error: GatewayError::ProviderRefused {
                                provider: id.to_owned(),
                                status,
                                message: scrub(&message, &target.provider),
                            },
                            target: Some(target.clone()),
                            waited,
                        });
                    }
                }
            };
            match outcome {
                Ok(body) => {
                    self.record(id, true);
                    return Ok(Dispatched {
                        target: target.clone(),
                        body,
                        waited,
                    });
                }
                Err(what) => {
                    self.record(id, false);
                    tried.push(format!("{id}: {what}"));
                }
            }
        }
        let error = if tried.is_empty() {
            GatewayError::Unavailable("no AI provider serves this model")
        } else {
            GatewayError::Upstream(format!(
                "no AI provider could answer ({})",
                tried.join("; ")
            ))
        };
        Err(Failed {
            error,
            target: last,
            waited,
        })
    }

    #[tracing::instrument(skip_all, fields(provider = %target.provider.id, model = %target.model))]
    async fn attempt(
        &self,
        target: &Target,
        request: reqwest::RequestBuilder,
        stream: bool,
    ) -> Result<Body, AttemptError> {
        let deadline = tokio::time::Instant::now() + self.first_byte_timeout;
        let slow = || AttemptError::Retry {
            what: format!("no answer within {} s", self.first_byte_timeout.as_secs()),
            retry_after: None,
        };
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Err(_) => return Err(slow()),
            Ok(Err(e)) => {
                return Err(AttemptError::Retry {
                    what: if e.is_connect() {
                        "cannot connect".to_owned()
                    } else {
                        "the connection failed".to_owned()
                    },
                    retry_after: None,
                });
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = tokio::time::timeout(Duration::from_secs(5), response.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(match status {
                408 | 409 | 429 | 500..=599 => AttemptError::Retry {
                    what: format!("answered {status}"),
                    retry_after,
                },
                401 | 403 => AttemptError::NextTarget(format!(
                    "answered {status} (check its key or credentials)"
                )),
                _ => AttemptError::Refused {
                    status,
                    message: provider_message(&body),
                },
            });
        }
        if stream {
            let mut rest = response.bytes_stream().boxed();
            loop {
                match tokio::time::timeout_at(deadline, rest.next()).await {
                    Err(_) => return Err(slow()),
                    Ok(None) => {
                        return Err(AttemptError::Retry {
                            what: "its stream ended before any data".to_owned(),
                            retry_after: None,
                        });
                    }
                    Ok(Some(Err(_))) => {
                        return Err(AttemptError::Retry {
                            what: "its stream broke before any data".to_owned(),
                            retry_after: None,
                        });
                    }
                    Ok(Some(Ok(first))) if first.is_empty() => continue,
                    Ok(Some(Ok(first))) => return Ok(Body::Stream { first, rest }),
                }
            }
        } else {
            match tokio::time::timeout_at(deadline, response.bytes()).await {
                Err(_) => Err(slow()),
                Ok(Err(_)) => Err(AttemptError::Retry {
                    what: "its answer broke off".to_owned(),
                    retry_after: None,
                }),
                Ok(Ok(body)) => Ok(Body::Full(body)),
            }
        }
    }
}

/// The message of a provider's error body (OpenAI, Anthropic and Gemini all use
/// `{"error":{"message":…}}`), trimmed; never the raw body.
fn provider_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("message"))
                .or_else(|| v.get("error"))
        })
        .and_then(|m| m.as_str())
        .unwrap_or("no reason given");
    message.chars().take(300).collect()
}

/// A provider's words with its key taken out, should it echo it.
fn scrub(message: &str, provider: &ProviderConfig) -> String {
    match &provider.api_key {
        Some(key) if key.expose_secret().len() >= 4 => {
            message.replace(key.expose_secret(), "[redacted]")
        }
        _ => message.to_owned(),
    }
}
