//! The harness of the workspace tests: the platform with workspaces started at sign-in on a
//! deployment of its own, the Docker containers it made, and a `Person` who signs in and uses
//! their workspace through a browser-like client. It only looks at containers that carry
//! the test's own deployment label.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, body};

pub use crate::support::{Loopback, workspace_browser as browser};

pub async fn app_with_workspaces(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        (
            "WEBSPLAT_WORKSPACE_START_ON_SIGN_IN".to_owned(),
            "true".to_owned(),
        ),
        (
            "WEBSPLAT_TENANT_IMAGE".to_owned(),
            crate::support::tenant_image(platform::config::DEFAULT_TENANT_IMAGE),
        ),
        ("WEBSPLAT_TENANT_READY_TIMEOUT".to_owned(), "60s".to_owned()),
        (
            "WEBSPLAT_TENANT_RECONCILE_INTERVAL".to_owned(),
            "2s".to_owned(),
        ),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    TestApp::spawn_with(env).await
}

pub fn deployment(app: &TestApp) -> String {
    app.env
        .iter()
        .find(|(k, _)| k == "WEBSPLAT_DEPLOYMENT")
        .map(|(_, v)| v.clone())
        .expect("deployment")
}

pub fn docker() -> Docker {
    Docker::connect_with_local_defaults().expect("docker")
}

/// This test's containers (running or not).
pub async fn containers(app: &TestApp) -> Vec<ContainerSummary> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("websplat.deployment={}", deployment(app))],
    )]);
    docker()
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers")
}

/// A person with a browser: signs up (which signs in), and can open their workspace.
pub struct Person {
    pub client: Client,
    pub email: String,
    pub id: String,
}

impl Person {
    pub async fn sign_up(app: &TestApp, email: &str) -> Person {
        let client = browser();
        let r = client
            .post(app.url("/api/v1/auth/register"))
            .header("Origin", &app.base)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("register");
        assert_eq!(r.status(), 202);
        let r = client
            .post(app.url("/api/v1/auth/login"))
            .header("Origin", &app.base)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("sign in");
        assert_eq!(r.status(), 200);
        let me = body(r).await;
        Person {
            client,
            email: email.to_owned(),
            id: me["user"]["id"].as_str().expect("id").to_owned(),
        }
    }

