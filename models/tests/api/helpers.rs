//! The test server: the real models loaded from the fetched files, listening on a free
//! loopback port, and a client for it.

use std::path::PathBuf;

use serde_json::Value;
use websplat_models::{ModelsConfig, RunningServer};

/// The models directory `scripts/test` exports. Missing files fail the test with the
/// command that fetches them; nothing is skipped.
pub fn models_dir() -> PathBuf {
    let dir = std::env::var("WEBSPLAT_TEST_MODELS_DIR").unwrap_or_else(|_| {
        panic!(
            "WEBSPLAT_TEST_MODELS_DIR is not set: run the tests with scripts/test, which fetches the model files with scripts/models"
        )
    });
    let dir = PathBuf::from(dir);
    for file in [
        websplat_models::chat::GGUF_PATH,
        "all-minilm-l6-v2/model.safetensors",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: run scripts/models to fetch the model files",
            dir.join(file).display()
        );
    }
    dir
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    _server: RunningServer,
}

impl TestServer {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(change: impl FnOnce(&mut ModelsConfig)) -> Self {
        let mut config = ModelsConfig::for_tests(models_dir());
        change(&mut config);
        let server = websplat_models::spawn(config)
            .await
            .expect("the local model server starts");
        Self {
            base: format!("http://{}", server.address),
            client: reqwest::Client::new(),
            _server: server,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn chat(&self, body: &Value) -> (u16, Value) {
        let r = self.post("/v1/chat/completions", body).await;
        let status = r.status().as_u16();
        (status, r.json().await.expect("a JSON answer"))
    }

    /// Reads a streamed answer to its end: the `data:` payloads, in order.
    pub async fn stream(&self, body: &Value) -> Vec<String> {
        let r = self.post("/v1/chat/completions", body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let text = r.text().await.expect("the whole stream");
        sse_data(&text)
    }

    /// The value of a counter in `/metrics` (0 when it has not been counted yet).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

/// The payloads of the `data:` lines of an SSE body.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Asserts OpenAI's error shape and returns the message.
pub fn error_message(body: &Value) -> String {
    let error = &body["error"];
    assert!(
        error["type"].as_str().is_some_and(|t| !t.is_empty()),
        "an error type in {body}"
    );
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.len() > 10, "a helpful message in {body}");
    message
}
