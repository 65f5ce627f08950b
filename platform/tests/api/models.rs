//! `platform models` as a real process (the built binary): it serves the local model
//! with no database or Redis configured, and answers its health probe.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{ChildGuard, free_port, wait_for_http};

/// Starts the built `platform models` on a free port with the files `scripts/test` fetched,
/// and waits for its health probe; the process ends when the guard drops. Returns its base URL.
pub(crate) async fn start_platform_models() -> (ChildGuard, String) {
    let dir = std::env::var("WEBSPLAT_TEST_MODELS_DIR").unwrap_or_else(|_| {
        panic!("WEBSPLAT_TEST_MODELS_DIR is not set: run scripts/test (it runs scripts/models)")
    });
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_platform"))
        .arg("models")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WEBSPLAT_MODELS_LISTEN", format!("127.0.0.1:{port}"))
        .env("WEBSPLAT_MODELS_DIR", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start platform models");
    let guard = ChildGuard(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_for_http(
        &format!("{base}/healthz"),
        "platform models",
        Duration::from_secs(120),
    )
    .await;
    (guard, base)
}

#[tokio::test]
async fn platform_models_serves_the_local_model_as_its_own_process() {
    let (_guard, base) = start_platform_models().await;
    let r = reqwest::get(format!("{base}/v1/models"))
        .await
        .expect("the model list");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-websplat-model")
            .and_then(|v| v.to_str().ok()),
        Some("local-small")
    );
    let list: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(list["data"][0]["id"], "smollm2-135m-instruct");
}
