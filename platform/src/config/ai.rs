//! The AI gateway's settings: where its door listens, the model providers
//! (`WEBSPLAT_AI_<ID>_KIND|BASE_URL|API_KEY|CREDENTIALS_FILE|MODELS`, or `[ai.<id>]` in the
//! TOML file), the model aliases and the budget's defaults. Provider keys become
//! `SecretString` here and are never logged; a provider's `Debug` shows no key.
//!
//! With no provider configured, the gateway has one: `local`, an OpenAI-compatible upstream
//! at `WEBSPLAT_AI_LOCAL_BASE_URL` (the `platform models` process), with no key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::settings::{ConfigError, Settings, positive};

/// Where the local model server listens by default (`platform models`).
pub const DEFAULT_LOCAL_BASE_URL: &str = "http://127.0.0.1:8090/v1";
/// The local model server's chat and embeddings models.
pub const LOCAL_CHAT_MODEL: &str = "smollm2-135m-instruct";
pub const LOCAL_EMBEDDINGS_MODEL: &str = "all-minilm-l6-v2";
/// The label of what the `local` provider answers (`x-websplat-model` on the door's
/// answers): a small local model, not a frontier one.
pub const LOCAL_MODEL_LABEL: &str = "local-small";

#[derive(Debug, Clone)]
pub struct AiConfig {
    /// `WEBSPLAT_GATEWAY_LISTEN`: the door's address. Unset: the tenant network's gateway
    /// address (Docker) or loopback (the in-memory engine), on [`AiConfig::port`].
    pub listen: Option<SocketAddr>,
    /// `WEBSPLAT_GATEWAY_PORT` (8181): the door's port when its address is chosen for it.
    pub port: u16,
    pub providers: Vec<ProviderConfig>,
    /// Model aliases: a name tenants ask for, and the provider/model pairs that serve it,
    /// in order of preference.
    pub aliases: Vec<AliasConfig>,
    /// The output cap a call gets when it names none (`max_tokens`), so every call's
    /// reservation is bounded.
    pub default_max_tokens: u32,
    /// How long a provider gets to send its first byte (then its answer may stream on).
    pub first_byte_timeout: Duration,
    /// How long a provider gets to connect.
    pub connect_timeout: Duration,
    /// Attempts per provider for an error worth retrying (429, 5xx, no connection).
    pub max_attempts: u32,
    /// Consecutive failures after which a provider is skipped for [`AiConfig::breaker_cooldown`].
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// The budget's period (a day; `WEBSPLAT_GATEWAY_BUDGET_PERIOD` shortens it for tests).
    pub budget_period: Duration,
    /// Whether tenants may name `<provider>/<model>` directly, beside the aliases.
    pub direct_models: bool,
    /// What one web search, extraction or retrieval call counts against the budget, in tokens.
    pub search_tokens: i64,
}

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI's Chat Completions, and any endpoint compatible with it (the local model).
    OpenAi,
    /// OpenRouter: OpenAI-compatible, with its own `usage.cost`.
    OpenRouter,
    /// Perplexity: OpenAI-compatible chat completions.
    Perplexity,
    /// Ollama through its OpenAI-compatible `/v1`.
    Ollama,
    /// Ollama's native API (`/api/chat` streaming NDJSON, `/api/embed`), translated.
    OllamaNative,
    /// OpenAI's Responses format (`/v1/responses`), translated, for models or endpoints
    /// that serve only it.
    OpenAiResponses,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini (API key).
    Gemini,
    /// Google Vertex AI (service-account credentials).
    Vertex,
    /// Tavily web search and extraction.
    Tavily,
    /// GroundX retrieval (search a bucket or documents, ingest, status).
    GroundX,
}

