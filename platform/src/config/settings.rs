//! The settings layer under the typed configuration: the built-in defaults, an optional
//! TOML file and `WEBSPLAT_*` variables flattened into one map of `snake_case` keys, and the
//! readers that parse a key into a typed value or an error naming the setting and its source.
//! It must never log a value: some are secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

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
pub(super) struct Value {
    raw: String,
    source: Source,
}

/// The flattened layers, before parsing.
#[derive(Debug, Default)]
pub(super) struct Settings(pub(super) BTreeMap<String, Value>);

impl Settings {
    /// Adds the `WEBSPLAT_*` variables of `env`, over the file's values.
    pub(super) fn add_env(&mut self, env: impl IntoIterator<Item = (String, String)>) {
        for (name, raw) in env {
            if let Some(key) = name.strip_prefix(ENV_PREFIX) {
                self.0.insert(
                    key.to_ascii_lowercase(),
                    Value {
                        raw,
                        source: Source::Environment,
                    },
                );
            }
        }
    }

    pub(super) fn env_name(key: &str) -> String {
        format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
    }

    pub(super) fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
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

    pub(super) fn raw(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|v| v.raw.trim())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn required(&self, key: &str, hint: &'static str) -> Result<&str, ConfigError> {
        self.raw(key).ok_or_else(|| ConfigError::Missing {
            setting: Self::env_name(key),
            hint,
        })
    }

    pub(super) fn parse<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
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

    pub(super) fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(self.invalid(key, format!("{other:?} is not true or false"))),
        }
    }

    pub(super) fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
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

    pub(super) fn url(&self, key: &str, raw: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(raw).map_err(|e| self.invalid(key, format!("{raw:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.invalid(key, "must be an http:// or https:// URL"));
        }
        Ok(url)
    }
}

pub(super) fn positive<T>(s: &Settings, key: &str, default: T) -> Result<T, ConfigError>
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

pub(super) fn read_file(path: &Path, settings: &mut Settings) -> Result<(), ConfigError> {
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
