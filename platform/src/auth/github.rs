//! Sign-in with GitHub: OAuth 2.0 (not OpenID Connect), so the person comes from GitHub's
//! API (`/user`, and `/user/emails` when the profile hides the address), keyed by GitHub's
//! numeric user id, never by login name or e-mail. The URLs are configurable so tests can
//! point them at a local server that speaks GitHub's wire format.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::flow::{ProviderError, StartedLogin};
use crate::config::GithubConfig;
use crate::users::ExternalProfile;

pub const PROVIDER_ID: &str = "github";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub struct GithubProvider {
    config: GithubConfig,
    client: Client,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

impl GithubProvider {
    pub fn new(config: GithubConfig, redirect_url: RedirectUrl, http: reqwest::Client) -> Self {
        let client = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                config.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(AuthUrl::from_url(config.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
            .set_redirect_uri(redirect_url);
        GithubProvider {
            config,
            client,
            http,
        }
    }

    pub fn config(&self) -> &GithubConfig {
        &self.config
    }

    pub fn start(&self) -> StartedLogin {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("read:user".to_owned()))
            .add_scope(Scope::new("user:email".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        StartedLogin {
            url,
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: None,
        }
    }

    #[tracing::instrument(skip_all, fields(provider = PROVIDER_ID))]
    pub async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
    ) -> Result<ExternalProfile, ProviderError> {
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Rejected(format!("the code exchange failed: {e}")))?;
        let access_token = token.access_token().secret();

        let user: GithubUser = self.api(access_token, "user").await?;
        let (email, email_verified) = match user.email {
            Some(email) => (Some(email), true),
            None => {
                let emails: Vec<GithubEmail> = self
                    .api(access_token, "user/emails")
                    .await
                    .unwrap_or_default();
                emails
                    .into_iter()
                    .find(|e| e.primary && e.verified)
                    .map(|e| (Some(e.email), true))
                    .unwrap_or((None, false))
            }
        };
        Ok(ExternalProfile {
            provider: PROVIDER_ID.to_owned(),
            subject: user.id.to_string(),
            display_name: user
                .name
                .filter(|n| !n.trim().is_empty())
                .or(Some(user.login)),
            email,
            email_verified,
        })
    }

    #[tracing::instrument(skip(self, access_token))]
    async fn api<T: for<'de> Deserialize<'de>>(
        &self,
        access_token: &str,
        path: &str,
    ) -> Result<T, ProviderError> {
        let url = self
            .config
            .api_url
            .join(path)
            .map_err(|e| ProviderError::Misconfigured(e.to_string()))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(format!("GitHub API: {e}")))?;
        if !response.status().is_success() {
            return Err(ProviderError::Rejected(format!(
                "GitHub API answered {} for /{path}",
                response.status()
            )));
        }
        response.json().await.map_err(|e| {
            ProviderError::Rejected(format!("GitHub API sent an unexpected /{path}: {e}"))
        })
    }
}
