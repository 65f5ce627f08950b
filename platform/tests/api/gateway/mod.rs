//! The AI gateway: its door (a listener of its own that only tenants' signed calls pass),
//! OpenAI-compatible providers passed through, budgets, the ledger and routing, against
//! local servers speaking the providers' wire format (`upstream.rs`), real PostgreSQL and
//! Redis, and tenants on the in-memory engine (`network.rs`: a real container on Docker).

mod budget;
mod door;
mod formats;
mod keys;
mod local_model;
mod native;
mod network;
mod rates;
mod routing;
mod search;
mod upstream;
mod views;

use std::time::{Duration, Instant};

use platform::tenants::Slug;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};
pub use upstream::{Fault, Upstream};

/// The key the test providers are configured with: it must never leave the platform
/// except towards the provider.
pub const PROVIDER_KEY: &str = "sk-test-0123456789-never-shown";

/// A platform whose tenants run on the in-memory engine, with the provider `fake` (an
/// OpenAI-compatible server) behind the aliases `fast` and `embed`, plus `extra`.
pub async fn gateway_app(upstream: &Upstream, extra: &[(&str, String)]) -> TestApp {
    let mut env: Vec<(&str, String)> = vec![
        ("WEBSPLAT_AI_FAKE_KIND", "openai".into()),
        ("WEBSPLAT_AI_FAKE_BASE_URL", upstream.base_url.clone()),
        ("WEBSPLAT_AI_FAKE_API_KEY", PROVIDER_KEY.into()),
        ("WEBSPLAT_AI_FAKE_MODELS", "fake-chat,fake-embed".into()),
        ("WEBSPLAT_AI_ALIAS_FAST", "fake/fake-chat".into()),
        ("WEBSPLAT_AI_ALIAS_EMBED", "fake/fake-embed".into()),
        ("WEBSPLAT_GATEWAY_FIRST_BYTE_TIMEOUT", "1s".into()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k, v.clone()));
    }
    tenants_app(&env).await
}

/// A platform whose tenants run on the in-memory engine, with `env` (its AI providers).
pub async fn tenants_app(extra: &[(&str, String)]) -> TestApp {
    let deployment = crate::support::deployment();
    let mut env: Vec<(String, String)> = vec![
        ("WEBSPLAT_ORCHESTRATOR".into(), "memory".into()),
        ("WEBSPLAT_DEPLOYMENT".into(), deployment.clone()),
        (
            "WEBSPLAT_TENANT_IMAGE".into(),
            format!("memory/{deployment}:1"),
        ),
        ("WEBSPLAT_TENANT_READY_TIMEOUT".into(), "5s".into()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), v.clone()));
    }
    TestApp::spawn_with(env).await
}

/// A signed-in user's running workspace, seen from inside: its user, its secret and the
/// door, as the runtime gets them in its environment.
pub struct Tenant {
    pub user: platform::users::UserId,
    pub secret: String,
    pub door: String,
    pub client: reqwest::Client,
    /// The user's own browser session on the platform (for `/api/v1/me/…`).
    pub session: reqwest::Client,
}

impl Tenant {
    /// Signs up `email`, starts their workspace and waits until it is ready.
    pub async fn start(app: &TestApp, email: &str) -> Tenant {
        let client = crate::support::browser_client();
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
        let me: Value = r.json().await.expect("me");
        let user = platform::users::UserId(
            me["user"]["id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("uuid"),
        );
        let r = client
            .post(app.url("/api/v1/workspace/start"))
            .header("Origin", &app.base)
            .send()
            .await
            .expect("start");
        assert_eq!(r.status(), 202);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let w: Value = client
                .get(app.url("/api/v1/workspace"))
                .send()
                .await
                .expect("workspace")
                .json()
                .await
                .expect("json");
            if w["state"] == "ready" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the workspace never became ready: {w}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let slug = app
            .query_one(&format!(
                "SELECT slug FROM workspaces WHERE user_id = '{}'",
                user.0
            ))
            .await;
        let route = app
            .state
            .tenants
            .routing
            .route(&Slug::parse(&slug).expect("slug"))
            .await
            .expect("redis")
            .expect("a route");
        Tenant {
            user,
            secret: secrecy::ExposeSecret::expose_secret(&app.state.tenants.keys.of_route(&route))
                .to_owned(),
            door: app
                .state
                .tenants
                .gateway_url
                .get()
                .cloned()
                .expect("the door listens"),
            client: reqwest::Client::new(),
            session: client,
        }
    }

    /// A call to the door signed as the runtime signs it.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let header =
            platform::tenants::identity::sign_now(&self.secret, self.user, method.as_str(), path);
        self.call_with(method, path, body, Some(header)).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        identity: Option<String>,
    ) -> Response {
        let mut request = self.client.request(method, format!("{}{path}", self.door));
        if let Some(h) = identity {
            request = request.header(platform::tenants::identity::HEADER, h);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        request.send().await.expect("a call to the door")
    }

    pub async fn chat(&self, body: &Value) -> Response {
        self.call(Method::POST, "/v1/chat/completions", Some(body))
            .await
    }
}

pub fn hello(stream: bool) -> Value {
    json!({"model": "fast", "messages": [{"role": "user", "content": "Say hello."}], "stream": stream, "max_tokens": 50})
}

/// The SSE `data:` payloads of a streamed answer, as a client reads them.
pub fn events(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.trim().to_owned())
        .collect()
}

/// The ledger's rows for a user (waits for `n` of them: a stream's is written as it ends).
pub async fn ledger(app: &TestApp, user: &platform::users::UserId, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let raw = app
            .query_one(&format!(
                "SELECT COALESCE(json_agg(l ORDER BY id), '[]') FROM ai_ledger l WHERE user_id = '{}'",
                user.0
            ))
            .await;
        let rows: Vec<Value> = serde_json::from_str(&raw).expect("json");
        if rows.len() >= n || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sets an access level's AI budget, as an admin's edit would.
pub async fn set_budget(app: &TestApp, level: &str, tokens: i64) {
    use diesel_async::RunQueryDsl;
    let mut conn = app.db.connect().await;
    diesel::sql_query(format!(
        "UPDATE access_levels SET ai_tokens_per_day = {tokens} WHERE name = '{level}'"
    ))
    .execute(&mut conn)
    .await
    .expect("set the budget");
    // As the admin API does after a change of levels.
    app.state.gateway.callers.changed(None).await;
}
