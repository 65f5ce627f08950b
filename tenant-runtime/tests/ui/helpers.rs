//! The harness of the UI tests: the runtime binary on a port and data directory of its own,
//! a headless Chromium opened on it, and the steps a person takes in the workspace UI (create
//! a project, open a page in the editor, replace and save, wait for the preview and the SEO
//! score). It drives the UI as a person does and reads what the page shows.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use websplat_test_support::webdriver::Browser;
use websplat_test_support::{ChildGuard, free_port, wait_for_http};

use crate::driver::Session;

/// Generous, for slow CI machines; every wait ends as soon as its condition holds.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A program for the tests: `$variable`, or else the first of `names` on the PATH.
pub fn program(variable: &str, names: &[&str]) -> String {
    if let Ok(path) = std::env::var(variable) {
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate.to_string_lossy().into_owned();
            }
        }
    }
    panic!(
        "{variable} is not set and none of {names:?} is on the PATH: run the tests with `scripts/test`"
    )
}

/// The runtime binary on a free port and a data directory of its own; killed, and the
/// directory removed, when the test ends (the log is kept and named if the test failed).
pub struct Runtime {
    pub base: String,
    pub data: PathBuf,
    pub log: PathBuf,
    pub http: reqwest::Client,
    pub _child: ChildGuard,
}

impl Runtime {
    pub async fn start() -> Self {
        let name = format!("websplat-ui-{}", uuid::Uuid::new_v4().simple());
        let data = std::env::temp_dir().join(&name);
        let log = std::env::temp_dir().join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).expect("create the runtime log");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_tenant-runtime"))
            .env("WEBSPLAT_RUNTIME_DATA_DIR", &data)
            .env("WEBSPLAT_RUNTIME_LISTEN", format!("127.0.0.1:{port}"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(
                log_file.try_clone().expect("clone the log handle"),
            ))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start the tenant-runtime binary");
        let child = ChildGuard(child);
        let base = format!("http://127.0.0.1:{port}");
        wait_for_http(&format!("{base}/healthz"), "the runtime", TIMEOUT).await;
        Runtime {
            base,
            data,
            log,
            http: reqwest::Client::new(),
            _child: child,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A page's content and ETag, read through the API.
    pub async fn page(&self, project: &str, path: &str) -> (String, String) {
        let r = self
            .http
            .get(self.url(&format!("/api/v1/projects/{project}/pages/{path}")))
            .send()
            .await
            .expect("GET page");
        assert_eq!(r.status(), 200, "GET {path}");
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .expect("an ETag")
            .to_owned();
        (r.text().await.expect("page text"), etag)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
        if std::thread::panicking() {
            eprintln!("the runtime's log: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Waits until job `id` has finished; its JSON.
pub async fn wait_for_job(runtime: &Runtime, id: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let job: Value = runtime
            .http
            .get(runtime.url(&format!("/api/v1/jobs/{id}")))
            .send()
            .await
            .expect("GET job")
            .json()
            .await
            .expect("a job");
        if job["status"] == "succeeded" || job["status"] == "failed" {
            return job;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "job {id} did not finish: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The runtime, a browser on its UI, and the extra WebDriver commands.
pub async fn start() -> (Runtime, Browser, Session) {
    let runtime = Runtime::start().await;
    let browser = Browser::start(
        &program("WEBSPLAT_TEST_CHROMEDRIVER", &["chromedriver"]),
        &program("WEBSPLAT_TEST_CHROMIUM", &["chromium", "chromium-browser"]),
    )
    .await;
    let session = Session::for_browser(&browser);
    (runtime, browser, session)
}

pub async fn click(browser: &Browser, css: &str) {
    let element = browser.wait_for(css, TIMEOUT).await;
    browser.click(&element).await;
}

pub async fn type_into(browser: &Browser, css: &str, text: &str) {
    let element = browser.wait_for(css, TIMEOUT).await;
    browser.send_keys(&element, text).await;
}

/// Creates a project from the project list; returns its id (from the URL it lands on).
pub async fn create_project(browser: &Browser, session: &Session, name: &str) -> String {
    type_into(browser, "#new-project-name", name).await;
    click(browser, "#create-project").await;
    browser.wait_for("#generate-form", TIMEOUT).await;
    let hash = session
        .wait_js(
            "the project's URL",
            "return /^#\\/projects\\/[0-9a-f-]{36}\\/generate$/.test(location.hash) && location.hash",
            TIMEOUT,
        )
        .await;
    hash.as_str()
        .and_then(|h| h.split('/').nth(2))
        .expect("a project id in the URL")
        .to_owned()
}

/// Opens the editor tab and waits until `path` is loaded in it.
pub async fn open_in_editor(browser: &Browser, session: &Session, path: &str) {
    click(browser, "#tab-edit").await;
    click(browser, &format!(".file-item[data-path=\"{path}\"]")).await;
    session
        .wait_js(
            &format!("{path} in the editor"),
            &format!(
                "const t = document.querySelector('#page-editor'); \
                 return !!t && !t.disabled && document.querySelector('#editor-title')?.textContent === {path:?};"
            ),
            TIMEOUT,
        )
        .await;
}

pub async fn editor_text(session: &Session) -> String {
    session
        .js("return document.querySelector('#page-editor').value")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Replaces the editor's text by typing, saves, and waits until the save is done.
pub async fn replace_and_save(browser: &Browser, session: &Session, text: &str) {
    session.clear("#page-editor").await;
    type_into(browser, "#page-editor", text).await;
    assert_eq!(
        editor_text(session).await,
        text,
        "the editor holds what was typed"
    );
    click(browser, "#save-page").await;
    session
        .wait_js(
            "the save to finish",
            "const s = document.querySelector('#editor-state')?.textContent ?? ''; \
             return s.startsWith('Saved') && !document.querySelector('#save-page').disabled;",
            TIMEOUT,
        )
        .await;
}

/// Waits until the preview iframe shows `expected` as the text of `css`, then returns to
/// the workspace's document.
pub async fn wait_for_preview(browser: &Browser, session: &Session, css: &str, expected: &str) {
    session.enter_frame("#preview-frame").await;
    browser.wait_for_text(css, expected, TIMEOUT).await;
    session.leave_frames().await;
}

/// The SEO tab's project score, once loaded.
pub async fn seo_score(browser: &Browser, session: &Session) -> i64 {
    click(browser, "#tab-seo").await;
    let score = session
        .wait_js(
            "the SEO score",
            "const s = document.querySelector('#seo-score')?.textContent ?? ''; \
             return /^\\d+$/.test(s) && !document.querySelector('#seo-refresh').disabled && s;",
            TIMEOUT,
        )
        .await;
    score
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a numeric score")
}
