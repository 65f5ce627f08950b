//! Configuration, layered: built-in defaults, then an optional TOML file, then `WEBSPLAT_*`
//! environment variables. Everything is parsed into typed structs at start-up, and a bad or
//! missing setting stops start-up with an error naming the setting and where it came from.
//!
//! Both layers are flattened into one map of `snake_case` keys: the TOML table
//! `[oidc.corp] issuer = "…"` and the variable `WEBSPLAT_OIDC_CORP_ISSUER` both set the key
//! `oidc_corp_issuer`. This module must never log a secret: secrets become `SecretString`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

const ENV_PREFIX: &str = "WEBSPLAT_";

/// A setting that could not be used, named as the operator wrote it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting} is required but not set ({hint})")]
    Missing { setting: String, hint: &'static str },
    #[error("{setting} (from {origin}) is invalid: {reason}")]
    Invalid {
        setting: String,
        origin: Source,
        reason: String,
    },
    #[error("cannot read the configuration file {path}: {reason}")]
    File { path: String, reason: String },
}

/// Where a setting's value came from, so errors can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(String),
    Environment,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "the file {path}"),
            Source::Environment => f.write_str("the environment"),
        }
    }
}

#[derive(Debug, Clone)]
struct Value {
    raw: String,
    source: Source,
}

/// The flattened layers, before parsing.
#[derive(Debug, Default)]
struct Settings(BTreeMap<String, Value>);

impl Settings {
    fn env_name(key: &str) -> String {
        format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        let source = self
            .0
            .get(key)
            .map(|v| v.source.clone())
            .unwrap_or(Source::Environment);
        ConfigError::Invalid {
            setting: Self::env_name(key),
            origin: source,
            reason: reason.into(),
        }
    }

