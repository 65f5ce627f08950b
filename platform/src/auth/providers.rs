//! The sign-in methods this deployment offers, built once from configuration: any number of
//! OIDC providers, GitHub, and local accounts. The HTTP client used to talk to providers
//! follows no redirects and gives up quickly.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use utoipa::ToSchema;

use super::flow::{ProviderError, StartedLogin};
use super::github::{self, GithubProvider};
use super::local;
use super::oidc::OidcProvider;
use crate::config::Config;

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Oidc,
    Github,
    Local,
}

/// A sign-in method as the sign-in page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderInfo {
    pub id: String,
    pub kind: ProviderKind,
    pub display_name: String,
    /// For `local`: whether new accounts may be registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_open: Option<bool>,
    /// For `local`: whether registering needs an invitation code (`invitation` in the
    /// registration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation_required: Option<bool>,
    /// For `local`: whether a new account must confirm its e-mail address (a link is
    /// mailed) before it can sign in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verification: Option<bool>,
}

/// A provider reached through a browser redirect.
pub enum External<'a> {
    Oidc(&'a OidcProvider),
    Github(&'a GithubProvider),
}

impl External<'_> {
    pub async fn start(&self) -> Result<StartedLogin, ProviderError> {
        match self {
            External::Oidc(p) => p.start().await,
            External::Github(p) => Ok(p.start()),
        }
    }

    /// The issuer a callback's `iss` parameter must name (RFC 9207), where there is one.
    pub fn issuer(&self) -> Option<&str> {
        match self {
            External::Oidc(p) => Some(&p.config().issuer),
            External::Github(_) => None,
        }
    }
}

pub struct Providers {
    oidc: BTreeMap<String, OidcProvider>,
    github: Option<GithubProvider>,
    local_enabled: bool,
    registration_open: bool,
    invitation_only: bool,
    email_verification: bool,
}

impl Providers {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("websplat-platform/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for identity providers")?;
        let redirect = |id: &str| {
            openidconnect::RedirectUrl::new(config.public_url.join(&format!("/auth/callback/{id}")))
                .with_context(|| format!("bad redirect URL for provider {id}"))
        };
        let mut oidc = BTreeMap::new();
        for provider in &config.oidc {
            oidc.insert(
                provider.id.clone(),
                OidcProvider::new(provider.clone(), redirect(&provider.id)?, http.clone()),
            );
        }
        let github = match &config.github {
            Some(gh) => Some(GithubProvider::new(
                gh.clone(),
                redirect(github::PROVIDER_ID)?,
                http.clone(),
            )),
            None => None,
        };
        Ok(Providers {
            oidc,
            github,
            local_enabled: config.local_accounts.enabled,
            registration_open: config.local_accounts.enabled
                && config.local_accounts.registration_open,
            invitation_only: config.local_accounts.invitation_only,
            email_verification: config.smtp.is_some(),
        })
    }

    pub fn external(&self, id: &str) -> Option<External<'_>> {
        if id == github::PROVIDER_ID {
            return self.github.as_ref().map(External::Github);
        }
        self.oidc.get(id).map(External::Oidc)
    }

    pub fn local_enabled(&self) -> bool {
        self.local_enabled
    }

    pub fn registration_open(&self) -> bool {
        self.registration_open
    }

    /// Registration needs an unused invitation.
    pub fn invitation_only(&self) -> bool {
        self.invitation_only
    }

    pub fn list(&self) -> Vec<ProviderInfo> {
        let mut list: Vec<ProviderInfo> = self
            .oidc
            .values()
            .map(|p| ProviderInfo {
                id: p.config().id.clone(),
                kind: ProviderKind::Oidc,
                display_name: p.config().display_name.clone(),
                registration_open: None,
                invitation_required: None,
                email_verification: None,
            })
            .collect();
        if let Some(gh) = &self.github {
            list.push(ProviderInfo {
                id: github::PROVIDER_ID.to_owned(),
                kind: ProviderKind::Github,
                display_name: gh.config().display_name.clone(),
                registration_open: None,
                invitation_required: None,
                email_verification: None,
            });
        }
        if self.local_enabled {
            list.push(ProviderInfo {
                id: local::PROVIDER_ID.to_owned(),
                kind: ProviderKind::Local,
                display_name: "Email and password".to_owned(),
                registration_open: Some(self.registration_open),
                invitation_required: Some(self.invitation_only),
                email_verification: Some(self.email_verification),
            });
        }
        list
    }
}
