//! What the shared WebDriver client (`tests/e2e/webdriver.rs`) needs from its crate
//! (`crate::support::{ChildGuard, free_port, wait_for_http}`), without the platform's
//! PostgreSQL helpers: the runtime's tests need no database.

use std::cell::Cell;
use std::net::TcpListener;
use std::process::Child;
use std::time::{Duration, Instant};

thread_local! {
    /// The port `free_port` last handed out on this thread. `Browser::start` takes
    /// chromedriver's port from `free_port`; `driver::Session::attach` reads it here to
    /// speak to the same chromedriver (each test runs on its own thread).
    static LAST_PORT: Cell<u16> = const { Cell::new(0) };
}

pub fn free_port() -> u16 {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    LAST_PORT.with(|p| p.set(port));
    port
}

/// The port `free_port` last returned on this thread.
pub fn last_port() -> u16 {
    LAST_PORT.with(Cell::get)
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
