//! Signing in through an OpenID provider in tests: the third-party `oidc-provider-mock`
//! started per test, the platform's environment for a provider, and a browser's round trip
//! through the provider's form.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::http::location;
use crate::{ChildGuard, env_var, free_port, wait_for_http};

/// The third-party `oidc-provider-mock` OpenID provider, from PyPI.
pub struct OidcProviderMock {
    pub issuer: String,
    _child: ChildGuard,
}

impl OidcProviderMock {
    /// Starts the provider with predefined users, each a JSON object of claims with `sub`.
    pub async fn start(users: &[serde_json::Value]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(env_var("WEBSPLAT_TEST_OIDC_PROVIDER_MOCK"));
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for user in users {
            cmd.arg("--user-claims").arg(user.to_string());
        }
        let child = ChildGuard(cmd.spawn().expect("start oidc-provider-mock"));
        let issuer = format!("http://127.0.0.1:{port}");
        wait_for_http(
            &format!("{issuer}/.well-known/openid-configuration"),
            "oidc-provider-mock",
            Duration::from_secs(30),
        )
        .await;
        OidcProviderMock {
            issuer,
            _child: child,
        }
    }
}

/// Environment for an OIDC provider with id `id` at `issuer`.
pub fn oidc_env(id: &str, issuer: &str, client_id: &str) -> Vec<(String, String)> {
    let up = id.to_uppercase();
    vec![
        (format!("WEBSPLAT_OIDC_{up}_ISSUER"), issuer.to_owned()),
        (
            format!("WEBSPLAT_OIDC_{up}_CLIENT_ID"),
            client_id.to_owned(),
        ),
        (
            format!("WEBSPLAT_OIDC_{up}_CLIENT_SECRET"),
            "test-client-secret".to_owned(),
        ),
        (
            format!("WEBSPLAT_OIDC_{up}_DISPLAY_NAME"),
            format!("{id} SSO"),
        ),
    ]
}

/// Signs in at `oidc-provider-mock` as `sub`, the way a browser does: follow the platform's
/// redirect to the provider's page, submit its form, and follow the provider's redirect
/// back to the platform's callback. Returns the callback's response (not followed).
pub async fn sign_in_at_mock(
    client: &reqwest::Client,
    login_url: &str,
    sub: &str,
) -> reqwest::Response {
    let callback = answer_at_mock(client, login_url, &[("sub", sub)]).await;
    client.get(callback).send().await.expect("callback")
}

/// Starts a sign-in, shows the provider's page and submits `form` there; returns the URL
/// the provider sends the browser back to (not followed).
pub async fn answer_at_mock(
    client: &reqwest::Client,
    login_url: &str,
    form: &[(&str, &str)],
) -> String {
    let to_provider = client.get(login_url).send().await.expect("start sign-in");
    assert_eq!(
        to_provider.status(),
        302,
        "the platform redirects to the provider"
    );
    let authorize = location(&to_provider);
    let page = client.get(&authorize).send().await.expect("provider page");
    assert_eq!(page.status(), 200, "the provider shows its sign-in form");
    let back = client
        .post(&authorize)
        .form(form)
        .send()
        .await
        .expect("submit the provider form");
    assert!(
        back.status().is_redirection(),
        "the provider redirects back: {}",
        back.status()
    );
    location(&back)
}
