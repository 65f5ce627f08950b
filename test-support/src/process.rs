//! Processes and ports for tests: a free loopback port, a child process killed when the test
//! ends, and waiting for a server to answer. A child must never outlive its test.

use std::net::TcpListener;
use std::process::Child;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed when the test ends.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `url` answers 2xx, or panics after `timeout` with `what` in the message.
pub async fn wait_for_http(url: &str, what: &str, timeout: Duration) {
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "{what} did not come up at {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
