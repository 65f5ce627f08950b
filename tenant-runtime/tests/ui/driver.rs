//! WebDriver commands the shared client (`websplat_test_support::webdriver`) does not have — run a
//! script, switch frames, read a property, clear a field — sent to the same chromedriver
//! session (`Browser::session_url`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key under which W3C WebDriver returns an element reference (fixed by the spec).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const POLL: Duration = Duration::from_millis(100);

pub struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    url: String,
}

impl Session {
    /// Sends extra commands to `browser`'s session.
    pub fn for_browser(browser: &websplat_test_support::webdriver::Browser) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        Session {
            url: browser.session_url().to_owned(),
            http,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let status = response.status();
        let mut answer: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: unreadable answer: {e}"));
        let value = answer["value"].take();
        assert!(
            status.is_success(),
            "WebDriver {path} failed ({status}): {value}"
        );
        value
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the current frame;
    /// returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// `execute` with no arguments.
    pub async fn js(&self, script: &str) -> Value {
        self.execute(script, Vec::new()).await
    }

    /// Polls `script` until it returns something truthy; returns that. Panics after
    /// `timeout`, with what the script last returned and `what` was awaited.
    pub async fn wait_js(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.js(script).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                started.elapsed() < timeout,
                "timed out waiting for {what}; the script last returned {value}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first element matching `css` in the current frame.
    async fn element(&self, css: &str) -> String {
        let value = self
            .command(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        value[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element reference for {css:?}: {value}"))
            .to_owned()
    }

    /// Makes the iframe matching `css` the current frame.
    pub async fn enter_frame(&self, css: &str) {
        let element = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            "/frame",
            json!({ "id": { ELEMENT_KEY: element } }),
        )
        .await;
    }

    /// Back to the top-level document.
    pub async fn leave_frames(&self) {
        self.command(reqwest::Method::POST, "/frame", json!({ "id": null }))
            .await;
    }

    /// Empties the input or textarea matching `css` (WebDriver "Element Clear").
    pub async fn clear(&self, css: &str) {
        let element = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            json!({}),
        )
        .await;
    }
}
