//! Sign-in with an OpenID Connect provider: discovery, JWKS cached with key rotation,
//! authorization code flow with PKCE S256, state and nonce, and an ID token validated as
//! OpenID Connect Core 3.1.3.7 says — signature against an allow-list of asymmetric
//! algorithms (never `none`, never a MAC keyed with our client secret), `iss`, `aud`,
//! `azp`, `exp`, `iat` and `nonce`. The provider's metadata is a cache of what the provider
//! publishes, never state another replica needs.

use std::time::{Duration, Instant};

use chrono::Utc;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, TokenResponse,
};
use secrecy::ExposeSecret;
use tokio::sync::RwLock;

use super::flow::{ProviderError, StartedLogin};
use crate::config::OidcProviderConfig;
use crate::users::ExternalProfile;

/// Signature algorithms accepted on ID tokens. No `none`, no HMAC.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];
/// How long discovery and the JWKS are trusted before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// A token signed with an unknown key triggers a JWKS refetch at most this often, so
/// forged key ids cannot make us hammer the provider.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Clock skew tolerated on `iat`, and the oldest `iat` accepted.
const IAT_SKEW: chrono::Duration = chrono::Duration::minutes(5);
const IAT_MAX_AGE: chrono::Duration = chrono::Duration::hours(1);

struct Cached {
    metadata: CoreProviderMetadata,
    fetched_at: Instant,
    /// When a token with an unknown key last made us fetch the keys again.
    refreshed_for_unknown_key_at: Option<Instant>,
}

pub struct OidcProvider {
    config: OidcProviderConfig,
    redirect_url: RedirectUrl,
    http: reqwest::Client,
    cache: RwLock<Option<Cached>>,
}

impl OidcProvider {
    pub fn new(
        config: OidcProviderConfig,
        redirect_url: RedirectUrl,
        http: reqwest::Client,
    ) -> Self {
        OidcProvider {
            config,
            redirect_url,
            http,
            cache: RwLock::new(None),
        }
    }

    pub fn config(&self) -> &OidcProviderConfig {
        &self.config
    }

