//! The sign-in providers' settings: any number of OpenID Connect providers
//! (`WEBSPLAT_OIDC_<ID>_…`) and GitHub (`WEBSPLAT_GITHUB_…`). Client secrets become
//! `SecretString` here and are never logged.

use secrecy::SecretString;
use url::Url;

use super::settings::{ConfigError, Settings};

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

/// Provider ids that name built-in sign-in methods and so cannot be used for OIDC.
const RESERVED_PROVIDER_IDS: [&str; 2] = ["local", "github"];
const OIDC_FIELDS: [&str; 4] = ["issuer", "client_id", "client_secret", "display_name"];

pub(super) fn oidc_providers(s: &Settings) -> Result<Vec<OidcProviderConfig>, ConfigError> {
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

pub(super) fn github(s: &Settings) -> Result<Option<GithubConfig>, ConfigError> {
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
