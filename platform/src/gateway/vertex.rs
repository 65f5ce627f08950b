//! Vertex AI's credentials: a Google service-account key file exchanged for an OAuth access
//! token (a JWT signed RS256 with the account's key, posted to the file's `token_uri`, as
//! RFC 7523 says), cached until shortly before it expires and shared by concurrent calls.
//! It must never log the key, the assertion or the token.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::error::GatewayError;
use crate::config::ProviderConfig;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// DER prefix of a SHA-256 `DigestInfo` (RFC 8017, 9.2 note 1).
const SHA256_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// A token is renewed this long before it expires.
const MARGIN: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: SecretString,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".to_owned()
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Default)]
pub struct VertexTokens {
    cache: Mutex<HashMap<String, (SecretString, Instant)>>,
}

fn unavailable(provider: &str, why: &str) -> GatewayError {
    tracing::warn!(provider, why, "cannot get a Vertex AI access token");
    GatewayError::Upstream(format!(
        "the AI provider {provider} could not be signed in to (its service-account credentials were refused or unreadable)"
    ))
}

impl VertexTokens {
    /// A valid access token for `provider` (cached; exchanged when missing or expiring).
    #[tracing::instrument(skip_all, fields(provider = %provider.id))]
    pub async fn token(
        &self,
        client: &reqwest::Client,
        provider: &ProviderConfig,
    ) -> Result<SecretString, GatewayError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, until)) = cache.get(&provider.id)
            && Instant::now() + MARGIN < *until
        {
            return Ok(token.clone());
        }
        let path = provider
            .credentials_file
            .as_deref()
            .ok_or_else(|| unavailable(&provider.id, "no credentials file"))?;
        let (token, lifetime) = exchange(client, path)
            .await
            .map_err(|why| unavailable(&provider.id, &why))?;
        cache.insert(
            provider.id.clone(),
            (token.clone(), Instant::now() + lifetime),
        );
        Ok(token)
    }
}

async fn exchange(
    client: &reqwest::Client,
    path: &Path,
) -> Result<(SecretString, Duration), String> {
    let raw = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("cannot read the credentials file: {e}"))?;
    let key: KeyFile = serde_json::from_str(&raw)
        .map_err(|_| "the credentials file is not a service-account key".to_owned())?;
    let assertion = assertion(&key, chrono::Utc::now().timestamp())?;
    let answer = client
        .post(&key.token_uri)
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.expose_secret()),
        ])
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|_| "the token endpoint cannot be reached".to_owned())?;
    if !answer.status().is_success() {
        return Err(format!("the token endpoint answered {}", answer.status()));
    }
    let token: TokenAnswer = answer
        .json()
        .await
        .map_err(|_| "the token endpoint's answer is unreadable".to_owned())?;
    Ok((
        token.access_token,
        Duration::from_secs(token.expires_in.unwrap_or(3600)),
    ))
}

/// The signed JWT that asks for a token.
fn assertion(key: &KeyFile, now: i64) -> Result<SecretString, String> {
    let private = RsaPrivateKey::from_pkcs8_pem(key.private_key.expose_secret())
        .map_err(|_| "the credentials' private key is not a PKCS#8 RSA key".to_owned())?;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": key.client_email, "scope": SCOPE, "aud": key.token_uri, "iat": now, "exp": now + 3600,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let digest = Sha256::digest(signing_input.as_bytes());
    let padding = Pkcs1v15Sign {
        hash_len: Some(32),
        prefix: Box::new(SHA256_PREFIX),
    };
    let signature = private
        .sign(padding, &digest)
        .map_err(|_| "the assertion could not be signed".to_owned())?;
    Ok(SecretString::from(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}