    /// The provider's metadata and keys, from cache or freshly discovered.
    #[tracing::instrument(skip(self), fields(provider = %self.config.id))]
    async fn metadata(&self, refresh: bool) -> Result<CoreProviderMetadata, ProviderError> {
        // Served from cache when fresh, or when a refresh for an unknown key happened lately.
        let usable = |c: &Cached| {
            if refresh {
                c.refreshed_for_unknown_key_at
                    .is_some_and(|t| t.elapsed() < MIN_REFRESH_INTERVAL)
            } else {
                c.fetched_at.elapsed() < METADATA_TTL
            }
        };
        if let Some(c) = self.cache.read().await.as_ref().filter(|c| usable(c)) {
            return Ok(c.metadata.clone());
        }
        let mut cache = self.cache.write().await;
        // Another request may have refreshed it while this one waited for the lock.
        if let Some(c) = cache.as_ref().filter(|c| usable(c)) {
            return Ok(c.metadata.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| ProviderError::Misconfigured(format!("issuer URL: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| ProviderError::Unreachable(format!("discovery failed: {e}")))?;
        tracing::info!(
            keys = metadata.jwks().keys().len(),
            "fetched provider metadata and keys"
        );
        *cache = Some(Cached {
            metadata: metadata.clone(),
            fetched_at: Instant::now(),
            refreshed_for_unknown_key_at: refresh.then(Instant::now),
        });
        Ok(metadata)
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(
                self.config.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(self.redirect_url.clone())
    }

    /// The URL to send the browser to, and the secrets to keep until the callback.
    pub async fn start(&self) -> Result<StartedLogin, ProviderError> {
        let client = self.client(self.metadata(false).await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(StartedLogin {
            url,
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: Some(nonce.secret().clone()),
        })
    }

    /// Exchanges the code and validates the ID token; the person it names.
    #[tracing::instrument(skip_all, fields(provider = %self.config.id))]
    pub async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: Option<String>,
    ) -> Result<ExternalProfile, ProviderError> {
        let nonce = Nonce::new(
            nonce.ok_or_else(|| ProviderError::Rejected("no nonce was recorded".to_owned()))?,
        );
        let client = self.client(self.metadata(false).await?);
        let token_response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ProviderError::Misconfigured(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Rejected(format!("the code exchange failed: {e}")))?;
        let id_token = token_response.id_token().ok_or_else(|| {
            ProviderError::InvalidToken("the provider returned no ID token".to_owned())
        })?;

        let verify = |client: &CoreClient<_, _, _, _, _, _>| {
            let verifier: CoreIdTokenVerifier<'_> = client
                .id_token_verifier()
                .set_allowed_algs(ALLOWED_ALGS)
                .set_issue_time_verifier_fn(|iat| {
                    let now = Utc::now();
                    if iat > now + IAT_SKEW {
                        Err("the token was issued in the future".to_owned())
                    } else if iat < now - IAT_MAX_AGE {
                        Err("the token was issued too long ago".to_owned())
                    } else {
                        Ok(())
                    }
                });
            id_token.claims(&verifier, &nonce).cloned()
        };
        let claims = match verify(&client) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider may have rotated its keys: fetch them again, once.
                let client = self.client(self.metadata(true).await?);
                verify(&client)
            }
            other => other,
        }
        .map_err(|e| ProviderError::InvalidToken(describe(&e)))?;

        let mut email = claims.email().map(|e| e.as_str().to_owned());
        let mut email_verified = claims.email_verified().unwrap_or(false);
        let mut name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()));

        // Providers that keep the ID token small put the profile behind the userinfo endpoint.
        if (email.is_none() || name.is_none())
            && let Ok(request) = client.user_info(
                token_response.access_token().clone(),
                Some(claims.subject().clone()),
            )
        {
            let answer = request
                .request_async::<openidconnect::EmptyAdditionalClaims, _, openidconnect::core::CoreGenderClaim>(&self.http)
                .await;
            match answer {
                Ok(info) => {
                    email = email.or_else(|| info.email().map(|e| e.as_str().to_owned()));
                    email_verified = email_verified || info.email_verified().unwrap_or(false);
                    name = name.or_else(|| {
                        info.name()
                            .and_then(|n| n.get(None))
                            .map(|n| n.as_str().to_owned())
                            .or_else(|| info.preferred_username().map(|u| u.as_str().to_owned()))
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "userinfo request failed; using the ID token's claims only")
                }
            }
        }

        Ok(ExternalProfile {
            provider: self.config.id.clone(),
            subject: claims.subject().as_str().to_owned(),
            display_name: name,
            email,
            email_verified,
        })
    }
}

/// Why an ID token was refused, in words for the error body and the log.
fn describe(err: &ClaimsVerificationError) -> String {
    match err {
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoSignature) => {
            "the ID token is not signed".to_owned()
        }
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::DisallowedAlg(alg),
        ) => {
            format!("the ID token is signed with a disallowed algorithm ({alg})")
        }
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => "the ID token is signed with a key the provider does not publish".to_owned(),
        ClaimsVerificationError::SignatureVerification(_) => {
            "the ID token's signature is invalid".to_owned()
        }
        ClaimsVerificationError::Expired(detail) => {
            format!("the ID token has expired or is not valid yet ({detail})")
        }
        ClaimsVerificationError::InvalidIssuer(_) => {
            "the ID token was issued by another issuer".to_owned()
        }
        ClaimsVerificationError::InvalidAudience(_) => {
            "the ID token is meant for another client".to_owned()
        }
        ClaimsVerificationError::InvalidNonce(_) => {
            "the ID token's nonce does not match this sign-in".to_owned()
        }
        other => format!("the ID token is invalid: {other}"),
    }
}