    pub async fn sign_in(&self, app: &TestApp) {
        let r = self
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("Origin", &app.base)
            .json(&json!({"email": self.email, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200);
    }

    pub async fn sign_out(&self, app: &TestApp) {
        let r = self
            .client
            .post(app.url("/auth/logout"))
            .header("Origin", &app.base)
            .send()
            .await
            .expect("logout");
        assert_eq!(r.status(), 204);
    }

    /// A same-origin POST on the platform, as the dashboard sends it.
    pub async fn post(&self, app: &TestApp, path: &str) -> reqwest::Response {
        self.client
            .post(app.url(path))
            .header("Origin", &app.base)
            .send()
            .await
            .expect("POST")
    }

    pub async fn workspace(&self, app: &TestApp) -> Value {
        let r = self
            .client
            .get(app.url("/api/v1/workspace"))
            .send()
            .await
            .expect("workspace");
        assert_eq!(r.status(), 200);
        body(r).await
    }

    /// Waits for the workspace to reach `state`; fails on `failed` (unless awaited).
    pub async fn wait_for(&self, app: &TestApp, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let w = self.workspace(app).await;
            if w["state"] == state {
                return w;
            }
            assert!(
                w["state"] != "failed" || state == "failed",
                "the workspace failed: {w}"
            );
            assert!(
                Instant::now() < deadline,
                "the workspace never became {state}: {w}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Follows `/workspace/open` through the platform's and the workspace origin's
    /// redirects up to the link that carries the one-time code (not yet redeemed).
    pub async fn handoff_link(&self, app: &TestApp) -> String {
        websplat_test_support::handoff_link(&self.client, app.url("/workspace/open")).await
    }

    /// Opens the workspace as a browser does: `/workspace/open` on the platform, then the
    /// handoff on the workspace origin, which sets its cookie. Returns the origin.
    pub async fn open(&self, app: &TestApp) -> String {
        self.open_with_cookie(app).await.0
    }

    /// [`Person::open`], also returning the workspace cookie (`name=value`).
    pub async fn open_with_cookie(&self, app: &TestApp) -> (String, String) {
        let handoff = self.handoff_link(app).await;
        assert!(handoff.contains(".ws.localhost:"), "{handoff}");
        let r = self.client.get(&handoff).send().await.expect("handoff");
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("websplat_ws="))
            .expect("a workspace cookie")
            .to_owned();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(
            !cookie.to_ascii_lowercase().contains("domain="),
            "host-only: {cookie}"
        );
        let url = reqwest::Url::parse(&handoff).expect("url");
        let origin = format!(
            "http://{}:{}",
            url.host_str().expect("host"),
            url.port().expect("port")
        );
        let pair = cookie.split(';').next().unwrap_or_default().to_owned();
        (origin, pair)
    }

    /// Writes a note in the workspace at `origin` (the persistence probe), expecting 201.
    pub async fn write_note(&self, origin: &str, text: &str) {
        let r = self
            .call(
                origin,
                reqwest::Method::POST,
                "/api/v1/notes",
                Some(json!({ "text": text })),
            )
            .await;
        assert_eq!(r.status(), 201, "writing a note");
    }

    /// A request on the workspace origin, as the workspace's own page sends it, retried
    /// while the workspace is (re)starting.
    pub async fn call(
        &self,
        origin: &str,
        method: reqwest::Method,
        path: &str,
        json: Option<Value>,
    ) -> reqwest::Response {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut request = self
                .client
                .request(method.clone(), format!("{origin}{path}"))
                .header("Origin", origin)
                .header("Accept", "application/json");
            if let Some(json) = &json {
                request = request.json(json);
            }
            let r = request.send().await.expect("workspace request");
            let retry = matches!(
                r.status(),
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY
            );
            if !retry || Instant::now() > deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_owned()
}

/// One user's containers.
pub async fn containers_of(app: &TestApp, user: &str) -> Vec<ContainerSummary> {
    containers(app)
        .await
        .into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l.get("websplat.user").map(String::as_str) == Some(user))
        })
        .collect()
}

pub fn running(list: &[ContainerSummary]) -> Vec<&ContainerSummary> {
    list.iter()
        .filter(|c| c.state.as_ref().is_some_and(|s| s.to_string() == "running"))
        .collect()
}

/// Alice, on an access level of her own made by an admin (its name, memory, storage and
/// largest upload in MiB), with her workspace started and ready.
pub async fn alice_on_a_level(
    app: &TestApp,
    name: &str,
    memory: u32,
    storage: u32,
    upload: u32,
) -> Person {
    let (_, _, admin) = app.user_with_role("admin@example.com", Some("admin")).await;
    let level = json!({
        "name": name, "description": format!("{memory} MiB of memory"),
        "features": ["sites", "documents"], "cpu_millicores": 250, "memory_mib": memory,
        "storage_mib": storage, "max_upload_mib": upload, "ai_tokens_per_day": 0,
        "read_requests_per_minute": 600, "write_requests_per_minute": 600,
        "idle_timeout_seconds": 600
    });
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(level),
        )
        .await;
    assert_eq!(r.status(), 201);
    let alice = Person::sign_up(app, "alice@example.com").await;
    let r = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/users/{}/access-level", alice.id),
            &admin,
            Some(json!({"access_level": name})),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        alice.post(app, "/api/v1/workspace/start").await.status(),
        202
    );
    alice.wait_for(app, "ready").await;
    alice
}

/// An admin gives the `free` level (new users' level) 640 MiB of memory, its other limits
/// as seeded: warm and made-ahead containers of the old spec must be remade.
pub async fn give_free_640_mib(app: &TestApp, admin: &str) {
    let level = json!({
        "description": "more memory", "features": ["sites", "documents", "chat", "seo", "export"],
        "cpu_millicores": 500, "memory_mib": 640, "storage_mib": 1024, "max_upload_mib": 10,
        "ai_tokens_per_day": 50000, "read_requests_per_minute": 600,
        "write_requests_per_minute": 120, "idle_timeout_seconds": 900
    });
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/admin/access-levels/free",
            admin,
            Some(level),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}