impl ProviderKind {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "openai" | "openai-compatible" => ProviderKind::OpenAi,
            "openrouter" => ProviderKind::OpenRouter,
            "perplexity" => ProviderKind::Perplexity,
            "ollama" => ProviderKind::Ollama,
            "ollama-native" => ProviderKind::OllamaNative,
            "openai-responses" => ProviderKind::OpenAiResponses,
            "anthropic" => ProviderKind::Anthropic,
            "gemini" => ProviderKind::Gemini,
            "vertex" => ProviderKind::Vertex,
            "tavily" => ProviderKind::Tavily,
            "groundx" => ProviderKind::GroundX,
            _ => return None,
        })
    }

    /// Whether it serves models (and so lists them), rather than search or retrieval.
    pub fn serves_models(self) -> bool {
        !matches!(self, ProviderKind::Tavily | ProviderKind::GroundX)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::Perplexity => "perplexity",
            ProviderKind::Ollama => "ollama",
            ProviderKind::OllamaNative => "ollama-native",
            ProviderKind::OpenAiResponses => "openai-responses",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Vertex => "vertex",
            ProviderKind::Tavily => "tavily",
            ProviderKind::GroundX => "groundx",
        }
    }

    fn default_base_url(self) -> Option<&'static str> {
        Some(match self {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::OpenRouter => "https://openrouter.ai/api/v1",
            ProviderKind::Perplexity => "https://api.perplexity.ai",
            ProviderKind::Ollama => "http://127.0.0.1:11434/v1",
            ProviderKind::OllamaNative => "http://127.0.0.1:11434/api",
            ProviderKind::OpenAiResponses => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com/v1",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com/v1beta",
            ProviderKind::Tavily => "https://api.tavily.com",
            ProviderKind::GroundX => "https://api.groundx.ai/api/v1",
            ProviderKind::Vertex => return None,
        })
    }
}

/// One provider. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct ProviderConfig {
    pub id: String,
    pub kind: ProviderKind,
    /// Where its API lives (without a trailing slash), e.g. `https://api.openai.com/v1`.
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    pub credentials_file: Option<PathBuf>,
    /// The models it serves (named `<provider>/<model>` to tenants).
    pub models: Vec<String>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("credentials_file", &self.credentials_file)
            .field("models", &self.models)
            .finish()
    }
}

impl ProviderConfig {
    /// `{base_url}/{path}`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url.as_str().trim_end_matches('/'))
    }
}

/// A model alias: what tenants ask for, and who serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasConfig {
    pub name: String,
    /// `(provider id, model)`, in order of preference.
    pub targets: Vec<(String, String)>,
    /// The access levels that may use it; empty = every level.
    pub levels: Vec<String>,
}

const FIELDS: [&str; 5] = ["kind", "base_url", "api_key", "credentials_file", "models"];
/// `ai_<word>_…` keys that are not providers.
const RESERVED: [&str; 1] = ["alias"];

pub(super) fn ai(s: &Settings) -> Result<AiConfig, ConfigError> {
    let providers = providers(s)?;
    let aliases = aliases(s, &providers)?;
    Ok(AiConfig {
        listen: match s.raw("gateway_listen") {
            None => None,
            Some(_) => Some(s.parse("gateway_listen", SocketAddr::from(([127, 0, 0, 1], 0)))?),
        },
        port: s.parse("gateway_port", 8181)?,
        providers,
        aliases,
        default_max_tokens: positive(s, "gateway_default_max_tokens", 1024)?,
        first_byte_timeout: s.duration("gateway_first_byte_timeout", Duration::from_secs(60))?,
        connect_timeout: s.duration("gateway_connect_timeout", Duration::from_secs(5))?,
        max_attempts: positive(s, "gateway_max_attempts", 3)?,
        breaker_threshold: positive(s, "gateway_breaker_threshold", 5)?,
        breaker_cooldown: s.duration("gateway_breaker_cooldown", Duration::from_secs(30))?,
        budget_period: s.duration("gateway_budget_period", Duration::from_secs(24 * 3600))?,
        direct_models: s.bool("gateway_direct_models", false)?,
        search_tokens: positive(s, "gateway_search_tokens", 1000)?,
    })
}

fn providers(s: &Settings) -> Result<Vec<ProviderConfig>, ConfigError> {
    let mut ids: Vec<String> = Vec::new();
    for key in s.0.keys() {
        let Some(rest) = key.strip_prefix("ai_") else {
            continue;
        };
        if RESERVED.iter().any(|r| rest.starts_with(&format!("{r}_"))) {
            continue;
        }
        let id = FIELDS
            .iter()
            .find_map(|field| rest.strip_suffix(&format!("_{field}")));
        match id {
            Some(id) if !ids.iter().any(|known| known == id) => ids.push(id.to_owned()),
            Some(_) => {}
            None => {
                return Err(s.invalid(
                    key,
                    "unknown AI setting; expected WEBSPLAT_AI_<ID>_KIND, _BASE_URL, _API_KEY, _CREDENTIALS_FILE or _MODELS, or WEBSPLAT_AI_ALIAS_<NAME>",
                ));
            }
        }
    }
    let configured_kinds = ids
        .iter()
        .any(|id| id != "local" || s.raw(&format!("ai_{id}_kind")).is_some());
    if !configured_kinds && !ids.iter().any(|id| id == "local") {
        ids.push("local".to_owned());
    }
    ids.into_iter().map(|id| provider(s, id)).collect()
}

