//! `TestApp`: the real server on its own port, database and Redis prefix, and a browser-like
//! client (cookie jar, no redirect following).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::web::Data;
use diesel_async::AsyncConnection;
use platform::authz::roles;
use platform::users::UserId;
use platform::{AppState, Application, Config};
use reqwest::{Client, Response};
use serde_json::{Value, json};

use crate::support::{TestDb, browser_client, env_var, free_port, redis_prefix};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub db: TestDb,
    pub env: Vec<(String, String)>,
    port: u16,
    handle: ServerHandle,
    pub state: Data<AppState>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Vec::new()).await
    }

    /// Extra `WEBSPLAT_*` settings override the test defaults.
    pub async fn spawn_with(extra: Vec<(String, String)>) -> Self {
        let db = TestDb::create().await;
        let prefix = redis_prefix();
        let port = free_port();
        let mut env = vec![
            ("WEBSPLAT_DATABASE_URL".to_owned(), db.url.clone()),
            (
                "WEBSPLAT_REDIS_URL".to_owned(),
                env_var("WEBSPLAT_TEST_REDIS_URL"),
            ),
            ("WEBSPLAT_REDIS_KEY_PREFIX".to_owned(), prefix.clone()),
            ("WEBSPLAT_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            (
                "WEBSPLAT_PUBLIC_URL".to_owned(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("WEBSPLAT_DATABASE_POOL_SIZE".to_owned(), "4".to_owned()),
            ("WEBSPLAT_REDIS_POOL_SIZE".to_owned(), "4".to_owned()),
            // Containers only where a test asks for them (tests/api/workspaces.rs), each
            // test's under its own deployment label so reconcilers never meet.
            (
                "WEBSPLAT_WORKSPACE_START_ON_SIGN_IN".to_owned(),
                "false".to_owned(),
            ),
            (
                "WEBSPLAT_DEPLOYMENT".to_owned(),
                crate::support::deployment(),
            ),
            // The AI gateway's door on a port of its own per test.
            ("WEBSPLAT_GATEWAY_PORT".to_owned(), "0".to_owned()),
            // Published sites' files: a directory of this test's own (issue #14).
            (
                "WEBSPLAT_DATA_DIR".to_owned(),
                std::env::temp_dir()
                    .join(format!(
                        "websplat-test-data-{}",
                        uuid::Uuid::new_v4().simple()
                    ))
                    .display()
                    .to_string(),
            ),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| *key != k);
            env.push((k, v));
        }
        let (handle, state) = start(&env, port).await;
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            client: browser_client(),
            db,
            env,
            port,
            handle,
            state,
        }
    }

    /// Stops the server and starts a new one on the same port, database and Redis: what a
    /// platform restart (or a deploy) does. The client keeps its cookies.
    pub async fn restart(&mut self) {
        self.handle.stop(true).await;
        (self.handle, self.state) = start(&self.env, self.port).await;
    }

    /// Carries on in a new browser (no cookies), as another person would.
    pub fn switch_browser(&mut self) {
        self.client = browser_client();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// A same-origin JSON POST, as the platform's own pages send it.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .header("Origin", &self.base)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .header("Origin", &self.base)
            .send()
            .await
            .expect("DELETE")
    }

    /// Registers as the sign-in page does: the registration (202, the same answer for a new
    /// and a taken address), then a sign-in with the same address and password. Returns the
    /// sign-in's answer (200 with the session), or the registration's when it was refused.
    pub async fn register(&self, email: &str, password: &str) -> Response {
        let r = self
            .post(
                "/api/v1/auth/register",
                &json!({"email": email, "password": password, "display_name": "Test User"}),
            )
            .await;
        if r.status() != 202 {
            return r;
        }
        self.login(email, password).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers and signs in a fresh account; returns its `me` JSON.
    pub async fn signed_in(&self, email: &str) -> Value {
        let r = self.register(email, PASSWORD).await;
        assert_eq!(
            r.status(),
            200,
            "register: {}",
            r.text().await.unwrap_or_default()
        );
        body(r).await["user"].clone()
    }

    /// `GET /api/v1/me` as a program does: with an API token and no cookie.
    pub async fn me_with_token(&self, token: &str) -> Response {
        reqwest::Client::new()
            .get(self.url("/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /api/v1/me")
    }

    /// Grants a role as an admin would (through the same functions as the admin API), and
    /// waits for this replica to apply it.
    pub async fn grant(&self, user: &str, role: &str) {
        let user = UserId(user.parse().expect("a user id"));
        let mut conn = self.state.db.get().await.expect("db");
        conn.transaction(async |conn| {
            roles::lock(conn).await?;
            roles::grant(conn, user, role).await
        })
        .await
        .expect("grant the role");
        self.state.authz.changed().await.expect("reload the policy");
    }

    /// A new user holding `role`, in a client of its own, with an API token; returns
    /// (the user's `me`, a client signed in with a session, the token).
    pub async fn user_with_role(&self, email: &str, role: Option<&str>) -> (Value, Client, String) {
        let client = browser_client();
        let r = client
            .post(self.url("/api/v1/auth/register"))
            .header("Origin", &self.base)
            .json(&json!({"email": email, "password": PASSWORD, "display_name": email}))
            .send()
            .await
            .expect("register");
        assert_eq!(r.status(), 202, "register {email}");
        let r = client
            .post(self.url("/api/v1/auth/login"))
            .header("Origin", &self.base)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("sign in");
        assert_eq!(r.status(), 200, "sign in {email}");
        let me = body(r).await["user"].clone();
        if let Some(role) = role {
            self.grant(me["id"].as_str().expect("id"), role).await;
        }
        let r = client
            .post(self.url("/api/v1/tokens"))
            .header("Origin", &self.base)
            .json(&json!({"name": "tests"}))
            .send()
            .await
            .expect("token");
        assert_eq!(r.status(), 201, "token for {email}");
        let token = body(r).await["token"].as_str().expect("token").to_owned();
        (me, client, token)
    }

    /// `/metrics`, read as an operator would (a Prometheus scraper with an operator's token).
    pub async fn metrics(&self) -> String {
        let (_, _, token) = self
            .user_with_role(
                &format!("scraper-{}@example.com", uuid::Uuid::new_v4().simple()),
                Some("operator"),
            )
            .await;
        let r = reqwest::Client::new()
            .get(self.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(r.status(), 200, "an operator reads /metrics");
        r.text().await.expect("metrics")
    }

    pub async fn me_status(&self) -> u16 {
        self.get("/api/v1/me").await.status().as_u16()
    }

    /// A request as a program with an API token (no cookie) sends it.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        json_body: Option<Value>,
    ) -> Response {
        let mut request = reqwest::Client::new()
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(b) = json_body {
            request = request.json(&b);
        }
        request.send().await.expect("request")
    }

    /// The audit records matching a query string, newest first (read with an admin's token).
    pub async fn audit(&self, admin_token: &str, query: &str) -> Vec<Value> {
        let r = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/admin/audit?{query}"),
                admin_token,
                None,
            )
            .await;
        assert_eq!(r.status(), 200, "read the audit log");
        body(r).await["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Runs a statement on this test's database, as an operator at a psql prompt would.
    pub async fn sql(&self, statement: &str) {
        use diesel_async::RunQueryDsl;
        let mut conn = self.db.connect().await;
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    /// The first column of the first row of a query, as text (`''` when there is none).
    pub async fn query_one(&self, query: &str) -> String {
        use diesel::QueryableByName;
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct One {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let mut conn = self.db.connect().await;
        diesel::sql_query(format!("SELECT COALESCE(({query})::text, '') AS v"))
            .get_results::<One>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .into_iter()
            .next()
            .map(|o| o.v)
            .unwrap_or_default()
    }

    /// Rows in a table of this test's database.
    pub async fn count(&self, table: &str) -> i64 {
        use diesel::QueryableByName;
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.db.connect().await;
        diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result::<Count>(&mut conn)
            .await
            .expect("count")
            .n
    }
}

/// What a test made in Docker goes with it: its containers and volumes carry its own
/// deployment label.
impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((_, dir)) = self.env.iter().find(|(k, _)| k == "WEBSPLAT_DATA_DIR") {
            let _ = std::fs::remove_dir_all(dir);
        }
        let Some((_, deployment)) = self.env.iter().find(|(k, _)| k == "WEBSPLAT_DEPLOYMENT")
        else {
            return;
        };
        crate::support::remove_deployment(deployment);
    }
}

async fn start(env: &[(String, String)], port: u16) -> (ServerHandle, Data<AppState>) {
    let config = Config::from_sources(None, env.to_vec()).expect("test configuration");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the test port");
    let app = Application::with_listener(config, listener)
        .await
        .expect("start the platform");
    let handle = app.handle();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    (handle, state)
}

pub async fn body(r: Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
}

/// The `error.code` of an error response, after checking its status.
pub async fn error_code(r: Response, status: u16) -> String {
    assert_eq!(r.status(), status, "unexpected status");
    let b = body(r).await;
    assert!(
        b["error"]["request_id"].is_string(),
        "every error names its request: {b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{b}"
    );
    b["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Whether a response sets a non-empty session cookie.
pub fn sets_session(r: &Response) -> bool {
    r.headers().get_all("set-cookie").iter().any(|v| {
        v.to_str()
            .is_ok_and(|c| c.contains("websplat_session=") && !c.contains("websplat_session=;"))
    })
}

/// A small HTTP server of the test's own (a provider speaking a third party's wire format),
/// on a free loopback port, stopped when dropped.
pub struct LocalServer {
    pub base: String,
    handle: ServerHandle,
}

impl LocalServer {
    pub fn start<F>(configure: F) -> Self
    where
        F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let server =
            actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
                .workers(1)
                .listen(listener)
                .expect("listen")
                .run();
        let handle = server.handle();
        tokio::spawn(server);
        LocalServer { base, handle }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// The value of the response's first `Set-Cookie` header.
pub fn set_cookie(r: &Response) -> String {
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a Set-Cookie header")
        .to_owned()
}

/// Everything the platform logs during a test, captured in memory.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Installs a global subscriber at debug level writing into memory (one per test process).
    pub fn capture() -> Self {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the log capture is the first subscriber of this process");
        logs
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
