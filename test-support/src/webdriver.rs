//! A tiny W3C WebDriver client for chromedriver, spoken with reqwest: just what the
//! end-to-end and UI tests need. `Browser::start` runs chromedriver on a free port and opens a
//! headless Chromium session; dropping the `Browser` (also while a test panics) deletes the
//! session, which closes Chromium, and then kills chromedriver.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{ChildGuard, free_port, wait_for_http};

/// The key under which W3C WebDriver returns an element reference (fixed by the spec).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How often the `wait_*` helpers look again.
const POLL: Duration = Duration::from_millis(100);

/// An error answered by chromedriver (or a failure to reach it).
#[derive(Debug)]
pub struct WdError {
    /// The W3C error code, e.g. `no such element`; `http` when chromedriver was unreachable.
    pub error: String,
    pub message: String,
}

impl fmt::Display for WdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// A reference to an element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    session_url: String,
    /// chromedriver's output: removed at the end, kept (and named) when the test failed.
    log: PathBuf,
    // Dropped after `Browser::drop` has deleted the session.
    _chromedriver: ChildGuard,
}

impl Browser {
    /// `http://127.0.0.1:<port>/session/<id>`, for commands this client does not have
    /// (the runtime's UI tests send them; the platform's tests do not).
    pub fn session_url(&self) -> &str {
        &self.session_url
    }

    /// Starts `chromedriver` and a headless `chromium` session.
    pub async fn start(chromedriver: &str, chromium: &str) -> Self {
        Self::start_with(chromedriver, chromium, &[]).await
    }

    /// A browser that says it is an ordinary desktop Chromium (no "Headless" in its
    /// User-Agent): analytics skip automated browsers, so tests of counting use this.
    pub async fn start_as_visitor(chromedriver: &str, chromium: &str) -> Self {
        Self::start_with(
            chromedriver,
            chromium,
            &["--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"],
        )
        .await
    }