fn provider(s: &Settings, id: String) -> Result<ProviderConfig, ConfigError> {
    let key = |field: &str| format!("ai_{id}_{field}");
    let valid_id = (1..=32).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !valid_id {
        return Err(s.invalid(
            &key("kind"),
            format!("the provider id {id:?} must be 1 to 32 lowercase letters or digits, starting with a letter"),
        ));
    }
    let kind = match (s.raw(&key("kind")), id.as_str()) {
        (None, "local") => ProviderKind::OpenAi,
        (None, _) => {
            return Err(ConfigError::Missing {
                setting: Settings::env_name(&key("kind")),
                hint: "openai, openai-responses, openrouter, perplexity, ollama, ollama-native, anthropic, gemini, vertex, tavily or groundx",
            });
        }
        (Some(raw), _) => ProviderKind::parse(raw).ok_or_else(|| {
            s.invalid(
                &key("kind"),
                format!("{raw:?} is not openai, openai-responses, openrouter, perplexity, ollama, ollama-native, anthropic, gemini, vertex, tavily or groundx"),
            )
        })?,
    };
    let default_url = if id == "local" {
        Some(DEFAULT_LOCAL_BASE_URL)
    } else {
        kind.default_base_url()
    };
    let raw_url = match (s.raw(&key("base_url")), default_url) {
        (Some(raw), _) => raw,
        (None, Some(default)) => default,
        (None, None) => {
            return Err(ConfigError::Missing {
                setting: Settings::env_name(&key("base_url")),
                hint: "e.g. https://us-central1-aiplatform.googleapis.com/v1/projects/<project>/locations/us-central1/publishers/google",
            });
        }
    };
    let base_url = s.url(&key("base_url"), raw_url)?;
    let api_key = s
        .raw(&key("api_key"))
        .map(|k| SecretString::from(k.to_owned()));
    let credentials_file = s.raw(&key("credentials_file")).map(PathBuf::from);
    let needs_key = matches!(
        kind,
        ProviderKind::Anthropic
            | ProviderKind::Gemini
            | ProviderKind::OpenRouter
            | ProviderKind::Tavily
            | ProviderKind::GroundX
    ) || (matches!(kind, ProviderKind::OpenAi | ProviderKind::OpenAiResponses)
        && id != "local"
        && base_url.host_str() == Some("api.openai.com"));
    if needs_key && api_key.is_none() {
        return Err(ConfigError::Missing {
            setting: Settings::env_name(&key("api_key")),
            hint: "the provider's API key",
        });
    }
    if kind == ProviderKind::Vertex && credentials_file.is_none() {
        return Err(ConfigError::Missing {
            setting: Settings::env_name(&key("credentials_file")),
            hint: "a Google service-account JSON key file",
        });
    }
    let mut models: Vec<String> = s
        .raw(&key("models"))
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    if models.is_empty() && id == "local" {
        models = vec![
            LOCAL_CHAT_MODEL.to_owned(),
            LOCAL_EMBEDDINGS_MODEL.to_owned(),
        ];
    }
    if models.is_empty() && kind.serves_models() {
        return Err(ConfigError::Missing {
            setting: Settings::env_name(&key("models")),
            hint: "the models it serves, comma-separated, e.g. gpt-4o-mini,text-embedding-3-small",
        });
    }
    if let Some(bad) = models
        .iter()
        .find(|m| m.len() > 128 || m.chars().any(|c| c.is_whitespace() || c == ','))
    {
        return Err(s.invalid(&key("models"), format!("{bad:?} is not a model name")));
    }
    Ok(ProviderConfig {
        id,
        kind,
        base_url,
        api_key,
        credentials_file,
        models,
    })
}

