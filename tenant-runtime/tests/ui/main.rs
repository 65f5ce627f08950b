//! The workspace UI in a real headless Chromium (through chromedriver), against the real
//! `tenant-runtime` binary on a fresh data directory: generating a site from a brief with
//! live progress, editing and saving a page with the sandboxed preview following, undo,
//! the SEO score following an edit, a stale save resolved from the conflict panel,
//! documents with highlighted search, agents with the API's validation messages — and the
//! preview's sandbox: a previewed page can neither read the workspace's cookie nor call its
//! API. `scripts/test` sets `WEBSPLAT_TEST_CHROMEDRIVER` and `WEBSPLAT_TEST_CHROMIUM`.

#[allow(dead_code)]
#[path = "../../../tests/e2e/webdriver.rs"]
mod webdriver;

mod driver;
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use driver::Session;
use support::{ChildGuard, free_port, wait_for_http};
use webdriver::Browser;

/// Generous, for slow CI machines; every wait ends as soon as its condition holds.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A program for the tests: `$variable`, or else the first of `names` on the PATH.
fn program(variable: &str, names: &[&str]) -> String {
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
struct Runtime {
    base: String,
    data: PathBuf,
    log: PathBuf,
    http: reqwest::Client,
    _child: ChildGuard,
}

impl Runtime {
    async fn start() -> Self {
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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A page's content and ETag, read through the API.
    async fn page(&self, project: &str, path: &str) -> (String, String) {
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

/// The runtime, a browser on its UI, and the extra WebDriver commands.
async fn start() -> (Runtime, Browser, Session) {
    let runtime = Runtime::start().await;
    let browser = Browser::start(
        &program("WEBSPLAT_TEST_CHROMEDRIVER", &["chromedriver"]),
        &program("WEBSPLAT_TEST_CHROMIUM", &["chromium", "chromium-browser"]),
    )
    .await;
    // `Browser::start` took chromedriver's port from `free_port` last, on this thread.
    let session = Session::attach(support::last_port()).await;
    (runtime, browser, session)
}

async fn click(browser: &Browser, css: &str) {
    let element = browser.wait_for(css, TIMEOUT).await;
    browser.click(&element).await;
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let element = browser.wait_for(css, TIMEOUT).await;
    browser.send_keys(&element, text).await;
}

/// Creates a project from the project list; returns its id (from the URL it lands on).
async fn create_project(browser: &Browser, session: &Session, name: &str) -> String {
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
async fn open_in_editor(browser: &Browser, session: &Session, path: &str) {
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

async fn editor_text(session: &Session) -> String {
    session
        .js("return document.querySelector('#page-editor').value")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Replaces the editor's text by typing, saves, and waits until the save is done.
async fn replace_and_save(browser: &Browser, session: &Session, text: &str) {
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
async fn wait_for_preview(browser: &Browser, session: &Session, css: &str, expected: &str) {
    session.enter_frame("#preview-frame").await;
    browser.wait_for_text(css, expected, TIMEOUT).await;
    session.leave_frames().await;
}

/// The SEO tab's project score, once loaded.
async fn seo_score(browser: &Browser, session: &Session) -> i64 {
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

#[tokio::test]
async fn a_brief_generates_a_site_that_can_be_edited_previewed_undone_and_scored() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Corner Bakery").await;

    // The brief, in the form's own fields; autonomous applies the site as a new version.
    let name = session
        .js("return document.querySelector('#generate-form [name=name]').value")
        .await;
    assert_eq!(name, json!("Corner Bakery"), "the name is prefilled");
    type_into(
        &browser,
        "#generate-form [name=description]",
        "Sourdough bread and pastries baked every morning in Lisbon.",
    )
    .await;
    type_into(
        &browser,
        "#generate-form [name=sections]",
        "Menu, About us, Visit",
    )
    .await;
    click(&browser, "#generate-form [name=tone] option[value=playful]").await;
    type_into(
        &browser,
        "#generate-form [name=keywords]",
        "sourdough, pastries",
    )
    .await;
    click(
        &browser,
        "#generate-form [name=autonomy] option[value=autonomous]",
    )
    .await;
    assert!(
        session
            .js("return document.querySelector('#generator-notice').textContent")
            .await
            .as_str()
            .is_some_and(|t| t.contains("template-based") && t.contains("not a language model")),
        "the tab says plainly what the generator is"
    );

    // Record every state the progress bar and the step line go through.
    session
        .js("window.seen = []; \
             const record = () => window.seen.push([document.querySelector('#generate-progress').value, document.querySelector('#generate-step').textContent]); \
             new MutationObserver(record).observe(document.querySelector('#generate-job'), {subtree: true, childList: true, characterData: true, attributes: true});")
        .await;
    click(&browser, "#generate-submit").await;
    browser
        .wait_for("#generate-status[data-status=succeeded]", TIMEOUT)
        .await;
    let state = session
        .js("return { value: document.querySelector('#generate-progress').value, \
                      max: document.querySelector('#generate-progress').max, \
                      step: document.querySelector('#generate-step').textContent, \
                      status: document.querySelector('#generate-status').textContent, \
                      steps: [...document.querySelectorAll('#generate-steps li')].map(li => [li.dataset.step, li.textContent, li.classList.contains('done')]), \
                      seen: window.seen };")
        .await;
    assert_eq!(state["value"], json!(100), "{state}");
    assert_eq!(state["max"], json!(100), "{state}");
    assert_eq!(state["step"], json!("done"), "{state}");
    assert_eq!(state["status"], json!("Succeeded"), "{state}");
    let steps: Vec<&str> = state["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            assert_eq!(s[2], json!(true), "every step is marked done: {s}");
            s[0].as_str().expect("a step name")
        })
        .collect();
    assert_eq!(
        steps,
        ["plan", "content", "seo", "layout", "code", "review"],
        "{state}"
    );
    let seen: Vec<f64> = state["seen"]
        .as_array()
        .expect("seen")
        .iter()
        .filter_map(|s| s[0].as_f64())
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]) && seen.last() == Some(&100.0),
        "the bar only moves forward, to the end: {seen:?}"
    );
    let generator = session
        .js("return document.querySelector('#result-generator').textContent")
        .await;
    assert!(
        generator
            .as_str()
            .is_some_and(|g| g.contains("template-based, not a language model")),
        "the result names its generator: {generator}"
    );

    // The editor shows the generated pages; the preview shows the generated site.
    click(&browser, "#open-editor").await;
    for page in [
        "index.html",
        "menu.html",
        "about-us.html",
        "visit.html",
        "styles.css",
    ] {
        browser
            .wait_for(&format!(".file-item[data-path=\"{page}\"]"), TIMEOUT)
            .await;
    }
    open_in_editor(&browser, &session, "index.html").await;
    let generated = editor_text(&session).await;
    assert!(generated.contains("<h1>Corner Bakery</h1>"), "{generated}");
    wait_for_preview(&browser, &session, "h1", "Corner Bakery").await;
    let sandbox = session
        .js("return document.querySelector('#preview-frame').getAttribute('sandbox')")
        .await;
    assert_eq!(sandbox, json!("allow-scripts"));

    // The SEO score of the generated site.
    let generated_score = seo_score(&browser, &session).await;

    // Edit index.html, save: the preview follows.
    open_in_editor(&browser, &session, "index.html").await;
    let edited = "<!doctype html>\n<html lang=\"en\">\n<head><title>Edited</title></head>\n<body>\n<h1 id=\"edited\">Edited by the UI test</h1>\n<p>Fresh bread.</p>\n</body>\n</html>\n";
    replace_and_save(&browser, &session, edited).await;
    wait_for_preview(&browser, &session, "#edited", "Edited by the UI test").await;
    assert_eq!(runtime.page(&project, "index.html").await.0, edited);

    // The SEO score follows the edit.
    let edited_score = seo_score(&browser, &session).await;
    assert!(
        edited_score < generated_score,
        "a bare page scores lower: {edited_score} vs {generated_score}"
    );

    // Undo brings the generated page back, in the editor and in the preview.
    open_in_editor(&browser, &session, "index.html").await;
    click(&browser, "#undo").await;
    session
        .wait_js(
            "the undone page in the editor",
            "const t = document.querySelector('#page-editor'); \
             return !!t && !t.disabled && t.value.includes('<h1>Corner Bakery</h1>');",
            TIMEOUT,
        )
        .await;
    assert_eq!(editor_text(&session).await, generated);
    wait_for_preview(&browser, &session, "h1", "Corner Bakery").await;
    assert_eq!(runtime.page(&project, "index.html").await.0, generated);
    assert_eq!(seo_score(&browser, &session).await, generated_score);

    // Redo brings the edit back; the SEO tab shown follows.
    click(&browser, "#redo").await;
    session
        .wait_js(
            "the SEO score of the redone version",
            &format!(
                "return document.querySelector('#seo-score')?.textContent === '{edited_score}' && \
                 !document.querySelector('#seo-refresh').disabled"
            ),
            TIMEOUT,
        )
        .await;
    assert_eq!(runtime.page(&project, "index.html").await.0, edited);
}

#[tokio::test]
async fn the_preview_can_neither_read_the_workspace_cookie_nor_call_its_api() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Sandbox check").await;

    // A cookie on the workspace's origin, as a session cookie would be.
    let cookie = session
        .js("document.cookie = 'secret=1; path=/'; return document.cookie;")
        .await;
    assert!(
        cookie.as_str().is_some_and(|c| c.contains("secret=1")),
        "{cookie}"
    );

    let probe = "<!doctype html>\n<html><head><title>Probe</title></head>\n<body>\n<p id=\"out\">probing</p>\n<script>\n\
let cookie;\n\
try { cookie = document.cookie === '' ? 'empty' : 'read:' + document.cookie; } catch (e) { cookie = 'denied:' + e.name; }\n\
document.body.dataset.cookie = cookie;\n\
let parentDom;\n\
try { parentDom = 'reachable:' + parent.document.title; } catch (e) { parentDom = 'denied:' + e.name; }\n\
document.body.dataset.parent = parentDom;\n\
fetch('/api/v1/projects').then(r => r.text()).then(t => 'reachable:' + t.slice(0, 60), e => 'blocked:' + e.name)\n\
  .then(v => { document.body.dataset.api = v; document.getElementById('out').textContent = 'done'; });\n\
</script>\n</body>\n</html>\n";
    open_in_editor(&browser, &session, "index.html").await;
    replace_and_save(&browser, &session, probe).await;
    assert_eq!(runtime.page(&project, "index.html").await.0, probe);

    session.enter_frame("#preview-frame").await;
    browser.wait_for_text("#out", "done", TIMEOUT).await;
    let seen = session
        .js(
            "return { origin: window.origin, cookie: document.body.dataset.cookie, \
                      parent: document.body.dataset.parent, api: document.body.dataset.api };",
        )
        .await;
    session.leave_frames().await;
    assert_eq!(seen["origin"], json!("null"), "an opaque origin: {seen}");
    let cookie = seen["cookie"].as_str().unwrap_or_default();
    assert!(
        cookie.starts_with("denied:SecurityError") || cookie == "empty",
        "the preview must not read the workspace's cookie: {seen}"
    );
    assert!(!cookie.contains("secret"), "{seen}");
    assert!(
        seen["parent"]
            .as_str()
            .is_some_and(|p| p.starts_with("denied:")),
        "the preview must not reach the workspace's document: {seen}"
    );
    assert!(
        seen["api"]
            .as_str()
            .is_some_and(|a| a.starts_with("blocked:")),
        "the preview must not call the workspace's API: {seen}"
    );

    // The workspace itself still reads its API (and its cookie) normally.
    let own = session
        .js("return fetch('/api/v1/projects').then(r => r.status)")
        .await;
    assert_eq!(own, json!(200));
}

#[tokio::test]
async fn a_stale_save_shows_the_current_version_and_can_overwrite_it() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Two tabs").await;
    open_in_editor(&browser, &session, "index.html").await;

    // Someone else (another tab, an agent) saves the page meanwhile.
    let (_, etag) = runtime.page(&project, "index.html").await;
    let theirs = "<!doctype html><html><body><h1>Theirs</h1></body></html>\n";
    let r = runtime
        .http
        .put(runtime.url(&format!("/api/v1/projects/{project}/pages/index.html")))
        .header("content-type", "text/html")
        .header("if-match", etag)
        .body(theirs)
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 200);

    let mine = "<!doctype html><html><body><h1>Mine</h1></body></html>\n";
    session.clear("#page-editor").await;
    type_into(&browser, "#page-editor", mine).await;
    click(&browser, "#save-page").await;
    browser.wait_for("#conflict:not([hidden])", TIMEOUT).await;
    assert_eq!(
        session
            .js("return document.querySelector('#conflict-current').value")
            .await,
        json!(theirs),
        "the conflict shows the current version"
    );
    assert_eq!(
        runtime.page(&project, "index.html").await.0,
        theirs,
        "nothing was overwritten"
    );

    click(&browser, "#conflict-overwrite").await;
    session
        .wait_js(
            "the overwrite",
            "return document.querySelector('#conflict').hidden && \
                    (document.querySelector('#editor-state')?.textContent ?? '').startsWith('Saved')",
            TIMEOUT,
        )
        .await;
    assert_eq!(runtime.page(&project, "index.html").await.0, mine);
    wait_for_preview(&browser, &session, "h1", "Mine").await;
}

#[tokio::test]
async fn documents_are_searched_with_safe_highlights_and_agents_show_validation_messages() {
    let (runtime, browser, session) = start().await;

    // Upload a document whose text has characters that mean something in HTML.
    let file = std::env::temp_dir().join(format!(
        "bakery-notes-{}.txt",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &file,
        "Our sourdough loaves & <butter> rolls are baked at dawn. Opening hours: 7 to 14.\n",
    )
    .expect("write the document");
    browser.goto(&runtime.url("/#/documents")).await;
    type_into(&browser, "#document-files", &file.to_string_lossy()).await;
    click(&browser, "#upload-documents").await;
    browser.wait_for(".document-row", TIMEOUT).await;
    let _ = std::fs::remove_file(&file);

    type_into(&browser, "#search-query", "sourdough").await;
    click(&browser, "#search-documents").await;
    browser.wait_for(".search-hit .snippet mark", TIMEOUT).await;
    let hit = session
        .js("const p = document.querySelector('.search-hit .snippet'); \
             return { text: p.textContent, marks: [...p.querySelectorAll('mark')].map(m => m.textContent), \
                      elements: [...p.querySelectorAll('*')].map(e => e.localName) };")
        .await;
    assert_eq!(hit["marks"], json!(["sourdough"]), "{hit}");
    assert_eq!(
        hit["elements"],
        json!(["mark"]),
        "only <mark> elements: {hit}"
    );
    assert!(
        hit["text"]
            .as_str()
            .is_some_and(|t| t.contains("loaves & <butter> rolls")),
        "entities are decoded into text: {hit}"
    );

    // An agent with a bad model name: the API's message appears beside the field.
    click(&browser, ".app-nav a[data-nav=agents]").await;
    type_into(&browser, "#agent-name", "Copywriter").await;
    session.clear("#agent-model").await;
    type_into(&browser, "#agent-model", "not a model!").await;
    click(&browser, "#save-agent").await;
    browser
        .wait_for("#agent-model[aria-invalid=true]", TIMEOUT)
        .await;
    let message = session
        .js("return document.querySelector('#agent-form .field-error')?.textContent")
        .await;
    assert!(
        message.as_str().is_some_and(|m| m.contains("model")),
        "{message}"
    );
    assert!(
        browser
            .find(".agent[data-id]")
            .await
            .expect("find")
            .is_none()
    );

    session.clear("#agent-model").await;
    type_into(&browser, "#agent-model", "auto").await;
    click(&browser, "#agent-tool-document_search").await;
    click(&browser, "#save-agent").await;
    browser.wait_for(".agent[data-id]", TIMEOUT).await;
    let agents: Value = runtime
        .http
        .get(runtime.url("/api/v1/agents"))
        .send()
        .await
        .expect("GET agents")
        .json()
        .await
        .expect("agents");
    assert_eq!(agents["agents"][0]["name"], json!("Copywriter"));
    assert_eq!(agents["agents"][0]["tools"], json!(["document_search"]));

    // Chat and analytics are announced, not faked.
    click(&browser, ".app-nav a[data-nav=chat]").await;
    browser
        .wait_for_text("#coming-soon h1", "Chat", TIMEOUT)
        .await;
}
