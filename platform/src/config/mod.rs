//! Configuration, layered: built-in defaults, then an optional TOML file, then `WEBSPLAT_*`
//! environment variables. Everything is parsed into typed structs at start-up, and a bad or
//! missing setting stops start-up with an error naming the setting and where it came from.
//!
//! Both layers are flattened into one map of `snake_case` keys: the TOML table
//! `[oidc.corp] issuer = "…"` and the variable `WEBSPLAT_OIDC_CORP_ISSUER` both set the key
//! `oidc_corp_issuer`. This module must never log a secret: secrets become `SecretString`.
//!
//! The layers live in [`settings`]; the tenants' and the sign-in providers' settings in
//! [`tenants`] and [`providers`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

mod ai;
mod mail;
mod providers;
pub mod proxies;
mod settings;
mod sites;
mod tenants;

pub use ai::{AiConfig, AliasConfig, LOCAL_MODEL_LABEL, ProviderConfig, ProviderKind};
pub use mail::{SmtpConfig, SmtpTls};
pub use providers::{GithubConfig, OidcProviderConfig};
use providers::{github, oidc_providers};
pub use settings::{ConfigError, Source};
use settings::{Settings, positive, read_file};
pub use sites::{S3Config, SitesConfig};
use tenants::tenants;
pub use tenants::{DEFAULT_TENANT_IMAGE, OrchestratorKind, TenantsConfig};

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
    /// The AI gateway: its door, providers and aliases.
    pub ai: AiConfig,
    pub sites: SitesConfig,
    /// The proxies in front of the platform, whose `X-Forwarded-For` entries are believed.
    pub trusted_proxies: proxies::TrustedProxies,
    /// The SMTP server mail goes through (e-mail verification); `None`: no mail is sent.
    pub smtp: Option<SmtpConfig>,
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
    /// Registration needs an unused invitation an admin made
    /// (`WEBSPLAT_REGISTRATION_INVITATION_ONLY`).
    pub invitation_only: bool,
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
    /// Workspace openings per minute per user, and handoff redemptions per minute per
    /// client address (each mints a code, may start a container, or costs the session store).
    pub workspace_opens: u32,
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
        settings.add_env(env);
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
            invitation_only: s.bool("registration_invitation_only", false)?,
        };
        let rate_limits = RateLimitConfig {
            api_reads_per_ip: positive(s, "rate_limit_api_reads_per_ip", 6000)?,
            api_writes_per_ip: positive(s, "rate_limit_api_writes_per_ip", 1200)?,
            window: s.duration("rate_limit_window", Duration::from_secs(15 * 60))?,
            per_ip: positive(s, "rate_limit_per_ip", 100)?,
            per_account: positive(s, "rate_limit_per_account", 10)?,
            workspace_opens: positive(s, "rate_limit_workspace_opens", 30)?,
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

        let tenants = tenants(s)?;
        let sites = sites::sites(s, &tenants.workspace_domain)?;
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
            ai: ai::ai(s)?,
            tenants,
            sites,
            trusted_proxies: trusted_proxies(s)?,
            smtp: mail::smtp(s)?,
        })
    }
}

/// `WEBSPLAT_TRUSTED_PROXIES` (a hop count or CIDR blocks), or the older
/// `WEBSPLAT_TRUST_FORWARDED_FOR=true`, which means one proxy.
fn trusted_proxies(s: &Settings) -> Result<proxies::TrustedProxies, ConfigError> {
    match s.raw("trusted_proxies") {
        Some(raw) => {
            proxies::TrustedProxies::parse(raw).map_err(|e| s.invalid("trusted_proxies", e))
        }
        None if s.bool("trust_forwarded_for", false)? => Ok(proxies::TrustedProxies::Hops(1)),
        None => Ok(proxies::TrustedProxies::None),
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
    fn a_tenant_key_is_long_enough_or_named_and_never_shown() {
        let c = Config::from_sources(None, env(&BASE)).expect("valid");
        assert!(c.tenants.tenant_key.is_none(), "the database keeps one");
        let mut e = env(&BASE);
        e.extend(env(&[("WEBSPLAT_TENANT_KEY", "short-and-secret")]));
        let msg = Config::from_sources(None, e)
            .expect_err("too short")
            .to_string();
        assert!(
            msg.contains("WEBSPLAT_TENANT_KEY") && msg.contains("32"),
            "{msg}"
        );
        assert!(!msg.contains("short-and-secret"), "{msg}");
        let mut e = env(&BASE);
        e.extend(env(&[(
            "WEBSPLAT_TENANT_KEY",
            "a-long-enough-platform-key-0123456789",
        )]));
        let c = Config::from_sources(None, e).expect("valid");
        assert!(c.tenants.tenant_key.is_some());
        assert!(!format!("{c:?}").contains("a-long-enough-platform-key"));
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