    /// [`Browser::start`] with more Chromium arguments.
    pub async fn start_with(chromedriver: &str, chromium: &str, extra_args: &[&str]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "websplat-e2e-chromedriver-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let log_file = std::fs::File::create(&log).expect("create the chromedriver log");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::from(
                log_file.try_clone().expect("clone the log file handle"),
            ))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start chromedriver");
        let chromedriver_guard = ChildGuard(child);
        let base = format!("http://127.0.0.1:{port}");
        wait_for_http(
            &format!("{base}/status"),
            "chromedriver",
            Duration::from_secs(30),
        )
        .await;

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1280,1024",
            "--no-first-run",
            "--no-default-browser-check",
            // Hermetic: only loopback hosts resolve (the identity provider's page links a
            // stylesheet on a CDN).
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE *.localhost, EXCLUDE 127.0.0.1",
        ];
        args.extend_from_slice(extra_args);
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    // Return from navigation at DOMContentLoaded: the tests wait for what they
                    // need themselves, and no page waits on a subresource that never comes.
                    "pageLoadStrategy": "eager",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": args,
                    },
                },
            },
        });
        let response = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("ask chromedriver for a session");
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .expect("chromedriver's session answer");
        let session_id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not open a session ({status}): {body}"))
            .to_owned();
        Browser {
            http,
            session_url: format!("{base}/session/{session_id}"),
            log,
            _chromedriver: chromedriver_guard,
        }
    }

    /// Sends one command; the `value` of the answer, or the WebDriver error in it.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.session_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let http_error = |e: reqwest::Error| WdError {
            error: "http".to_owned(),
            message: e.to_string(),
        };
        let response = request.send().await.map_err(http_error)?;
        let status = response.status();
        let mut answer: Value = response.json().await.map_err(http_error)?;
        let value = answer["value"].take();
        if status.is_success() {
            Ok(value)
        } else {
            Err(WdError {
                error: value["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_owned(),
                message: value["message"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            })
        }
    }

    async fn get(&self, path: &str) -> Result<Value, WdError> {
        self.command(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, WdError> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    /// Runs `script` (a function body; `return` gives the value) in the current page.
    pub async fn execute(&self, script: &str) -> Result<Value, WdError> {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// Makes the page `width` × `height` CSS pixels, as a phone's screen (Chromium's own
    /// device emulation: a window cannot be narrower than 500 pixels).
    pub async fn emulate_screen(&self, width: u32, height: u32) {
        self.post(
            "/goog/cdp/execute",
            json!({
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": { "width": width, "height": height, "deviceScaleFactor": 1, "mobile": true },
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("emulate a {width}x{height} screen: {e}"));
    }

    /// Navigates to `url`.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }))
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// The names of the cookies the browser holds for the current page's origin.
    pub async fn cookies(&self) -> Vec<String> {
        let value = self
            .get("/cookie")
            .await
            .unwrap_or_else(|e| panic!("read the cookies: {e}"));
        value
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn current_url(&self) -> String {
        self.try_current_url()
            .await
            .unwrap_or_else(|e| panic!("read the current URL: {e}"))
    }

    async fn try_current_url(&self) -> Result<String, WdError> {
        let value = self.get("/url").await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching `css`, if there is one now.
    pub async fn find(&self, css: &str) -> Result<Option<Element>, WdError> {
        match self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await
        {
            Ok(value) => Ok(Some(Element(
                value[ELEMENT_KEY]
                    .as_str()
                    .unwrap_or_else(|| panic!("no element reference in {value}"))
                    .to_owned(),
            ))),
            Err(e) if e.error == "no such element" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Clicks as a person does: once the element is in the middle of the view and nothing
    /// lies over it. While the page is still settling (a list loading above it shifts it,
    /// a notice covers it for a moment), the click is tried again for up to five seconds;
    /// an element that stays covered fails the test.
    pub async fn click(&self, element: &Element) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.scroll_into_view(element).await;
            match self
                .post(&format!("/element/{}/click", element.0), json!({}))
                .await
            {
                Ok(_) => return,
                Err(e) if e.error == "element click intercepted" && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                Err(e) => panic!("click {element:?}: {e}"),
            }
        }
    }

    pub async fn send_keys(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await
        .unwrap_or_else(|e| panic!("type into {element:?}: {e}"));
    }

    /// Empties a text field.
    pub async fn clear(&self, element: &Element) {
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await
            .unwrap_or_else(|e| panic!("clear {element:?}: {e}"));
    }

    /// A PNG of what the browser shows now (for a person to look at).
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let value = self
            .get("/screenshot")
            .await
            .unwrap_or_else(|e| panic!("take a screenshot: {e}"));
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("the screenshot is not base64: {e}"))
    }

    pub async fn text(&self, element: &Element) -> Result<String, WdError> {
        let value = self.get(&format!("/element/{}/text", element.0)).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Scrolls the element to the middle of the viewport at once. WebDriver's own scrolling
    /// before a click races pages that scroll smoothly (`scroll-behavior: smooth`), and the
    /// click then lands on whatever is at the point the element was headed for.
    pub async fn scroll_into_view(&self, element: &Element) {
        self.post(
            "/execute/sync",
            json!({
                "script": "arguments[0].scrollIntoView({ block: 'center', inline: 'nearest', behavior: 'instant' });",
                "args": [{ ELEMENT_KEY: element.0 }],
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("scroll {element:?} into view: {e}"));
    }

    /// Whether the element is shown (not hidden, removed from the layout or zero-sized).
    pub async fn displayed(&self, element: &Element) -> Result<bool, WdError> {
        let value = self
            .get(&format!("/element/{}/displayed", element.0))
            .await?;
        Ok(value.as_bool().unwrap_or(false))
    }

    /// A DOM property of the element (e.g. a select's `value`), as a string.
    pub async fn property(&self, element: &Element, name: &str) -> Result<String, WdError> {
        let value = self
            .get(&format!("/element/{}/property/{name}", element.0))
            .await?;
        Ok(match value {
            Value::String(text) => text,
            Value::Null => String::new(),
            other => other.to_string(),
        })
    }

    /// Waits until an element matching `css` is shown, so it can be typed into or clicked
    /// (pages reveal parts of themselves once their scripts have run).
    pub async fn wait_for_visible(&self, css: &str, timeout: Duration) -> Element {
        let started = Instant::now();
        loop {
            let seen = match self.find(css).await {
                Ok(Some(element)) => match self.displayed(&element).await {
                    Ok(true) => return element,
                    Ok(false) => "an element, hidden".to_owned(),
                    Err(e) => format!("an element ({e})"),
                },
                Ok(None) => "no element".to_owned(),
                Err(e) => format!("error: {e}"),
            };
            if started.elapsed() >= timeout {
                self.fail(&format!(
                    "no visible element matches {css:?} (last seen: {seen})"
                ))
                .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The current page's HTML, or why it could not be read.
    pub async fn source(&self) -> String {
        match self.get("/source").await {
            Ok(value) => value.as_str().unwrap_or_default().to_owned(),
            Err(e) => format!("(no page source: {e})"),
        }
    }

    /// Waits until an element matches `css`; panics after `timeout` with the page's state.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let started = Instant::now();
        let mut last_error = None;
        loop {
            match self.find(css).await {
                Ok(Some(element)) => return element,
                Ok(None) => {}
                // E.g. while the page navigates; look again.
                Err(e) => last_error = Some(e),
            }
            if started.elapsed() >= timeout {
                self.fail(&format!(
                    "no element matches {css:?} (last error: {last_error:?})"
                ))
                .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the first element matching `css` shows exactly `expected` as its text
    /// (scripts may fill it in after the page loaded).
    pub async fn wait_for_text(&self, css: &str, expected: &str, timeout: Duration) {
        let started = Instant::now();
        let mut seen = String::from("(no element)");
        loop {
            if let Ok(Some(element)) = self.find(css).await {
                match self.text(&element).await {
                    Ok(text) if text == expected => return,
                    Ok(text) => seen = format!("{text:?}"),
                    Err(e) => seen = format!("(error: {e})"),
                }
            }
            if started.elapsed() >= timeout {
                self.fail(&format!(
                    "the text of {css:?} did not become {expected:?}; last seen: {seen}"
                ))
                .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the current URL satisfies `accept`; returns it. `what` describes the wait.
    pub async fn wait_for_url(
        &self,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&url::Url) -> bool,
    ) -> url::Url {
        let started = Instant::now();
        loop {
            if let Ok(current) = self.try_current_url().await
                && let Ok(parsed) = url::Url::parse(&current)
                && accept(&parsed)
            {
                return parsed;
            }
            if started.elapsed() >= timeout {
                self.fail(&format!("the browser did not reach {what}"))
                    .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Panics with `message`, the current URL and the start of the page source.
    async fn fail(&self, message: &str) -> ! {
        let url = match self.try_current_url().await {
            Ok(url) => url,
            Err(e) => format!("(unknown: {e})"),
        };
        let source = self.source().await;
        let snippet: String = source.chars().take(3000).collect();
        let more = if source.chars().count() > 3000 {
            "\n…"
        } else {
            ""
        };
        panic!("{message}\ncurrent URL: {url}\npage source:\n{snippet}{more}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await: delete the session from a thread with a runtime of its own, so
        // Chromium closes even when the test panicked. chromedriver is killed right after.
        // A client of its own too: pooled connections belong to the test's runtime.
        let session_url = self.session_url.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let _ = reqwest::Client::new()
                    .delete(&session_url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
        if std::thread::panicking() {
            eprintln!("chromedriver's output: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