/// `WEBSPLAT_AI_ALIAS_<NAME>=provider/model,provider/model[;levels=free,pro]`. Without any,
/// `fast` and `quality` go to the local chat model and `embed` to the local embeddings
/// model, when the `local` provider exists.
fn aliases(s: &Settings, providers: &[ProviderConfig]) -> Result<Vec<AliasConfig>, ConfigError> {
    let mut aliases = Vec::new();
    for (key, _) in s.0.iter() {
        let Some(name) = key.strip_prefix("ai_alias_") else {
            continue;
        };
        let raw = s.raw(key).unwrap_or_default();
        let (targets_raw, levels_raw) = match raw.split_once(';') {
            Some((t, l)) => (t, Some(l)),
            None => (raw, None),
        };
        let levels = match levels_raw.map(str::trim) {
            None => Vec::new(),
            Some(l) => l
                .strip_prefix("levels=")
                .ok_or_else(|| s.invalid(key, "after ';' write levels=<level>,<level>"))?
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        let targets = targets_raw
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                let (provider, model) = t.split_once('/').ok_or_else(|| {
                    s.invalid(key, format!("{t:?} is not <provider>/<model>"))
                })?;
                let Some(p) = providers.iter().find(|p| p.id == provider) else {
                    return Err(s.invalid(key, format!("{provider:?} is not a configured AI provider")));
                };
                if !p.models.iter().any(|m| m == model) {
                    return Err(s.invalid(
                        key,
                        format!("the provider {provider} does not list the model {model:?} (WEBSPLAT_AI_{}_MODELS)", provider.to_ascii_uppercase()),
                    ));
                }
                Ok((provider.to_owned(), model.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err(s.invalid(key, "name at least one <provider>/<model>"));
        }
        aliases.push(AliasConfig {
            name: name.to_owned(),
            targets,
            levels,
        });
    }
    if aliases.is_empty() && providers.iter().any(|p| p.id == "local") {
        let local = |name: &str, model: &str| AliasConfig {
            name: name.to_owned(),
            targets: vec![("local".to_owned(), model.to_owned())],
            levels: Vec::new(),
        };
        aliases = vec![
            local("fast", LOCAL_CHAT_MODEL),
            local("quality", LOCAL_CHAT_MODEL),
            local("embed", LOCAL_EMBEDDINGS_MODEL),
        ];
    }
    Ok(aliases)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn config(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env = vec![
            (
                "WEBSPLAT_DATABASE_URL".to_owned(),
                "postgres://u@h/db".to_owned(),
            ),
            ("WEBSPLAT_REDIS_URL".to_owned(), "redis://h/".to_owned()),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Config::from_sources(None, env)
    }

    #[test]
    fn with_no_provider_the_local_model_serves_the_default_aliases() {
        let c = config(&[]).expect("valid");
        assert_eq!(c.ai.providers.len(), 1);
        assert_eq!(c.ai.providers[0].id, "local");
        assert_eq!(
            c.ai.providers[0].base_url.as_str(),
            "http://127.0.0.1:8090/v1"
        );
        assert!(c.ai.providers[0].api_key.is_none());
        let names: Vec<&str> = c.ai.aliases.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["fast", "quality", "embed"]);
        assert_eq!(c.ai.listen, None);
        assert_eq!(c.ai.port, 8181);
    }

    #[test]
    fn a_provider_comes_from_the_environment_and_its_key_is_never_shown() {
        let c = config(&[
            ("WEBSPLAT_AI_OAI_KIND", "openai"),
            ("WEBSPLAT_AI_OAI_API_KEY", "sk-very-secret"),
            (
                "WEBSPLAT_AI_OAI_MODELS",
                "gpt-4o-mini, text-embedding-3-small",
            ),
            ("WEBSPLAT_AI_ALIAS_FAST", "oai/gpt-4o-mini;levels=pro"),
        ])
        .expect("valid");
        assert_eq!(
            c.ai.providers.len(),
            1,
            "no local provider beside a configured one"
        );
        let p = &c.ai.providers[0];
        assert_eq!(p.kind, ProviderKind::OpenAi);
        assert_eq!(
            p.endpoint("chat/completions"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(p.models, ["gpt-4o-mini", "text-embedding-3-small"]);
        assert!(!format!("{c:?}").contains("sk-very-secret"));
        assert_eq!(c.ai.aliases[0].levels, ["pro"]);
    }

    #[test]
    fn mistakes_are_named() {
        for (env, named) in [
            (
                vec![("WEBSPLAT_AI_X_BASE_URL", "http://h/")],
                "WEBSPLAT_AI_X_KIND",
            ),
            (vec![("WEBSPLAT_AI_X_KIND", "skynet")], "skynet"),
            (
                vec![
                    ("WEBSPLAT_AI_X_KIND", "anthropic"),
                    ("WEBSPLAT_AI_X_MODELS", "c"),
                ],
                "WEBSPLAT_AI_X_API_KEY",
            ),
            (vec![("WEBSPLAT_AI_ALIAS_FAST", "nobody/m")], "nobody"),
            (vec![("WEBSPLAT_AI_ALIAS_FAST", "local/gpt-9")], "gpt-9"),
            (
                vec![("WEBSPLAT_AI_LOCAL_COLOUR", "red")],
                "WEBSPLAT_AI_LOCAL_COLOUR",
            ),
        ] {
            let err = config(&env).expect_err("invalid").to_string();
            assert!(err.contains(named), "{named}: {err}");
        }
    }
}
