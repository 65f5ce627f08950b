//! What every redirect sign-in (OIDC, GitHub) has in common: the login it starts and the
//! ways a provider can fail. The drivers depend on this, never on the list of providers.

use crate::error::ApiError;

/// What a provider answered wrongly, or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the identity provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    InvalidToken(String),
    #[error("the provider is misconfigured: {0}")]
    Misconfigured(String),
}

impl From<ProviderError> for ApiError {
    fn from(err: ProviderError) -> Self {
        match err {
            ProviderError::Unreachable(detail) => {
                tracing::warn!(%detail, "identity provider unreachable");
                ApiError::Unavailable("the identity provider")
            }
            ProviderError::Misconfigured(detail) => ApiError::internal(anyhow::anyhow!(detail)),
            other => ApiError::Provider(other.to_string()),
        }
    }
}

/// A redirect to a provider, and the secrets to keep until it calls back.
pub struct StartedLogin {
    pub url: url::Url,
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: Option<String>,
}