    fn raw(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|v| v.raw.trim())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, key: &str, hint: &'static str) -> Result<&str, ConfigError> {
        self.raw(key).ok_or_else(|| ConfigError::Missing {
            setting: Self::env_name(key),
            hint,
        })
    }

    fn parse<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(key) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e: T::Err| self.invalid(key, format!("{raw:?}: {e}"))),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(self.invalid(key, format!("{other:?} is not true or false"))),
        }
    }

    fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some(raw) => {
                let d = humantime::parse_duration(raw).map_err(|e| {
                    self.invalid(
                        key,
                        format!("{raw:?}: {e} (write e.g. \"90s\", \"12h\", \"30d\")"),
                    )
                })?;
                if d.is_zero() {
                    return Err(self.invalid(key, "must be longer than zero"));
                }
                Ok(d)
            }
        }
    }

    fn url(&self, key: &str, raw: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(raw).map_err(|e| self.invalid(key, format!("{raw:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.invalid(key, "must be an http:// or https:// URL"));
        }
        Ok(url)
    }
}

/// The whole configuration of a platform process.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: PublicUrl,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub session: SessionConfig,
    pub local_accounts: LocalAccountsConfig,
    pub rate_limits: RateLimitConfig,
    pub oidc: Vec<OidcProviderConfig>,
    pub github: Option<GithubConfig>,
    pub log: LogConfig,
    pub authz: AuthzConfig,
    pub tenants: TenantsConfig,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

/// The externally visible base URL: origin only, no path.
#[derive(Debug, Clone)]
pub struct PublicUrl(Url);

impl PublicUrl {
    pub fn url(&self) -> &Url {
        &self.0
    }
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
    /// `scheme://host[:port]`, as browsers send it in `Origin`.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }
    /// An absolute URL for a path on this platform.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.origin(), path)
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub pool_size: usize,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: SecretString,
    /// Prepended to every key, so several deployments (or tests) can share one Redis.
    pub key_prefix: String,
    pub pool_size: usize,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// A session unused for this long ends (sliding expiry).
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub max_lifetime: Duration,
}

#[derive(Debug, Clone)]
pub struct LocalAccountsConfig {
    pub enabled: bool,
    pub registration_open: bool,
}

#[derive(Debug, Clone)]
pub struct AuthzConfig {
    /// The access level new users get.
    pub default_access_level: String,
    /// `(provider, subject)` of identities that become admin when their account is created.
    pub bootstrap_admins: Vec<(String, String)>,
    /// How often each replica reloads the policy even without a change announced on Redis.
    pub policy_reload_interval: Duration,
}

/// Tenant runtimes: the image, where workspaces are served, how containers are sized and
/// limited, and the reverse proxy's limits. See README.md, "Workspaces".
#[derive(Debug, Clone)]
pub struct TenantsConfig {
    /// What runs the tenant containers (`WEBSPLAT_ORCHESTRATOR`).
    pub orchestrator: OrchestratorKind,
    /// The tenant image (built locally by `docker/build-tenant-image.sh`).
    pub image: String,
    /// Workspaces are served at `{slug}.{workspace_domain}` on the platform's port.
    pub workspace_domain: String,
    /// Names this deployment's containers and volumes (label `websplat.deployment`), so
    /// deployments sharing one Docker Engine never touch each other's.
    pub deployment: String,
    /// The internal bridge network every tenant joins (no internet, no tenant-to-tenant).
    pub network: String,
    /// Start the user's workspace when they sign in.
    pub start_on_sign_in: bool,
    /// How long a new runtime has to answer `/healthz` before it counts as failed.
    pub ready_timeout: Duration,
    /// Running (and starting) tenants at most, over all users.
    pub max_running: u32,
    /// Running tenants at most per access level (`free:20,pro:50`); absent = no own cap.
    pub max_running_per_level: Vec<(String, u32)>,
    /// Spawns in progress at most, over every replica.
    pub max_concurrent_spawns: u32,
    /// Processes (threads) a tenant may have.
    pub pids_limit: i64,
    /// Size of each tenant's `/tmp` (tmpfs), in MiB.
    pub tmp_mib: u32,
    /// Largest request body the proxy passes to a tenant.
    pub proxy_max_body: u64,
    /// How long the proxy waits to connect to a tenant.
    pub proxy_connect_timeout: Duration,
    /// A proxied exchange with no bytes either way for this long is cut.
    pub proxy_idle_timeout: Duration,
    /// How often the reconciler compares Docker with PostgreSQL (also at start-up).
    pub reconcile_interval: Duration,
    /// How often idle workspaces are looked for.
    pub idle_check_interval: Duration,
}

/// The engine tenant containers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrchestratorKind {
    /// The machine's Docker Engine (the default; what serves users).
    Docker,
    /// An engine inside the platform's process that runs no code of the tenants': for tests
    /// and development only, never for serving users.
    Memory,
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// API reads (GET) per minute from one address, whoever signs in there.
    pub api_reads_per_ip: u32,
    /// API writes per minute from one address.
    pub api_writes_per_ip: u32,
    pub window: Duration,
    /// Sign-in attempts per client address per window.
    pub per_ip: u32,
    /// Sign-in attempts per account (e-mail) per window.
    pub per_account: u32,
}

