//! The workspace UI in a real headless Chromium (through chromedriver), against the real
//! `tenant-runtime` binary on a fresh data directory: generating a site from a brief with
//! live progress, editing and saving a page with the sandboxed preview following, undo,
//! the SEO score following an edit, a stale save resolved from the conflict panel,
//! documents indexed in the background with highlighted search, exports and publishing
//! with their progress and download, agents with the API's validation messages, a chat
//! whose reply streams in with its sources, analytics with their chart — and the
//! preview's sandbox: a previewed page can neither read the workspace's cookie nor call its
//! API. `scripts/test` sets `WEBSPLAT_TEST_CHROMEDRIVER` and `WEBSPLAT_TEST_CHROMIUM`.

mod driver;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use driver::Session;
use websplat_test_support::webdriver::Browser;
use websplat_test_support::{ChildGuard, free_port, wait_for_http};

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

/// Waits until job `id` has finished; its JSON.
async fn wait_for_job(runtime: &Runtime, id: &str) -> Value {
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
async fn start() -> (Runtime, Browser, Session) {
    let runtime = Runtime::start().await;
    let browser = Browser::start(
        &program("WEBSPLAT_TEST_CHROMEDRIVER", &["chromedriver"]),
        &program("WEBSPLAT_TEST_CHROMIUM", &["chromium", "chromium-browser"]),
    )
    .await;
    let session = Session::for_browser(&browser);
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
    // Indexed in the background: the job's card lists the file as its step, the list
    // shows the document's status.
    browser
        .wait_for("#indexing-status[data-status=succeeded]", TIMEOUT)
        .await;
    browser
        .wait_for(".document-row[data-status=indexed]", TIMEOUT)
        .await;
    let _ = std::fs::remove_file(&file);
    let steps = session
        .js("return [...document.querySelectorAll('#indexing-steps li')].map(li => [li.textContent, li.dataset.state]);")
        .await;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    assert_eq!(steps, json!([[name, "done"]]));

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

    // Outside a project, the header's Chat leads to a project chooser (none here yet).
    click(&browser, ".app-nav a[data-nav=chat]").await;
    browser
        .wait_for_text("#choose-chat h1", "Chat", TIMEOUT)
        .await;
    browser.wait_for("#chooser-empty", TIMEOUT).await;
}

/// A browser's User-Agent: the beacon skips robots, automated browsers included.
const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

#[tokio::test]
async fn a_chat_reply_streams_in_with_its_sources_and_the_history_survives_a_reload() {
    let (runtime, browser, session) = start().await;

    // A document, uploaded through the API.
    let document = "opening-hours.txt";
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(
            b"Corner Bakery: we open at 7 every morning and close at 14, Tuesday to Sunday.\n"
                .to_vec(),
        )
        .file_name(document),
    );
    let r = runtime
        .http
        .post(runtime.url("/api/v1/documents"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.expect("the upload's answer");
    let job = wait_for_job(&runtime, answer["job"]["id"].as_str().expect("a job")).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Chatty Bakery").await;
    click(&browser, "#tab-chat").await;
    browser.wait_for("#no-sessions", TIMEOUT).await;
    let nav = session
        .js(
            "const a = document.querySelector('.app-nav a[data-nav=chat]'); \
             return [a.getAttribute('aria-current'), a.getAttribute('href')];",
        )
        .await;
    assert_eq!(
        nav,
        json!(["page", format!("#/projects/{project}/chat")]),
        "the header's Chat is this project's, and current"
    );

    // An empty message is refused beside the field, before any request.
    click(&browser, "#chat-send").await;
    browser
        .wait_for("#chat-input[aria-invalid=true]", TIMEOUT)
        .await;

    // Start a session: it is listed, current, and named in the URL.
    click(&browser, "#new-chat").await;
    browser.wait_for(".session-item.current", TIMEOUT).await;
    let chat = session
        .wait_js(
            "the session in the URL",
            "const m = location.hash.match(/\\/chat\\/([0-9a-f-]{36})$/); return m && m[1];",
            TIMEOUT,
        )
        .await;
    let chat = chat.as_str().expect("a session id").to_owned();

    // Record the assistant's bubble as it changes: it must exist (streaming) before the reply
    // is complete.
    session
        .js("window.seen = []; \
             new MutationObserver(() => { \
               const b = document.querySelector('#chat-log .chat-message.assistant'); \
               if (b) window.seen.push([b.querySelector('.chat-text').textContent.length, !!b.dataset.id, b.classList.contains('streaming')]); \
             }).observe(document.querySelector('#chat-log'), {subtree: true, childList: true, characterData: true, attributes: true});")
        .await;
    type_into(&browser, "#chat-input", "When do you open?").await;
    click(&browser, "#chat-send").await;
    browser
        .wait_for("#chat-log .chat-message.assistant[data-id]", TIMEOUT)
        .await;
    let shown = session
        .js("const b = document.querySelector('#chat-log .chat-message.assistant[data-id]'); \
             return { text: b.querySelector('.chat-text').textContent, \
                      streaming: b.classList.contains('streaming'), \
                      chips: [...b.querySelectorAll('.source-chip')].map(c => c.textContent), \
                      users: [...document.querySelectorAll('#chat-log .chat-message.user')] \
                        .map(u => [u.dataset.id ?? null, u.querySelector('.chat-text').textContent]), \
                      seen: window.seen };")
        .await;
    let text = shown["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("we open at 7 every morning"),
        "the reply quotes the document: {shown}"
    );
    assert!(
        text.contains("template-based, not a language model"),
        "the reply says what the assistant is: {shown}"
    );
    assert_eq!(shown["streaming"], json!(false), "{shown}");
    assert_eq!(
        shown["chips"],
        json!([format!("{document} · p. 1")]),
        "a source chip names the document and page: {shown}"
    );
    let users = shown["users"].as_array().expect("user bubbles");
    assert_eq!(users.len(), 1, "{shown}");
    assert_eq!(users[0][1], json!("When do you open?"), "{shown}");
    assert!(users[0][0].is_string(), "the stored message's id: {shown}");
    let seen = shown["seen"].as_array().expect("seen");
    assert!(
        seen.iter()
            .any(|s| s[2] == json!(true) && s[1] == json!(false)),
        "the bubble was shown while the reply streamed: {shown}"
    );
    assert!(
        seen.last()
            .is_some_and(|s| s[2] == json!(false) && s[1] == json!(true)),
        "{shown}"
    );

    // What the page shows is what was stored.
    let stored: Value = runtime
        .http
        .get(runtime.url(&format!("/api/v1/sessions/{chat}/messages")))
        .send()
        .await
        .expect("GET messages")
        .json()
        .await
        .expect("messages");
    assert_eq!(stored["messages"][0]["content"], json!("When do you open?"));
    assert_eq!(stored["messages"][1]["role"], json!("assistant"));
    assert_eq!(stored["messages"][1]["content"], json!(text));
    assert_eq!(
        stored["messages"][1]["sources"][0]["document_name"],
        json!(document)
    );

    // The session is listed under its first message.
    browser
        .wait_for_text(
            &format!(".session-item[data-id=\"{chat}\"] .session-link"),
            "When do you open?",
            TIMEOUT,
        )
        .await;

    // After a reload the conversation is still there.
    session
        .js("window.beforeReload = true; location.reload();")
        .await;
    let again = session
        .wait_js(
            "the conversation after the reload",
            "if (window.beforeReload) return null; \
             const b = document.querySelector('#chat-log .chat-message.assistant[data-id]'); \
             return b && { text: b.querySelector('.chat-text').textContent, \
                           chips: [...b.querySelectorAll('.source-chip')].map(c => c.textContent), \
                           users: [...document.querySelectorAll('#chat-log .chat-message.user .chat-text')].map(u => u.textContent), \
                           current: document.querySelector('.session-item.current')?.dataset.id, \
                           title: document.querySelector('#chat-title').textContent };",
            TIMEOUT,
        )
        .await;
    assert_eq!(again["text"], json!(text), "{again}");
    assert_eq!(again["chips"], json!([format!("{document} · p. 1")]));
    assert_eq!(again["users"], json!(["When do you open?"]));
    assert_eq!(again["current"], json!(chat));
    assert_eq!(again["title"], json!("When do you open?"));

    // A long conversation shows its latest 50 messages; "load earlier" brings the rest.
    for n in 0..25 {
        let r = runtime
            .http
            .post(runtime.url(&format!("/api/v1/sessions/{chat}/messages")))
            .json(&json!({ "content": format!("Question {n}") }))
            .send()
            .await
            .expect("POST message");
        assert_eq!(r.status(), 200);
        r.text().await.expect("the reply's stream");
    }
    session
        .js("window.beforeReload = true; location.reload();")
        .await;
    session
        .wait_js(
            "the latest 50 messages",
            "return !window.beforeReload && document.querySelectorAll('#chat-log .chat-message[data-id]').length === 50 \
                    && !document.querySelector('#load-earlier').hidden;",
            TIMEOUT,
        )
        .await;
    click(&browser, "#load-earlier").await;
    let all = session
        .wait_js(
            "the earlier messages",
            "const m = [...document.querySelectorAll('#chat-log .chat-message[data-id]')]; \
             return m.length === 52 && document.querySelector('#load-earlier').hidden \
                    && m.map(b => b.querySelector('.chat-text').textContent);",
            TIMEOUT,
        )
        .await;
    assert_eq!(all[0], json!("When do you open?"), "oldest first: {all}");
    assert_eq!(all[50], json!("Question 24"), "{all}");

    // Rename, then delete (after confirming): the list follows.
    click(&browser, "#rename-session").await;
    session.clear("#rename-title").await;
    type_into(&browser, "#rename-title", "Opening hours").await;
    click(&browser, "#rename-save").await;
    browser
        .wait_for_text(
            &format!(".session-item[data-id=\"{chat}\"] .session-link"),
            "Opening hours",
            TIMEOUT,
        )
        .await;
    browser
        .wait_for_text("#chat-title", "Opening hours", TIMEOUT)
        .await;
    // A second chat; then back to the first from the list.
    click(&browser, "#new-chat").await;
    let second = session
        .wait_js(
            "the second session in the URL",
            &format!(
                "const m = location.hash.match(/\\/chat\\/([0-9a-f-]{{36}})$/); \
                 return m && m[1] !== '{chat}' && document.querySelectorAll('.session-item').length === 2 && m[1];"
            ),
            TIMEOUT,
        )
        .await;
    browser.wait_for("#chat-empty:not([hidden])", TIMEOUT).await;
    click(
        &browser,
        &format!(".session-item[data-id=\"{chat}\"] .session-link"),
    )
    .await;
    session
        .wait_js(
            "the first chat again",
            &format!(
                "return location.hash.endsWith('/chat/{chat}') \
                    && document.querySelector('#chat-title').textContent === 'Opening hours' \
                    && document.querySelectorAll('#chat-log .chat-message[data-id]').length === 50 \
                    && document.querySelector('.session-item.current')?.dataset.id === '{chat}';"
            ),
            TIMEOUT,
        )
        .await;

    // Deleting it (after confirming) shows the chat that remains.
    click(&browser, "#delete-session").await;
    click(&browser, "dialog .dialog-confirm").await;
    session
        .wait_js(
            "the remaining chat",
            &format!(
                "return document.querySelectorAll('.session-item').length === 1 \
                    && document.querySelector('.session-item.current')?.dataset.id === {second} \
                    && location.hash.endsWith('/chat/' + {second});"
            ),
            TIMEOUT,
        )
        .await;
    let r = runtime
        .http
        .get(runtime.url(&format!("/api/v1/sessions/{chat}")))
        .send()
        .await
        .expect("GET session");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn analytics_show_the_published_site_views_per_day_with_pages_and_referrers() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Counted Bakery").await;

    let r = runtime
        .http
        .post(runtime.url(&format!("/api/v1/projects/{project}/publish")))
        .send()
        .await
        .expect("publish");
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.expect("the publish job");
    let job = wait_for_job(&runtime, job["id"].as_str().expect("a job")).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let beacon = runtime.url(&format!(
        "/a.gif?p={project}&path=index.html&s=site&r=https%3A%2F%2Ffriend.example%2F"
    ));
    for _ in 0..3 {
        let r = runtime
            .http
            .get(&beacon)
            .header("user-agent", BROWSER_UA)
            .send()
            .await
            .expect("beacon");
        assert_eq!(r.status(), 200);
    }
    // A robot's view is not counted.
    let r = runtime
        .http
        .get(&beacon)
        .header(
            "user-agent",
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
        )
        .send()
        .await
        .expect("beacon");
    assert_eq!(r.status(), 200);
    let today = chrono::Utc::now().date_naive().to_string();

    click(&browser, "#tab-analytics").await;
    browser
        .wait_for("#analytics-views[data-value=\"3\"]", TIMEOUT)
        .await;
    let read = "const today = arguments[0]; \
        const g = document.querySelector(`#analytics-chart .chart-day[data-day=\"${today}\"]`); \
        const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr:not(.empty-row)`)] \
          .map(r => [r.cells[0].textContent, r.cells[1].textContent]); \
        return { views: document.querySelector('#analytics-views').textContent, \
                 visitors: document.querySelector('#analytics-visitors').textContent, \
                 days: document.querySelectorAll('#analytics-chart .chart-day').length, \
                 zero: [...document.querySelectorAll('#analytics-chart rect.bar')].filter(b => b.dataset.views === '0').length, \
                 today: g && { views: g.querySelector('rect.bar').dataset.views, \
                               visitors: g.querySelector('circle.point').dataset.visitors, \
                               height: Number(g.querySelector('rect.bar').getAttribute('height')), \
                               tooltip: g.querySelector('title').textContent }, \
                 label: document.querySelector('#analytics-chart').getAttribute('aria-labelledby') \
                   .split(' ').map(id => document.getElementById(id).textContent).join(' | '), \
                 pages: rows('analytics-pages'), referrers: rows('analytics-referrers'), \
                 privacy: document.querySelector('#analytics-privacy').textContent, \
                 nav: [document.querySelector('.app-nav a[data-nav=analytics]').getAttribute('aria-current'), \
                       document.querySelector('.app-nav a[data-nav=analytics]').getAttribute('href')] };";
    let shown = session.execute(read, vec![json!(today)]).await;
    assert_eq!(shown["views"], json!("3"), "{shown}");
    assert_eq!(
        shown["visitors"],
        json!("1"),
        "one browser on one day: {shown}"
    );
    assert_eq!(shown["days"], json!(30), "30 days by default: {shown}");
    assert_eq!(shown["zero"], json!(29), "{shown}");
    assert_eq!(shown["today"]["views"], json!("3"), "{shown}");
    assert_eq!(shown["today"]["visitors"], json!("1"), "{shown}");
    assert!(
        shown["today"]["height"].as_f64().is_some_and(|h| h > 0.0),
        "{shown}"
    );
    assert!(
        shown["today"]["tooltip"]
            .as_str()
            .is_some_and(|t| t.contains("3 views, 1 visitor")),
        "{shown}"
    );
    assert!(
        shown["label"]
            .as_str()
            .is_some_and(|l| l.contains("Views and visitors per day") && l.contains("3 views")),
        "the chart has an accessible name and description: {shown}"
    );
    assert_eq!(shown["pages"], json!([["index.html", "3"]]), "{shown}");
    assert_eq!(
        shown["referrers"],
        json!([["friend.example", "3"]]),
        "{shown}"
    );
    assert!(
        shown["privacy"]
            .as_str()
            .is_some_and(|t| t.contains("without cookies")),
        "{shown}"
    );
    assert_eq!(
        shown["nav"],
        json!(["page", format!("#/projects/{project}/analytics")]),
        "{shown}"
    );

    // Seven days: seven bars, the same total.
    click(&browser, "#analytics-range-7-label").await;
    browser
        .wait_for(
            "#analytics-content[data-days=\"7\"]:not([aria-busy])",
            TIMEOUT,
        )
        .await;
    let shown = session.execute(read, vec![json!(today)]).await;
    assert_eq!(shown["days"], json!(7), "{shown}");
    assert_eq!(shown["views"], json!("3"), "{shown}");
    assert_eq!(shown["today"]["views"], json!("3"), "{shown}");

    // Previews: none counted (the browser under test is an automated one).
    click(&browser, "#analytics-source-preview-label").await;
    browser
        .wait_for(
            "#analytics-content[data-source=preview]:not([aria-busy])",
            TIMEOUT,
        )
        .await;
    let shown = session.execute(read, vec![json!(today)]).await;
    assert_eq!(shown["views"], json!("0"), "{shown}");
    assert_eq!(shown["today"]["views"], json!("0"), "{shown}");
    assert_eq!(shown["referrers"], json!([]), "{shown}");
    browser
        .wait_for("#analytics-hint:not([hidden])", TIMEOUT)
        .await;
}

#[tokio::test]
async fn an_export_shows_its_progress_then_its_download_and_publishing_its_site() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Exported Bakery").await;
    click(&browser, "#tab-export").await;

    click(&browser, "#export-site-start").await;
    let link = browser.wait_for("#export-site-download", TIMEOUT).await;
    let href = browser.property(&link, "href").await.expect("href");
    let state = session
        .js("return { status: document.querySelector('#export-site-status').dataset.status, \
                      steps: [...document.querySelectorAll('#export-site-steps li')].map(li => [li.dataset.step, li.dataset.state]), \
                      busy: document.querySelector('#export-site-start').disabled, \
                      name: document.querySelector('#export-site-download').getAttribute('download') };")
        .await;
    assert_eq!(
        state,
        json!({
            "status": "succeeded",
            "steps": [["collect", "done"], ["render", "done"], ["zip", "done"]],
            "busy": false,
            "name": "exported-bakery.zip",
        })
    );
    // The link is the job's download, and it is the site as a zip.
    assert!(
        href.starts_with(&runtime.url("/api/v1/jobs/")) && href.ends_with("/artifact"),
        "{href}"
    );
    let zip = runtime
        .http
        .get(&href)
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).expect("a zip");
    assert_eq!(archive.len(), 1);
    assert!(archive.index_for_name("index.html").is_some());

    click(&browser, "#publish-start").await;
    let link = browser.wait_for("#published-url", TIMEOUT).await;
    let url = browser.property(&link, "href").await.expect("href");
    assert_eq!(url, runtime.url(&format!("/sites/{project}/")));
    let steps = session
        .js("return [...document.querySelectorAll('#publish-steps li')].map(li => li.dataset.step);")
        .await;
    assert_eq!(steps, json!(["collect", "render", "publish"]));
    let site = runtime
        .http
        .get(&url)
        .send()
        .await
        .expect("the published site");
    assert_eq!(site.status(), 200);
}
