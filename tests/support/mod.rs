//! Shared by the test binaries: real dependencies, isolated per test. Each test gets its own
//! PostgreSQL database (dropped when the test ends) and its own Redis key prefix, and starts
//! its own processes (identity provider, Redis, chromedriver), which die with the test.
//! `scripts/test` starts PostgreSQL and Redis and sets the `WEBSPLAT_TEST_*` variables.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

mod process;
pub use process::{ChildGuard, free_port, wait_for_http};

/// A variable `scripts/test` sets; a clear failure when the suite was started another way.
pub fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with `scripts/test`, which starts their dependencies"
        )
    })
}

/// A database of its own, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin_url = env_var("WEBSPLAT_TEST_DATABASE_URL");
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .expect("connect to the test PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        TestDb {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        }
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any runtime guarantee: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = AsyncPgConnection::establish(&admin_url).await.ok()?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

/// A key prefix no other test uses.
pub fn redis_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}

/// A deployment name of its own (`WEBSPLAT_DEPLOYMENT`): the containers and volumes a test
/// makes carry it, so tests running at once never reconcile each other's away.
pub fn deployment() -> String {
    format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Resolves every name to loopback, as a browser does for `*.localhost`.
pub struct Loopback;

impl reqwest::dns::Resolve for Loopback {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async {
            let addrs: reqwest::dns::Addrs =
                Box::new(vec![std::net::SocketAddr::from(([127, 0, 0, 1], 0))].into_iter());
            Ok(addrs)
        })
    }
}

/// A browser for workspace origins: cookies per host, no redirects followed,
/// `*.ws.localhost` on loopback.
pub fn workspace_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(Loopback))
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("client")
}

/// Removes a test deployment's containers and volumes (from a `Drop`, so blocking).
pub fn remove_deployment(deployment: &str) {
    let label = format!("label=websplat.deployment={deployment}");
    let listed = |args: &[&str]| -> Vec<String> {
        std::process::Command::new("docker")
            .args(args)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = listed(&["ps", "-aq", "--filter", &label]);
    if !containers.is_empty() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(&containers)
            .output();
    }
    let volumes = listed(&["volume", "ls", "-q", "--filter", &label]);
    if !volumes.is_empty() {
        let _ = std::process::Command::new("docker")
            .args(["volume", "rm", "-f"])
            .args(&volumes)
            .output();
    }
}

/// The tenant image the platform runs, built by `docker/build-tenant-image.sh` (which
/// scripts/test runs first).
pub fn tenant_image() -> String {
    std::env::var("WEBSPLAT_TEST_TENANT_IMAGE")
        .unwrap_or_else(|_| platform::config::DEFAULT_TENANT_IMAGE.to_owned())
}

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

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
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

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location header on a {} response", response.status()))
        .to_owned()
}

/// A browser-like HTTP client: keeps cookies, follows no redirects (tests look at each).
pub fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}