#[derive(Debug, Clone)]
pub struct OidcProviderConfig {
    pub id: String,
    pub display_name: String,
    /// Exactly as configured: it must equal the `iss` the provider puts in its tokens.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

#[derive(Debug, Clone)]
pub struct GithubConfig {
    pub display_name: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub authorize_url: Url,
    pub token_url: Url,
    pub api_url: Url,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info,platform=debug`.
    pub filter: String,
}

/// Provider ids that name built-in sign-in methods and so cannot be used for OIDC.
const RESERVED_PROVIDER_IDS: [&str; 2] = ["local", "github"];
const OIDC_FIELDS: [&str; 4] = ["issuer", "client_id", "client_secret", "display_name"];

impl Config {
    /// Loads the configuration of this process: the file named by `file` (if any), then
    /// the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(file, std::env::vars())
    }

    /// Loads from an explicit environment, so tests never touch the process environment.
    pub fn from_sources(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut settings = Settings::default();
        if let Some(path) = file {
            read_file(path, &mut settings)?;
        }
        for (name, raw) in env {
            if let Some(key) = name.strip_prefix(ENV_PREFIX) {
                settings.0.insert(
                    key.to_ascii_lowercase(),
                    Value {
                        raw,
                        source: Source::Environment,
                    },
                );
            }
        }
        Self::from_settings(&settings)
    }

    fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let listen = s.parse("listen", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        let public_url = {
            let raw = s
                .raw("public_url")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("http://localhost:{}", listen.port()));
            let url = s.url("public_url", &raw)?;
            if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
                return Err(s.invalid(
                    "public_url",
                    "must be an origin only (scheme, host and port), without a path",
                ));
            }
            PublicUrl(url)
        };

        let database = DatabaseConfig {
            url: SecretString::from(
                s.required(
                    "database_url",
                    "e.g. postgres://user:password@127.0.0.1:5432/websplat",
                )?
                .to_owned(),
            ),
            pool_size: positive(s, "database_pool_size", 16)?,
        };
        let redis = RedisConfig {
            url: SecretString::from(
                s.required("redis_url", "e.g. redis://127.0.0.1:6379/")?
                    .to_owned(),
            ),
            key_prefix: s.raw("redis_key_prefix").unwrap_or("websplat:").to_owned(),
            pool_size: positive(s, "redis_pool_size", 32)?,
        };
        let session = SessionConfig {
            idle_timeout: s.duration("session_idle_timeout", Duration::from_secs(24 * 3600))?,
            max_lifetime: s
                .duration("session_max_lifetime", Duration::from_secs(30 * 24 * 3600))?,
        };
        if session.idle_timeout > session.max_lifetime {
            return Err(s.invalid(
                "session_idle_timeout",
                "must not be longer than WEBSPLAT_SESSION_MAX_LIFETIME",
            ));
        }
        let local_accounts = LocalAccountsConfig {
            enabled: s.bool("local_accounts_enabled", true)?,
            registration_open: s.bool("registration_enabled", true)?,
        };
        let rate_limits = RateLimitConfig {
            api_reads_per_ip: positive(s, "rate_limit_api_reads_per_ip", 6000)?,
            api_writes_per_ip: positive(s, "rate_limit_api_writes_per_ip", 1200)?,
            window: s.duration("rate_limit_window", Duration::from_secs(15 * 60))?,
            per_ip: positive(s, "rate_limit_per_ip", 100)?,
            per_account: positive(s, "rate_limit_per_account", 10)?,
        };
        let log = LogConfig {
            format: match s.raw("log_format").unwrap_or("pretty") {
                "pretty" => LogFormat::Pretty,
                "json" => LogFormat::Json,
                other => {
                    return Err(s.invalid("log_format", format!("{other:?} is not pretty or json")));
                }
            },
            filter: s.raw("log").unwrap_or("info").to_owned(),
        };

        Ok(Config {
            listen,
            public_url,
            database,
            redis,
            session,
            local_accounts,
            rate_limits,
            oidc: oidc_providers(s)?,
            github: github(s)?,
            log,
            authz: authz(s)?,
            tenants: tenants(s)?,
            trust_forwarded_for: s.bool("trust_forwarded_for", false)?,
        })
    }
}

fn authz(s: &Settings) -> Result<AuthzConfig, ConfigError> {
    let default_access_level = s.raw("default_access_level").unwrap_or("free").to_owned();
    let bootstrap_admins = s
        .raw("bootstrap_admins")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once(':') {
            Some((provider, subject)) if !provider.is_empty() && !subject.is_empty() => {
                let subject = if provider == "local" {
                    subject.to_lowercase()
                } else {
                    subject.to_owned()
                };
                Ok((provider.to_owned(), subject))
            }
            _ => Err(s.invalid(
                "bootstrap_admins",
                format!("{entry:?} is not <provider>:<subject> (e.g. corp:248289761001 or local:alice@example.com)"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AuthzConfig {
        default_access_level,
        bootstrap_admins,
        policy_reload_interval: s.duration("policy_reload_interval", Duration::from_secs(60))?,
    })
}

/// The tag `docker/build-tenant-image.sh` gives the image it builds.
pub const DEFAULT_TENANT_IMAGE: &str =
    concat!("websplat/tenant-runtime:", env!("CARGO_PKG_VERSION"));

fn tenants(s: &Settings) -> Result<TenantsConfig, ConfigError> {
    let workspace_domain = s
        .raw("workspace_domain")
        .unwrap_or("ws.localhost")
        .trim_matches('.')
        .to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !workspace_domain.split('.').all(label_ok) {
        return Err(s.invalid(
            "workspace_domain",
            format!(
                "{workspace_domain:?} is not a host name (e.g. ws.localhost or ws.example.com)"
            ),
        ));
    }
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 40
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let deployment = s.raw("deployment").unwrap_or("default").to_owned();
    if !name_ok(&deployment) {
        return Err(s.invalid(
            "deployment",
            "must be 1 to 40 lowercase letters, digits or dashes",
        ));
    }
    let network = s
        .raw("tenant_network")
        .unwrap_or("websplat-tenants")
        .to_owned();
    if !name_ok(&network) {
        return Err(s.invalid(
            "tenant_network",
            "must be 1 to 40 lowercase letters, digits or dashes",
        ));
    }
    let max_running_per_level = s
        .raw("max_running_tenants_per_level")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .split_once(':')
                .and_then(|(level, n)| Some((level.trim().to_owned(), n.trim().parse().ok()?)))
                .filter(|(level, _)| !level.is_empty())
                .ok_or_else(|| {
                    s.invalid(
                        "max_running_tenants_per_level",
                        format!("{entry:?} is not <access level>:<count> (e.g. free:20,pro:50)"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tmp_mib: u32 = positive(s, "tenant_tmp_mib", 64)?;
    let orchestrator = match s.raw("orchestrator").unwrap_or("docker") {
        "docker" => OrchestratorKind::Docker,
        "memory" => OrchestratorKind::Memory,
        other => {
            return Err(s.invalid(
                "orchestrator",
                format!("{other:?} is not docker or memory (memory is for tests and development)"),
            ));
        }
    };
    Ok(TenantsConfig {
        orchestrator,
        image: s
            .raw("tenant_image")
            .unwrap_or(DEFAULT_TENANT_IMAGE)
            .to_owned(),
        workspace_domain,
        deployment,
        network,
        start_on_sign_in: s.bool("workspace_start_on_sign_in", true)?,
        ready_timeout: s.duration("tenant_ready_timeout", Duration::from_secs(30))?,
        max_running: positive(s, "max_running_tenants", 100)?,
        max_running_per_level,
        max_concurrent_spawns: positive(s, "max_concurrent_spawns", 8)?,
        pids_limit: positive(s, "tenant_pids_limit", 256)?,
        tmp_mib,
        proxy_max_body: positive(s, "proxy_max_body_bytes", 512 * 1024 * 1024)?,
        proxy_connect_timeout: s.duration("proxy_connect_timeout", Duration::from_secs(5))?,
        proxy_idle_timeout: s.duration("proxy_idle_timeout", Duration::from_secs(120))?,
        reconcile_interval: s.duration("tenant_reconcile_interval", Duration::from_secs(60))?,
        idle_check_interval: s.duration("tenant_idle_check_interval", Duration::from_secs(30))?,
    })
}

fn positive<T>(s: &Settings, key: &str, default: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + Default + PartialEq,
    T::Err: fmt::Display,
{
    let v = s.parse(key, default)?;
    if v == T::default() {
        return Err(s.invalid(key, "must be greater than zero"));
    }
    Ok(v)
}

fn oidc_providers(s: &Settings) -> Result<Vec<OidcProviderConfig>, ConfigError> {
    // Collect provider ids from every `oidc_<id>_<field>` key.
    let mut ids: Vec<String> = Vec::new();
    for key in s.0.keys() {
        let Some(rest) = key.strip_prefix("oidc_") else {
            continue;
        };
        let id = OIDC_FIELDS
            .iter()
            .find_map(|field| rest.strip_suffix(&format!("_{field}")));
        match id {
            Some(id) if !ids.iter().any(|known| known == id) => ids.push(id.to_owned()),
            Some(_) => {}
            None => {
                return Err(s.invalid(
                    key,
                    "unknown OIDC setting; expected WEBSPLAT_OIDC_<ID>_ISSUER, _CLIENT_ID, _CLIENT_SECRET or _DISPLAY_NAME",
                ));
            }
        }
    }

    ids.into_iter()
        .map(|id| {
            let key = |field: &str| format!("oidc_{id}_{field}");
            let valid_id = id.len() <= 32
                && id.starts_with(|c: char| c.is_ascii_lowercase())
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid_id {
                return Err(s.invalid(
                    &key("issuer"),
                    format!("the provider id {id:?} must be 1 to 32 letters, digits or '_', starting with a letter"),
                ));
            }
            if RESERVED_PROVIDER_IDS.contains(&id.as_str()) {
                return Err(s.invalid(
                    &key("issuer"),
                    format!("the provider id {id:?} is reserved; choose another"),
                ));
            }
            let issuer_raw = s.required(&key("issuer"), "the provider's issuer URL")?;
            let issuer = s.url(&key("issuer"), issuer_raw)?;
            if issuer.scheme() != "https" && !is_loopback(&issuer) {
                return Err(s.invalid(
                    &key("issuer"),
                    "must use https:// (plain http is accepted only for loopback test providers)",
                ));
            }
            Ok(OidcProviderConfig {
                display_name: s.raw(&key("display_name")).unwrap_or(&id).to_owned(),
                client_id: s
                    .required(&key("client_id"), "the client id registered at the provider")?
                    .to_owned(),
                client_secret: SecretString::from(
                    s.required(&key("client_secret"), "the client secret registered at the provider")?
                        .to_owned(),
                ),
                issuer: issuer_raw.to_owned(),
                id,
            })
        })
        .collect()
}

fn github(s: &Settings) -> Result<Option<GithubConfig>, ConfigError> {
    let any_set = s.0.keys().any(|k| k.starts_with("github_"));
    if !any_set {
        return Ok(None);
    }
    let url = |key: &str, default: &str| s.url(key, s.raw(key).unwrap_or(default));
    Ok(Some(GithubConfig {
        display_name: s.raw("github_display_name").unwrap_or("GitHub").to_owned(),
        client_id: s
            .required("github_client_id", "the OAuth app's client id")?
            .to_owned(),
        client_secret: SecretString::from(
            s.required("github_client_secret", "the OAuth app's client secret")?
                .to_owned(),
        ),
        authorize_url: url(
            "github_authorize_url",
            "https://github.com/login/oauth/authorize",
        )?,
        token_url: url(
            "github_token_url",
            "https://github.com/login/oauth/access_token",
        )?,
        api_url: url("github_api_url", "https://api.github.com/")?,
    }))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn read_file(path: &Path, settings: &mut Settings) -> Result<(), ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_error(e.to_string()))?;
    let source = Source::File(path.display().to_string());
    flatten("", &table, &source, settings).map_err(file_error)
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    source: &Source,
    settings: &mut Settings,
) -> Result<(), String> {
    for (name, value) in table {
        let key = format!("{prefix}{}", name.to_ascii_lowercase().replace('-', "_"));
        let raw = match value {
            toml::Value::Table(inner) => {
                flatten(&format!("{key}_"), inner, source, settings)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => return Err(format!("{key}: unsupported value {other}")),
        };
        settings.0.insert(
            key,
            Value {
                raw,
                source: source.clone(),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const BASE: [(&str, &str); 2] = [
        ("WEBSPLAT_DATABASE_URL", "postgres://u@127.0.0.1/db"),
        ("WEBSPLAT_REDIS_URL", "redis://127.0.0.1/"),
    ];

    #[test]
    fn defaults_apply_when_only_the_stores_are_named() {
        let c = Config::from_sources(None, env(&BASE)).expect("valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url.origin(), "http://localhost:8080");
        assert!(c.oidc.is_empty());
        assert!(c.github.is_none());
        assert_eq!(c.tenants.orchestrator, OrchestratorKind::Docker);
    }

    #[test]
    fn the_orchestrator_is_docker_or_memory_and_anything_else_is_named() {
        let mut e = env(&BASE);
        e.extend(env(&[("WEBSPLAT_ORCHESTRATOR", "memory")]));
        let c = Config::from_sources(None, e).expect("valid");
        assert_eq!(c.tenants.orchestrator, OrchestratorKind::Memory);
        let mut e = env(&BASE);
        e.extend(env(&[("WEBSPLAT_ORCHESTRATOR", "kubernetes")]));
        let err = Config::from_sources(None, e).expect_err("invalid");
        let msg = err.to_string();
        assert!(
            msg.contains("WEBSPLAT_ORCHESTRATOR") && msg.contains("kubernetes"),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_database_url_is_named() {
        let err = Config::from_sources(None, env(&[("WEBSPLAT_REDIS_URL", "redis://x/")]))
            .expect_err("missing");
        assert!(err.to_string().contains("WEBSPLAT_DATABASE_URL"), "{err}");
    }

    #[test]
    fn a_bad_listen_address_is_named() {
        let mut e = env(&BASE);
        e.extend(env(&[("WEBSPLAT_LISTEN", "everywhere")]));
        let err = Config::from_sources(None, e).expect_err("invalid");
        assert!(err.to_string().contains("WEBSPLAT_LISTEN"), "{err}");
    }

    #[test]
    fn oidc_providers_come_from_the_environment() {
        let mut e = env(&BASE);
        e.extend(env(&[
            ("WEBSPLAT_OIDC_CORP_ISSUER", "https://id.example.com"),
            ("WEBSPLAT_OIDC_CORP_CLIENT_ID", "abc"),
            ("WEBSPLAT_OIDC_CORP_CLIENT_SECRET", "s3cret"),
            ("WEBSPLAT_OIDC_CORP_DISPLAY_NAME", "Corp SSO"),
        ]));
        let c = Config::from_sources(None, e).expect("valid");
        assert_eq!(c.oidc.len(), 1);
        assert_eq!(c.oidc[0].id, "corp");
        assert_eq!(c.oidc[0].display_name, "Corp SSO");
        assert!(!format!("{:?}", c.oidc[0]).contains("s3cret"));
    }

    #[test]
    fn an_oidc_provider_without_a_secret_is_named() {
        let mut e = env(&BASE);
        e.extend(env(&[
            ("WEBSPLAT_OIDC_CORP_ISSUER", "https://id.example.com"),
            ("WEBSPLAT_OIDC_CORP_CLIENT_ID", "abc"),
        ]));
        let err = Config::from_sources(None, e).expect_err("missing secret");
        assert!(
            err.to_string().contains("WEBSPLAT_OIDC_CORP_CLIENT_SECRET"),
            "{err}"
        );
    }

    #[test]
    fn a_plain_http_issuer_off_loopback_is_refused() {
        let mut e = env(&BASE);
        e.extend(env(&[
            ("WEBSPLAT_OIDC_CORP_ISSUER", "http://id.example.com"),
            ("WEBSPLAT_OIDC_CORP_CLIENT_ID", "abc"),
            ("WEBSPLAT_OIDC_CORP_CLIENT_SECRET", "x"),
        ]));
        let err = Config::from_sources(None, e).expect_err("http issuer");
        assert!(err.to_string().contains("https"), "{err}");
    }

    #[test]
    fn the_file_is_read_and_the_environment_wins() {
        let dir = std::env::temp_dir().join(format!("websplat-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("platform.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:9000"
database_url = "postgres://file@127.0.0.1/db"
redis_url = "redis://127.0.0.1/"
session_idle_timeout = "2h"

[oidc.corp]
issuer = "https://id.example.com"
client_id = "from-file"
client_secret = "x"

[github]
client_id = "gh"
client_secret = "y"
"#,
        )
        .expect("write");
        let c = Config::from_sources(
            Some(&path),
            env(&[
                ("WEBSPLAT_LISTEN", "127.0.0.1:9001"),
                ("WEBSPLAT_OIDC_CORP_CLIENT_ID", "from-env"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.public_url.origin(), "http://localhost:9001");
        assert_eq!(c.session.idle_timeout, Duration::from_secs(7200));
        assert_eq!(c.oidc[0].client_id, "from-env");
        assert_eq!(c.github.as_ref().map(|g| g.client_id.as_str()), Some("gh"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_file() {
        let dir = std::env::temp_dir().join(format!("websplat-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("platform.toml");
        std::fs::write(&path, "session_idle_timeout = \"soon\"\n").expect("write");
        let err = Config::from_sources(Some(&path), env(&BASE)).expect_err("invalid");
        let msg = err.to_string();
        assert!(
            msg.contains("WEBSPLAT_SESSION_IDLE_TIMEOUT") && msg.contains("platform.toml"),
            "{msg}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
