//! The workspace API against the real `tenant-runtime` binary and a real data directory:
//! projects, pages with optimistic concurrency, versions, undo/redo, diff, restore, preview,
//! hostile input, and durability when the process is killed mid-write; documents indexed,
//! sites exported and published by background jobs that list their steps and resume after
//! a kill, a crash at their worst moment (`WEBSPLAT_RUNTIME_TEST_CRASH_AT`) or a database
//! fault (a trigger); with a tenant secret, only requests the platform signed; notes that outlive a
//! restart; large staged uploads streamed to the volume (`uploads`).

mod uploads;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tenant_runtime::trust::{HEADER as IDENTITY, TenantSecret, sign};

/// How a test runtime is started: a storage quota, the largest staged upload, a tenant
/// secret, a point at which it crashes (`WEBSPLAT_RUNTIME_TEST_CRASH_AT`).
#[derive(Default, Clone)]
struct Settings {
    quota: Option<String>,
    max_staged_upload: Option<String>,
    tenant: Option<Tenant>,
    crash_at: Option<&'static str>,
}

/// What the platform gives a tenant's container: the secret it signs requests with, and
/// the owner it signs them for.
#[derive(Clone)]
struct Tenant {
    secret: String,
    user: uuid::Uuid,
}

impl Tenant {
    fn new() -> Self {
        Tenant {
            secret: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
            user: uuid::Uuid::new_v4(),
        }
    }

    /// The `X-Websplat-Identity` value the platform would send for `user` at `ts`.
    fn identity_at(&self, user: uuid::Uuid, ts: i64, method: &str, path: &str) -> String {
        let secret = TenantSecret::parse(self.secret.as_str()).expect("a valid secret");
        sign(&secret, user, ts, method, path)
    }

    /// The owner's identity for a request made now.
    fn identity(&self, method: &str, path: &str) -> String {
        self.identity_at(self.user, chrono::Utc::now().timestamp(), method, path)
    }
}

/// A runtime process on its own port and data directory; killed (and the directory removed)
/// when the test ends. With a tenant secret, its helpers sign their requests as the platform.
struct Runtime {
    settings: Settings,
    base: String,
    port: u16,
    data: PathBuf,
    child: Child,
    http: Client,
}

impl Runtime {
    async fn start() -> Self {
        Self::start_with(Settings::default()).await
    }

    async fn start_with_quota(quota: &str) -> Self {
        Self::start_with(Settings {
            quota: Some(quota.to_owned()),
            ..Settings::default()
        })
        .await
    }

    async fn start_for(tenant: &Tenant) -> Self {
        Self::start_with(Settings {
            tenant: Some(tenant.clone()),
            ..Settings::default()
        })
        .await
    }

    async fn start_with(settings: Settings) -> Self {
        let data = std::env::temp_dir().join(format!(
            "websplat-runtime-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = spawn(&data, port, &settings);
        let runtime = Runtime {
            settings,
            base: format!("http://127.0.0.1:{port}"),
            port,
            data,
            child,
            http: Client::new(),
        };
        runtime.wait_healthy().await;
        runtime
    }

    async fn wait_healthy(&self) {
        let started = Instant::now();
        loop {
            if let Ok(r) = self.request(Method::GET, "/healthz").send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the runtime did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to die at its crash point, then starts a new one on the same
    /// data directory that does not crash.
    async fn restart_after_the_crash(&mut self) {
        let started = Instant::now();
        while self.child.try_wait().expect("wait").is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the runtime did not reach its crash point"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.settings.crash_at = None;
        self.child = spawn(&self.data, self.port, &self.settings);
        self.wait_healthy().await;
    }

    /// SIGKILL, then a new process on the same data directory.
    async fn kill_and_restart(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
        self.child = spawn(&self.data, self.port, &self.settings);
        self.wait_healthy().await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, signed as the platform would when the runtime has a secret.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method.clone(), self.url(path));
        match &self.settings.tenant {
            Some(tenant) => req.header(IDENTITY, tenant.identity(method.as_str(), path)),
            None => req,
        }
    }

    async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("GET")
    }

    async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path)
            .send()
            .await
            .expect("DELETE")
    }

    async fn put_page(
        &self,
        project: &str,
        path: &str,
        content: &str,
        if_match: Option<&str>,
    ) -> Response {
        let mut req = self
            .http
            .put(self.url(&format!("/api/v1/projects/{project}/pages/{path}")))
            .header("content-type", "text/html")
            .body(content.to_owned());
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        req.send().await.expect("PUT")
    }

    async fn new_project(&self, name: &str) -> Value {
        let r = self.post("/api/v1/projects", &json!({"name": name})).await;
        assert_eq!(r.status(), 201);
        body(r).await
    }

    /// Creates a project; its id.
    async fn new_project_id(&self, name: &str) -> String {
        self.new_project(name).await["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    async fn head(&self, project: &str) -> i64 {
        body(self.get(&format!("/api/v1/projects/{project}")).await).await["head_version"]
            .as_i64()
            .expect("head_version")
    }
}

fn command(data: &Path, port: u16, settings: &Settings) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenant-runtime"));
    if let Some(q) = &settings.quota {
        cmd.env("WEBSPLAT_RUNTIME_STORAGE_QUOTA", q);
    }
    if let Some(max) = &settings.max_staged_upload {
        cmd.env("WEBSPLAT_RUNTIME_MAX_STAGED_UPLOAD", max);
    }
    // Standalone unless the test says otherwise, whatever the environment holds.
    cmd.env_remove("WEBSPLAT_TENANT_SECRET")
        .env_remove("WEBSPLAT_TENANT_USER")
        .env_remove("WEBSPLAT_RUNTIME_TEST_CRASH_AT");
    if let Some(at) = settings.crash_at {
        cmd.env("WEBSPLAT_RUNTIME_TEST_CRASH_AT", at);
    }
    if let Some(tenant) = &settings.tenant {
        cmd.env("WEBSPLAT_TENANT_SECRET", &tenant.secret)
            .env("WEBSPLAT_TENANT_USER", tenant.user.to_string());
    }
    cmd.env("WEBSPLAT_RUNTIME_DATA_DIR", data)
        .env("WEBSPLAT_RUNTIME_LISTEN", format!("127.0.0.1:{port}"))
        .env("WEBSPLAT_RUNTIME_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn spawn(data: &Path, port: u16, settings: &Settings) -> Child {
    command(data, port, settings)
        .spawn()
        .expect("start tenant-runtime")
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

async fn body(r: Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
}

async fn error(r: Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "unexpected status");
    let b = body(r).await;
    assert!(
        b["error"]["request_id"].is_string() && b["error"]["message"].is_string(),
        "{b}"
    );
    b
}

fn etag(r: &Response) -> String {
    r.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_are_created_listed_renamed_and_deleted() {
    let rt = Runtime::start().await;
    let project = rt.new_project("Bakery").await;
    let id = project["id"].as_str().expect("id").to_owned();
    assert_eq!(project["settings"]["title"], "Bakery");
    assert_eq!(
        project["files"][0]["path"], "index.html",
        "a new project starts with a page"
    );
    assert_eq!(project["head_version"], 1);
    assert_eq!(project["can_undo"], false);

    for i in 0..4 {
        rt.new_project(&format!("Site {i}")).await;
    }
    let page = body(rt.get("/api/v1/projects?page=2&per_page=2").await).await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["projects"].as_array().expect("list").len(), 2);

    let r = rt
        .http
        .patch(rt.url(&format!("/api/v1/projects/{id}")))
        .json(&json!({"name": "Corner Bakery", "settings": {"title": "Fresh bread", "keywords": ["bread", "cake"]}}))
        .send()
        .await
        .expect("patch");
    let updated = body(r).await;
    assert_eq!(updated["name"], "Corner Bakery");
    assert_eq!(updated["settings"]["keywords"], json!(["bread", "cake"]));
    assert_eq!(updated["head_version"], 2, "a settings change is a version");

    let r = rt
        .http
        .delete(rt.url(&format!("/api/v1/projects/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    error(rt.get(&format!("/api/v1/projects/{id}")).await, 404).await;
    assert_eq!(body(rt.get("/api/v1/projects").await).await["total"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_edit_gets_409_with_the_current_page_and_loses_nothing() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Tabs").await;

    // Two tabs load the page.
    let loaded = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await;
    assert_eq!(
        loaded
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/html; charset=utf-8")
    );
    let tag = etag(&loaded);

    // Tab one saves.
    let saved = rt
        .put_page(&id, "index.html", "<h1>Tab one</h1>", Some(&tag))
        .await;
    assert_eq!(saved.status(), 200);
    let new_tag = etag(&saved);
    assert_ne!(new_tag, tag);

    // Tab two saves from its stale copy: refused, with what tab one wrote.
    let stale = rt
        .put_page(&id, "index.html", "<h1>Tab two</h1>", Some(&tag))
        .await;
    assert_eq!(etag(&stale), new_tag);
    let b = error(stale, 409).await;
    assert_eq!(b["error"]["code"], "stale_version");
    assert_eq!(b["current"]["content"], "<h1>Tab one</h1>");

    // Without If-Match an existing page is not overwritten either.
    let blind = rt.put_page(&id, "index.html", "<h1>Blind</h1>", None).await;
    assert_eq!(
        error(blind, 428).await["error"]["code"],
        "precondition_required"
    );

    let now = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await;
    assert_eq!(now.text().await.expect("page"), "<h1>Tab one</h1>");
    assert_eq!(rt.head(&id).await, 2);

    // A new page needs no precondition; deleting one does.
    assert_eq!(
        rt.put_page(&id, "about.html", "<p>About</p>", None)
            .await
            .status(),
        201
    );
    let r = rt
        .http
        .delete(rt.url(&format!("/api/v1/projects/{id}/pages/about.html")))
        .send()
        .await
        .expect("delete");
    error(r, 428).await;
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/about.html"))
            .await,
    );
    let r = rt
        .http
        .delete(rt.url(&format!("/api/v1/projects/{id}/pages/about.html")))
        .header("if-match", tag)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    error(
        rt.get(&format!("/api/v1/projects/{id}/pages/about.html"))
            .await,
        404,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_a_version_with_undo_redo_diff_and_restore() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("History").await;
    let mut tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    for text in ["first", "second", "third"] {
        let r = rt
            .put_page(&id, "index.html", &format!("<p>{text}</p>\n"), Some(&tag))
            .await;
        tag = etag(&r);
    }
    assert_eq!(rt.head(&id).await, 4);
    let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
    assert_eq!(history["head"], 4);
    assert_eq!(history["versions"].as_array().expect("versions").len(), 4);
    assert_eq!(history["versions"][0]["message"], "edited index.html");

    let diff = body(
        rt.get(&format!("/api/v1/projects/{id}/diff?from=2&to=4"))
            .await,
    )
    .await;
    assert_eq!(diff["files"][0]["change"], "modified");
    let text = diff["files"][0]["diff"].as_str().expect("diff");
    assert!(
        text.contains("-<p>first</p>") && text.contains("+<p>third</p>"),
        "{text}"
    );

    let page = async |rt: &Runtime| {
        rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await
            .text()
            .await
            .expect("page")
    };
    let undone = body(
        rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(undone["head_version"], 3);
    assert_eq!(undone["can_redo"], true);
    assert_eq!(page(&rt).await, "<p>second</p>\n");
    rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
        .await;
    assert_eq!(page(&rt).await, "<p>first</p>\n");
    let redone = body(
        rt.post(&format!("/api/v1/projects/{id}/redo"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(redone["head_version"], 3);
    assert_eq!(page(&rt).await, "<p>second</p>\n");

    // Restoring the original commits a copy of it; no version is lost.
    let restored = body(
        rt.post(
            &format!("/api/v1/projects/{id}/versions/1/restore"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(restored["head_version"], 5);
    assert_eq!(
        restored["can_redo"], false,
        "a new change ends the redo chain"
    );
    assert!(page(&rt).await.contains("New site"));
    let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
    assert_eq!(history["versions"].as_array().expect("versions").len(), 5);
    assert_eq!(history["versions"][0]["message"], "restored version 1");

    // Undo all the way to the start, then no further.
    for _ in 0..4 {
        rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
            .await;
    }
    let b = error(
        rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
            .await,
        409,
    )
    .await;
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing to undo"),
        "{b}"
    );
    error(
        rt.post(
            &format!("/api/v1/projects/{id}/versions/99/restore"),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_is_sandboxed() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Preview").await;
    let r = rt.get(&format!("/preview/{id}/")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok()),
        Some("sandbox allow-scripts")
    );
    assert!(r.text().await.expect("page").contains("New site"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_a_4xx_and_writes_nothing() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Fortress").await;
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );

    for path in [
        "..%2Fescape.html",
        ".env.html",
        "a%20b.html",
        "dir/.hidden.html",
        "logo.png",
        "x..%2F..%2Fy.html",
    ] {
        let r = rt.put_page(&id, path, "<p>x</p>", None).await;
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
    }
    // Not UTF-8.
    let r = rt
        .http
        .put(rt.url(&format!("/api/v1/projects/{id}/pages/index.html")))
        .header("content-type", "text/html")
        .header("if-match", &tag)
        .body(vec![0xff, 0xfe, 0x00, 0x3c])
        .send()
        .await
        .expect("put");
    error(r, 400).await;
    // Not text.
    let r = rt
        .http
        .put(rt.url(&format!("/api/v1/projects/{id}/pages/index.html")))
        .header("content-type", "image/png")
        .header("if-match", &tag)
        .body("<p>x</p>")
        .send()
        .await
        .expect("put");
    error(r, 415).await;
    // Too large.
    let huge = "x".repeat(3 * 1024 * 1024);
    error(rt.put_page(&id, "index.html", &huge, Some(&tag)).await, 413).await;
    // Malformed and unexpected JSON.
    let r = rt
        .http
        .post(rt.url("/api/v1/projects"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("post");
    error(r, 400).await;
    error(
        rt.post(
            "/api/v1/projects",
            &json!({"name": "x", "owner": "someone"}),
        )
        .await,
        400,
    )
    .await;
    error(rt.post("/api/v1/projects", &json!({"name": ""})).await, 400).await;
    let b = error(
        rt.post(
            "/api/v1/projects",
            &json!({"name": "x", "settings": {"theme": "neon"}}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(b["error"]["field"], "settings.theme");
    error(rt.get("/api/v1/projects?per_page=100000").await, 400).await;
    error(rt.get("/api/v1/projects/not-a-uuid").await, 404).await;

    assert_eq!(rt.head(&id).await, 1, "nothing was written");
    assert_eq!(body(rt.get("/api/v1/projects").await).await["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_write_leaves_the_last_committed_version_intact() {
    let mut rt = Runtime::start().await;
    let id = rt.new_project_id("Durable").await;
    let mut tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );

    // A writer saves continuously; the process is killed while it does.
    let writer = {
        let (http, base, id, mut tag) = (rt.http.clone(), rt.base.clone(), id.clone(), tag.clone());
        tokio::spawn(async move {
            let mut acknowledged: Option<(i64, String)> = None;
            for i in 0.. {
                let content = format!("<p>save {i}</p>{}", "padding ".repeat(2000));
                let sent = http
                    .put(format!("{base}/api/v1/projects/{id}/pages/index.html"))
                    .header("content-type", "text/html")
                    .header("if-match", &tag)
                    .body(content.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::OK => {
                        tag = etag(&r);
                        let v = body(r).await["head_version"].as_i64().expect("version");
                        acknowledged = Some((v, content));
                    }
                    _ => return acknowledged,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    rt.kill_and_restart().await;
    let (acked_version, acked_content) = writer
        .await
        .expect("writer")
        .expect("some saves were acknowledged");

    // The database opens; every acknowledged save is there, and head is a whole version.
    let head = rt.head(&id).await;
    assert!(
        head >= acked_version,
        "head {head} lost the acknowledged version {acked_version}"
    );
    let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
    assert_eq!(
        history["versions"].as_array().expect("versions").len() as i64,
        head
    );
    let page = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await;
    tag = etag(&page);
    let content = page.text().await.expect("page");
    if head == acked_version {
        assert_eq!(content, acked_content);
    } else {
        assert!(
            content.starts_with("<p>save "),
            "{}",
            &content[..40.min(content.len())]
        );
    }
    // And work goes on.
    assert_eq!(
        rt.put_page(&id, "index.html", "<p>after</p>", Some(&tag))
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seo_report_scores_pages_and_rises_when_they_improve() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;
    let before = body(rt.get(&format!("/api/v1/projects/{id}/seo")).await).await;
    let codes: Vec<&str> = before["pages"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"description_missing") && codes.contains(&"thin_content"),
        "{codes:?}"
    );

    // The sitemap needs the site's address first.
    let b = error(
        rt.get(&format!("/api/v1/projects/{id}/sitemap.xml")).await,
        400,
    )
    .await;
    assert_eq!(b["error"]["field"], "settings.site_url");
    rt.http
        .patch(rt.url(&format!("/api/v1/projects/{id}")))
        .json(&json!({"settings": {"title": "Bakery", "keywords": ["sourdough"], "site_url": "https://bakery.example"}}))
        .send()
        .await
        .expect("patch");

    let filler =
        "Our bakers start early every morning and use local flour, water and salt. ".repeat(30);
    let better = format!(
        r#"<!doctype html><html lang="en"><head><title>Sourdough bread in Lisbon | Corner Bakery</title>
<meta name="description" content="Corner Bakery bakes sourdough bread and pastries every morning in Lisbon. Visit us today.">
<link rel="canonical" href="https://bakery.example/"><meta property="og:title" content="Corner Bakery">
<meta property="og:description" content="Sourdough in Lisbon"><script type="application/ld+json">{{"@type":"Bakery"}}</script>
</head><body><h1>Corner Bakery</h1><p>We bake sourdough bread with care. {filler}</p></body></html>"#
    );
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    assert_eq!(
        rt.put_page(&id, "index.html", &better, Some(&tag))
            .await
            .status(),
        200
    );
    let after = body(
        rt.get(&format!("/api/v1/projects/{id}/seo?page=index.html"))
            .await,
    )
    .await;
    assert!(
        after["score"].as_u64() > before["score"].as_u64(),
        "{} -> {}",
        before["score"],
        after["score"]
    );
    assert_eq!(after["pages"][0]["keywords"][0]["occurrences"], 1);

    let sitemap = rt
        .get(&format!("/api/v1/projects/{id}/sitemap.xml"))
        .await
        .text()
        .await
        .expect("xml");
    assert!(
        sitemap.contains("<loc>https://bakery.example/</loc>"),
        "{sitemap}"
    );
    let robots = rt
        .get(&format!("/api/v1/projects/{id}/robots.txt"))
        .await
        .text()
        .await
        .expect("txt");
    assert!(
        robots.contains("Sitemap: https://bakery.example/sitemap.xml"),
        "{robots}"
    );
    error(
        rt.get(&format!("/api/v1/projects/{id}/seo?page=nope.html"))
            .await,
        404,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_configured_with_validation() {
    let rt = Runtime::start().await;
    let r = rt
        .post(
            "/api/v1/agents",
            &json!({
                "name": "Copywriter", "role": "Writes page copy", "instructions": "Warm, short sentences.",
                "model": "auto", "tools": ["site_editing", "document_search", "site_editing"],
                "autonomy": "suggest", "creativity": 0.7
            }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let agent = body(r).await;
    let id = agent["id"].as_str().expect("id").to_owned();
    assert_eq!(agent["tools"], json!(["document_search", "site_editing"]));
    assert_eq!(agent["autonomy"], "suggest");

    for (bad, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "tools": ["shell"]}), "tools"),
        (json!({"name": "x", "creativity": 1.5}), "creativity"),
        (json!({"name": "x", "model": "rm -rf /"}), "model"),
    ] {
        let b = error(rt.post("/api/v1/agents", &bad).await, 400).await;
        assert_eq!(b["error"]["field"], field, "{bad}");
    }
    error(
        rt.post("/api/v1/agents", &json!({"name": "x", "autonomy": "total"}))
            .await,
        400,
    )
    .await;
    error(
        rt.post("/api/v1/agents", &json!({"name": "Copywriter"}))
            .await,
        409,
    )
    .await;

    let r = rt
        .http
        .put(rt.url(&format!("/api/v1/agents/{id}")))
        .json(&json!({"name": "Editor", "autonomy": "autonomous", "creativity": 0.2}))
        .send()
        .await
        .expect("put");
    let replaced = body(r).await;
    assert_eq!(
        (replaced["name"].as_str(), replaced["autonomy"].as_str()),
        (Some("Editor"), Some("autonomous"))
    );
    let list = body(rt.get("/api/v1/agents").await).await;
    assert_eq!(list["total"], 1);
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/agents/{id}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    error(rt.get(&format!("/api/v1/agents/{id}")).await, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_the_storage_quota_get_413_and_leave_nothing() {
    let rt = Runtime::start_with_quota("600K").await;
    let id = rt.new_project_id("Small plan").await;
    let usage = body(rt.get("/api/v1/usage").await).await;
    assert_eq!(usage["quota_bytes"], 600 * 1024);
    assert!(
        usage["used_bytes"].as_u64().is_some_and(|u| u > 0),
        "{usage}"
    );

    let mut tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    let mut refused = None;
    for i in 0..20 {
        // Different content each time, so every version costs room.
        let content = format!("<p>{i}</p>{}", format!("{i:04}").repeat(40_000));
        let r = rt.put_page(&id, "index.html", &content, Some(&tag)).await;
        if r.status() == 413 {
            refused = Some((i, error(r, 413).await));
            break;
        }
        assert_eq!(r.status(), 200);
        tag = etag(&r);
    }
    let (attempt, b) = refused.expect("the quota stops the writes");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("quota"),
        "{b}"
    );
    // The refused write left no version behind.
    assert_eq!(rt.head(&id).await, attempt + 1);
    let page = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await;
    assert_eq!(etag(&page), tag);
}

fn unzip(bytes: &[u8]) -> Vec<(String, String)> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).expect("entry");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("text");
        files.push((file.name().expect("a UTF-8 name").to_string(), text));
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_exports_as_zip_and_markdown_and_publishes() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Corner Bakery").await;
    rt.put_page(
        &id,
        "about.html",
        "<html><body><h1>About us</h1><p>We bake.</p></body></html>",
        None,
    )
    .await;

    // An export is a job: 202, its steps, then a download named in its result.
    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/exports"),
            &json!({"format": "site"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await;
    assert_eq!(job["kind"], "export_site");
    assert_eq!(step_names(&job), ["collect", "render", "zip"]);
    let done = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        done["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "done"),
        "{done}"
    );
    let artifact = done["result"]["artifact"]
        .as_str()
        .expect("a download")
        .to_owned();
    assert_eq!(
        artifact,
        format!("/api/v1/jobs/{}/artifact", done["id"].as_str().expect("id"))
    );
    let r = rt.get(&artifact).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
        Some("attachment; filename=\"corner-bakery.zip\"")
    );
    let files = unzip(&r.bytes().await.expect("zip"));
    assert_eq!(
        files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["about.html", "index.html"]
    );
    assert!(files[1].1.contains("New site"));
    // The synchronous download (for scripts) gives the same files.
    let r = rt.get(&format!("/api/v1/projects/{id}/export.zip")).await;
    assert_eq!(unzip(&r.bytes().await.expect("zip")), files);

    let job = body(
        rt.post(
            &format!("/api/v1/projects/{id}/exports"),
            &json!({"format": "markdown"}),
        )
        .await,
    )
    .await;
    let done = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    assert_eq!(done["result"]["file_name"], "corner-bakery-markdown.zip");
    let md = unzip(
        &rt.get(done["result"]["artifact"].as_str().expect("a download"))
            .await
            .bytes()
            .await
            .expect("zip"),
    );
    assert_eq!(md[0].0, "about.md");
    assert!(
        md[0].1.contains("# About us") && md[0].1.contains("We bake."),
        "{}",
        md[0].1
    );
    assert_eq!(
        unzip(
            &rt.get(&format!("/api/v1/projects/{id}/export/markdown.zip"))
                .await
                .bytes()
                .await
                .expect("zip")
        ),
        md
    );

    // A newer export of the project replaces the older one's file.
    let again = body(
        rt.post(
            &format!("/api/v1/projects/{id}/exports"),
            &json!({"format": "site"}),
        )
        .await,
    )
    .await;
    let again = wait_for_job(&rt, again["id"].as_str().expect("id")).await;
    assert_eq!(rt.get(&artifact).await.status(), 410, "replaced");
    assert_eq!(
        rt.get(again["result"]["artifact"].as_str().expect("a download"))
            .await
            .status(),
        200
    );
    // Bad requests are refused; only exports make files.
    error(
        rt.post(
            &format!("/api/v1/projects/{id}/exports"),
            &json!({"format": "pdf"}),
        )
        .await,
        400,
    )
    .await;
    error(
        rt.post(
            &format!("/api/v1/projects/{}/exports", uuid::Uuid::new_v4()),
            &json!({}),
        )
        .await,
        404,
    )
    .await;

    error(rt.get(&format!("/sites/{id}/")).await, 404).await;
    let r = rt
        .post(&format!("/api/v1/projects/{id}/publish"), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await;
    assert_eq!(step_names(&job), ["collect", "render", "publish"]);
    let published = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    assert_eq!(published["result"]["url"], format!("/sites/{id}/"));
    error(
        rt.get(&format!(
            "/api/v1/jobs/{}/artifact",
            published["id"].as_str().expect("id")
        ))
        .await,
        404,
    )
    .await;
    let site = rt.get(&format!("/sites/{id}/")).await;
    assert_eq!(
        site.headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok()),
        Some("sandbox allow-scripts allow-forms allow-popups")
    );
    assert!(site.text().await.expect("site").contains("New site"));

    // Edits reach visitors only when published again.
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    rt.put_page(&id, "index.html", "<h1>Open on Sundays</h1>", Some(&tag))
        .await;
    assert!(
        rt.get(&format!("/sites/{id}/index.html"))
            .await
            .text()
            .await
            .expect("site")
            .contains("New site")
    );
    publish(&rt, &id).await;
    assert!(
        rt.get(&format!("/sites/{id}/index.html"))
            .await
            .text()
            .await
            .expect("site")
            .contains("Open on Sundays")
    );

    // Nothing outside the published build can be reached through it.
    let r = rt
        .get(&format!("/sites/{id}/..%2F..%2Fworkspace.sqlite3"))
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
}

/// Reads server-sent events from `response` until `stop` says so; returns their data.
async fn read_events(mut response: Response, mut stop: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline.into(), response.chunk())
            .await
            .expect("events arrive in time")
            .expect("the stream");
        let Some(chunk) = chunk else { return events };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                let event: Value = serde_json::from_str(data).expect("JSON event");
                let finished = stop(&event);
                events.push(event);
                if finished {
                    return events;
                }
            }
        }
    }
}

async fn wait_for_job(rt: &Runtime, job: &str) -> Value {
    let started = Instant::now();
    loop {
        let j = body(rt.get(&format!("/api/v1/jobs/{job}")).await).await;
        if j["status"] == "succeeded" || j["status"] == "failed" {
            return j;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "job {job} did not finish: {j}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes a project through its job; the job's result.
async fn publish(rt: &Runtime, project: &str) -> Value {
    let r = rt
        .post(&format!("/api/v1/projects/{project}/publish"), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await;
    let done = wait_for_job(rt, job["id"].as_str().expect("job id")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    done["result"].clone()
}

/// The names of a job's steps, in order.
fn step_names(job: &Value) -> Vec<String> {
    job["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("a job lists its steps: {job}"))
        .iter()
        .map(|s| s["name"].as_str().expect("a step name").to_owned())
        .collect()
}

fn bakery_brief(autonomy: &str) -> Value {
    json!({
        "name": "Corner Bakery",
        "description": "Sourdough bread and pastries baked every morning in Lisbon.",
        "sections": ["Menu", "About us", "Visit"],
        "tone": "friendly",
        "keywords": ["sourdough", "pastries"],
        "autonomy": autonomy
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autonomous_generation_builds_the_site_with_live_progress() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;

    // Listen first, then ask: every step's progress arrives.
    let listening = rt.get("/api/v1/jobs/events").await;
    assert_eq!(
        listening
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/generate"),
            &bakery_brief("autonomous"),
        )
        .await;
    assert_eq!(r.status(), 202);
    let queued = body(r).await;
    assert_eq!(
        step_names(&queued),
        ["plan", "content", "seo", "layout", "code", "review"]
    );
    assert!(
        queued["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "pending" && s["label"].is_string()),
        "{queued}"
    );
    let job = queued["id"].as_str().expect("job id").to_owned();
    let events = read_events(listening, |e| {
        e["id"] == job.as_str() && e["status"] == "succeeded"
    })
    .await;
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["id"] == job.as_str() && e["status"] == "running")
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        ["plan", "content", "seo", "layout", "code", "review"]
    );
    let progress: Vec<i64> = events
        .iter()
        .filter_map(|e| e["progress"].as_i64())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");

    // Each running event shows the step under way running and the ones before it done.
    for e in events
        .iter()
        .filter(|e| e["id"] == job.as_str() && e["status"] == "running")
    {
        let states: Vec<&str> = e["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["state"].as_str())
            .collect();
        let at = step_names(e)
            .iter()
            .position(|n| e["step"] == n.as_str())
            .expect("the current step is listed");
        assert!(
            states[..at].iter().all(|s| *s == "done")
                && states[at] == "running"
                && states[at + 1..].iter().all(|s| *s == "pending"),
            "{states:?} at {at}"
        );
    }
    let done = events.last().expect("the final event");
    assert_eq!(done["result"]["applied"], true);
    assert!(
        done["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "done"),
        "{done}"
    );
    assert!(
        done["result"]["generator"]
            .as_str()
            .unwrap_or_default()
            .contains("not a language model")
    );
    let project = body(rt.get(&format!("/api/v1/projects/{id}")).await).await;
    assert_eq!(project["head_version"], done["result"]["version"]);
    let paths: Vec<&str> = project["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "about-us.html",
            "index.html",
            "menu.html",
            "styles.css",
            "visit.html"
        ]
    );
    let seo = body(rt.get(&format!("/api/v1/projects/{id}/seo")).await).await;
    assert!(
        seo["score"].as_u64().is_some_and(|s| s >= 80),
        "{}",
        seo["score"]
    );

    // The single job's stream starts with its (finished) state and ends.
    let one = read_events(rt.get(&format!("/api/v1/jobs/{job}/events")).await, |_| {
        false
    })
    .await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["status"], "succeeded");

    // And undo takes the site back to what it was.
    rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
        .await;
    let page = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("New site"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suggested_site_waits_for_the_user_to_accept_or_reject_it() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;
    let agent = body(
        rt.post(
            "/api/v1/agents",
            &json!({"name": "Careful", "autonomy": "suggest"}),
        )
        .await,
    )
    .await;
    let mut brief = bakery_brief("suggest");
    brief.as_object_mut().expect("object").remove("autonomy");
    brief["agent_id"] = agent["id"].clone();

    let job = body(
        rt.post(&format!("/api/v1/projects/{id}/generate"), &brief)
            .await,
    )
    .await;
    let done = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    assert_eq!(done["result"]["applied"], false, "{done}");
    assert_eq!(rt.head(&id).await, 1, "nothing applied yet");
    let proposals = body(rt.get(&format!("/api/v1/projects/{id}/proposals")).await).await;
    assert_eq!(proposals["proposals"][0]["status"], "open");
    let proposal = done["result"]["proposal_id"]
        .as_str()
        .expect("proposal")
        .to_owned();

    let accepted = body(
        rt.post(&format!("/api/v1/proposals/{proposal}/accept"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(accepted["version"], 2);
    assert!(
        rt.get(&format!("/api/v1/projects/{id}/pages/menu.html"))
            .await
            .status()
            .is_success()
    );
    let decided = error(
        rt.post(&format!("/api/v1/proposals/{proposal}/accept"), &json!({}))
            .await,
        409,
    )
    .await;
    assert_eq!(
        decided["error"]["code"], "conflict",
        "already accepted: not the same 409 as a stale one"
    );

    // A rejected proposal changes nothing.
    let job = body(
        rt.post(&format!("/api/v1/projects/{id}/generate"), &brief)
            .await,
    )
    .await;
    let done = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    let second = done["result"]["proposal_id"]
        .as_str()
        .expect("proposal")
        .to_owned();
    assert_eq!(
        body(
            rt.post(&format!("/api/v1/proposals/{second}/reject"), &json!({}))
                .await
        )
        .await["status"],
        "rejected"
    );
    assert_eq!(rt.head(&id).await, 2);

    // A proposal made before later edits is not applied over them unless forced.
    let job = body(
        rt.post(&format!("/api/v1/projects/{id}/generate"), &brief)
            .await,
    )
    .await;
    let third = wait_for_job(&rt, job["id"].as_str().expect("id")).await["result"]["proposal_id"]
        .as_str()
        .expect("proposal")
        .to_owned();
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    rt.put_page(&id, "index.html", "<h1>My own edit</h1>", Some(&tag))
        .await;
    let proposed = body(rt.get(&format!("/api/v1/proposals/{third}")).await).await;
    assert!(
        proposed["files"]["menu.html"]
            .as_str()
            .is_some_and(|f| f.contains("Menu")),
        "the proposal can be inspected"
    );
    let stale = error(
        rt.post(&format!("/api/v1/proposals/{third}/accept"), &json!({}))
            .await,
        409,
    )
    .await;
    assert_eq!(stale["error"]["code"], "stale_version");
    assert_eq!(stale["current"]["head_version"], rt.head(&id).await);
    assert_eq!(
        body(
            rt.post(
                &format!("/api/v1/proposals/{third}/accept?force=true"),
                &json!({})
            )
            .await
        )
        .await["status"],
        "accepted"
    );
    let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
    assert!(
        history["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .any(|v| v["message"] == "edited index.html"),
        "the edit stays in the history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_briefs_are_refused_and_queued_jobs_resume_after_a_restart() {
    let mut rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;
    let b = error(
        rt.post(
            &format!("/api/v1/projects/{id}/generate"),
            &json!({"name": "X", "sections": []}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(b["error"]["field"], "sections");
    error(
        rt.post(
            &format!("/api/v1/projects/{id}/generate"),
            &json!({"name": "X", "sections": ["A"], "tone": "grumpy"}),
        )
        .await,
        400,
    )
    .await;
    let mut missing_agent = bakery_brief("suggest");
    missing_agent["agent_id"] = json!(uuid::Uuid::new_v4().to_string());
    error(
        rt.post(&format!("/api/v1/projects/{id}/generate"), &missing_agent)
            .await,
        404,
    )
    .await;
    assert_eq!(body(rt.get("/api/v1/jobs").await).await["jobs"], json!([]));

    // A job left queued when the process died is run at the next start.
    rt.child.kill().expect("kill");
    rt.child.wait().expect("reap");
    {
        use diesel::{Connection, RunQueryDsl};
        let db = rt.data.join("workspace.sqlite3");
        let mut conn =
            diesel::SqliteConnection::establish(db.to_str().expect("path")).expect("open");
        diesel::sql_query(format!(
            "INSERT INTO jobs (id, kind, project_id, status, input, created_at, updated_at) VALUES ('{}', 'generate_site', '{id}', 'queued', '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            uuid::Uuid::new_v4(),
            bakery_brief("autonomous").to_string().replace('\'', "''"),
        ))
        .execute(&mut conn)
        .expect("queue a job");
    }
    rt.child = spawn(&rt.data, rt.port, &rt.settings);
    rt.wait_healthy().await;
    let jobs = body(rt.get("/api/v1/jobs").await).await;
    let job = jobs["jobs"][0]["id"]
        .as_str()
        .expect("the queued job")
        .to_owned();
    assert_eq!(wait_for_job(&rt, &job).await["status"], "succeeded");
    assert_eq!(rt.head(&id).await, 2);
}

/// A real (minimal) PDF with one text line per page, offsets and all.
fn pdf(pages: &[&str]) -> Vec<u8> {
    let n = pages.len();
    let font = 3 + 2 * n;
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {n} >>",
            (0..n)
                .map(|i| format!("{} 0 R", 3 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ];
    for (i, text) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R /Resources << /Font << /F1 {font} 0 R >> >> >>",
            4 + 2 * i
        ));
        let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
        objects.push(format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ));
    }
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned());
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A Word document: a zip holding word/document.xml.
fn docx(paragraphs: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>"))
        .collect();
    zip.start_file(
        "word/document.xml",
        zip::write::SimpleFileOptions::default(),
    )
    .expect("entry");
    zip.write_all(
        format!(r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#)
            .as_bytes(),
    )
    .expect("write");
    zip.finish().expect("zip").into_inner()
}

async fn upload(rt: &Runtime, files: Vec<(&str, Vec<u8>)>) -> Response {
    let mut form = reqwest::multipart::Form::new();
    for (name, bytes) in files {
        form = form.part(
            "files",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    }
    rt.http
        .post(rt.url("/api/v1/documents"))
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

/// Uploads files, waits for their indexing job; the documents as listed then.
async fn upload_indexed(rt: &Runtime, files: Vec<(&str, Vec<u8>)>) -> Vec<Value> {
    let r = upload(rt, files).await;
    assert_eq!(r.status(), 202);
    let answer = body(r).await;
    let job = wait_for_job(rt, answer["job"]["id"].as_str().expect("a job")).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let ids: Vec<&str> = answer["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    let listed = body(rt.get("/api/v1/documents").await).await["documents"]
        .as_array()
        .cloned()
        .expect("documents");
    ids.iter()
        .filter_map(|id| listed.iter().find(|d| d["id"] == *id).cloned())
        .collect()
}

/// The passages found for `q`: (document, page, offset) of each hit.
async fn passages_found(rt: &Runtime, q: &str) -> Vec<(String, u64, u64)> {
    body(
        rt.get(&format!("/api/v1/documents/search?q={q}&limit=50"))
            .await,
    )
    .await["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            (
                h["document_id"].as_str().expect("id").to_owned(),
                h["page"].as_u64().expect("page"),
                h["offset"].as_u64().expect("offset"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_recognised_indexed_searched_and_deleted() {
    let rt = Runtime::start().await;
    let r = upload(
        &rt,
        vec![
            (
                "notes.txt",
                b"Our oven runs at 250 degrees for the sourdough loaves.".to_vec(),
            ),
            (
                "guide.md",
                b"# Opening hours\nWe open at seven every morning.".to_vec(),
            ),
            (
                "page.pdf",
                b"<!doctype html><html><body><p>Croissants need cold butter.</p></body></html>"
                    .to_vec(),
            ),
            (
                "recipes.docx",
                docx(&["Rye bread needs a long proof.", "Spelt is a gentle grain."]),
            ),
            (
                "menu.pdf",
                pdf(&["Coffee and cake", "Sourdough toast with butter"]),
            ),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let answer = body(r).await;
    let docs = answer["documents"].as_array().cloned().expect("documents");
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["text", "markdown", "html", "docx", "pdf"],
        "named .pdf but HTML inside: sniffed as html"
    );
    assert!(
        docs.iter().all(|d| d["status"] == "indexing"),
        "stored, not indexed yet: {docs:?}"
    );
    // One indexing job for the upload, a step per document, in order.
    let job = &answer["job"];
    assert_eq!(job["kind"], "index_documents");
    let ids: Vec<String> = docs
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(step_names(job), ids);
    let labels: Vec<&str> = job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["label"].as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "notes.txt",
            "guide.md",
            "page.pdf",
            "recipes.docx",
            "menu.pdf"
        ]
    );
    let events = read_events(
        rt.get(&format!(
            "/api/v1/jobs/{}/events",
            job["id"].as_str().expect("id")
        ))
        .await,
        |e| e["status"] == "succeeded" || e["status"] == "failed",
    )
    .await;
    let done = events.last().expect("the job's end");
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["indexed"], 5);
    assert!(
        done["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "done"),
        "{done}"
    );
    let docs = body(rt.get("/api/v1/documents").await).await["documents"]
        .as_array()
        .cloned()
        .expect("documents");
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    let menu = docs
        .iter()
        .find(|d| d["name"] == "menu.pdf")
        .expect("the PDF");
    assert_eq!(menu["pages"], 2);

    let hits = body(rt.get("/api/v1/documents/search?q=sourdough").await).await["hits"]
        .as_array()
        .cloned()
        .expect("hits");
    let names: Vec<&str> = hits
        .iter()
        .filter_map(|h| h["document_name"].as_str())
        .collect();
    assert!(
        names.contains(&"notes.txt") && names.contains(&"menu.pdf"),
        "{names:?}"
    );
    let in_pdf = hits
        .iter()
        .find(|h| h["document_name"] == "menu.pdf")
        .expect("the PDF hit");
    assert_eq!(in_pdf["page"], 2, "the passage's page is its source");
    assert!(
        hits.iter().all(|h| h["snippet"]
            .as_str()
            .is_some_and(|s| s.to_lowercase().contains("<mark>sourdough</mark>"))),
        "{hits:?}"
    );

    let docx_hit = body(rt.get("/api/v1/documents/search?q=rye").await).await;
    assert_eq!(docx_hit["hits"][0]["document_name"], "recipes.docx");

    let answer = body(
        rt.post(
            "/api/v1/documents/query",
            &json!({"question": "when do you open?", "limit": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(answer["passages"][0]["document_name"], "guide.md");
    assert!(
        answer["passages"][0]["passage"]
            .as_str()
            .unwrap_or_default()
            .contains("seven every morning")
    );

    // Odd queries are still queries.
    assert_eq!(
        rt.get("/api/v1/documents/search?q=%22unclosed%20AND%20(")
            .await
            .status(),
        200
    );
    error(rt.get("/api/v1/documents/search?q=").await, 400).await;

    let notes = ids[0].as_str();
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/documents/{notes}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    let hits = body(rt.get("/api/v1/documents/search?q=oven").await).await;
    assert_eq!(hits["hits"], json!([]), "deleted documents leave the index");
    assert_eq!(
        body(rt.get("/api/v1/documents").await).await["documents"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    // A document deleted before (or while) its job indexes it never becomes searchable.
    let r = upload(
        &rt,
        vec![
            (
                "long.txt",
                "Baguettes rest overnight. ".repeat(2000).into_bytes(),
            ),
            ("gone.txt", b"Pretzels are dipped in lye.".to_vec()),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let answer = body(r).await;
    let gone = answer["documents"][1]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/documents/{gone}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    let done = wait_for_job(&rt, answer["job"]["id"].as_str().expect("job")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        ["skipped", "done"].contains(&done["steps"][1]["state"].as_str().unwrap_or_default()),
        "{done}"
    );
    assert_eq!(passages_found(&rt, "pretzels").await, []);
    assert!(!passages_found(&rt, "baguettes").await.is_empty());
    error(rt.get(&format!("/api/v1/documents/{gone}")).await, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexing_resumes_after_a_kill_and_never_duplicates_passages() {
    let mut rt = Runtime::start().await;
    let long = "The crumb of this loaf is open and airy. ".repeat(500);
    let first = upload(
        &rt,
        vec![
            ("crumb.txt", long.into_bytes()),
            ("rye.md", b"# Rye\nDark rye with caraway.".to_vec()),
        ],
    )
    .await;
    let first = body(first).await["job"]["id"]
        .as_str()
        .expect("job")
        .to_owned();
    assert_eq!(wait_for_job(&rt, &first).await["status"], "succeeded");
    let second = upload(
        &rt,
        vec![("menu.pdf", pdf(&["Coffee and cake", "Caraway buns"]))],
    )
    .await;
    assert_eq!(second.status(), 202);
    let second = body(second).await["job"]["id"]
        .as_str()
        .expect("job")
        .to_owned();
    // Killed at once: the second job is queued, running or just done.
    rt.child.kill().expect("SIGKILL");
    rt.child.wait().expect("reap");
    // And the worst case on top: the index holds the first job's passages (and perhaps the
    // second's) while the database says nothing was indexed and both jobs were running.
    {
        use diesel::{Connection, RunQueryDsl};
        let db = rt.data.join("workspace.sqlite3");
        let mut conn =
            diesel::SqliteConnection::establish(db.to_str().expect("path")).expect("open");
        diesel::sql_query("UPDATE documents SET status = 'indexing', passages = 0, pages = 0")
            .execute(&mut conn)
            .expect("documents");
        diesel::sql_query("UPDATE jobs SET status = 'running', result = NULL")
            .execute(&mut conn)
            .expect("jobs");
    }
    rt.child = spawn(&rt.data, rt.port, &rt.settings);
    rt.wait_healthy().await;
    for (job, count) in [(first, 2), (second, 1)] {
        let done = wait_for_job(&rt, &job).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["result"]["indexed"], count, "{done}");
    }
    let docs = body(rt.get("/api/v1/documents").await).await["documents"]
        .as_array()
        .cloned()
        .expect("documents");
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    let crumb = docs
        .iter()
        .find(|d| d["name"] == "crumb.txt")
        .expect("crumb.txt");
    let passages = crumb["passages"].as_u64().expect("passages");
    assert!((2..50).contains(&passages), "{passages}");

    // Every passage once: as many hits as passages, no two alike.
    let found = passages_found(&rt, "crumb").await;
    assert_eq!(found.len() as u64, passages, "{found:?}");
    let mut unique = found.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), found.len(), "duplicated passages: {found:?}");
    assert_eq!(
        passages_found(&rt, "caraway").await.len(),
        2,
        "rye.md and the PDF's page 2"
    );
}

/// Runs SQL on a runtime's database from outside (WAL: while it runs, too).
fn sql(rt: &Runtime, statement: &str) {
    use diesel::{Connection, RunQueryDsl};
    let db = rt.data.join("workspace.sqlite3");
    let mut conn = diesel::SqliteConnection::establish(db.to_str().expect("path")).expect("open");
    diesel::sql_query(statement)
        .execute(&mut conn)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// The documents as listed.
async fn documents(rt: &Runtime) -> Vec<Value> {
    body(rt.get("/api/v1/documents").await).await["documents"]
        .as_array()
        .cloned()
        .expect("documents")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_the_index_commit_leaves_the_document_indexed_once() {
    let mut rt = Runtime::start_with(Settings {
        crash_at: Some("after_index_commit"),
        ..Settings::default()
    })
    .await;
    let long = "The crumb of this loaf is open and airy. ".repeat(500);
    let r = upload(&rt, vec![("crumb.txt", long.into_bytes())]).await;
    assert_eq!(r.status(), 202);
    let job = body(r).await["job"]["id"].as_str().expect("job").to_owned();
    // The passages are committed to the index; the process dies before the database says so.
    rt.restart_after_the_crash().await;
    let done = wait_for_job(&rt, &job).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["indexed"], 1, "{done}");
    let docs = documents(&rt).await;
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["status"], "indexed", "{docs:?}");
    let passages = docs[0]["passages"].as_u64().expect("passages");
    assert!((2..50).contains(&passages), "{passages}");
    let found = passages_found(&rt, "crumb").await;
    assert_eq!(found.len() as u64, passages, "{found:?}");
    let mut unique = found.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), found.len(), "duplicated passages: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexing_job_failed_by_a_database_fault_fails_its_documents() {
    let mut rt = Runtime::start().await;
    // The database refuses to mark any job running: the job fails on its first step.
    sql(
        &rt,
        "CREATE TRIGGER fault BEFORE UPDATE ON jobs WHEN NEW.status = 'running' \
         BEGIN SELECT RAISE(ABORT, 'simulated disk fault'); END",
    );
    let r = upload(
        &rt,
        vec![
            ("rye.md", b"# Rye\nDark rye with caraway.".to_vec()),
            ("notes.txt", b"Proof overnight.".to_vec()),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await["job"]["id"].as_str().expect("job").to_owned();
    let done = wait_for_job(&rt, &job).await;
    assert_eq!(done["status"], "failed", "{done}");
    let docs = documents(&rt).await;
    assert_eq!(docs.len(), 2, "{docs:?}");
    for d in &docs {
        assert_eq!(d["status"], "failed", "{d}");
        let reason = d["error"].as_str().expect("a reason");
        assert!(reason.contains("upload it again"), "{reason}");
    }
    sql(&rt, "DROP TRIGGER fault");

    // Left `indexing` with no job to finish them (the fault kept their failure from being
    // written): the next start queues them again, and they are indexed.
    rt.child.kill().expect("SIGKILL");
    rt.child.wait().expect("reap");
    sql(
        &rt,
        "UPDATE documents SET status = 'indexing', error = NULL",
    );
    rt.child = spawn(&rt.data, rt.port, &rt.settings);
    rt.wait_healthy().await;
    let jobs = body(rt.get("/api/v1/jobs").await).await["jobs"]
        .as_array()
        .cloned()
        .expect("jobs");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let requeued = jobs
        .iter()
        .find(|j| j["id"] != job.as_str())
        .and_then(|j| j["id"].as_str())
        .expect("a new job")
        .to_owned();
    let redone = wait_for_job(&rt, &requeued).await;
    assert_eq!(redone["status"], "succeeded", "{redone}");
    assert_eq!(redone["result"]["indexed"], 2, "{redone}");
    let docs = documents(&rt).await;
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    assert_eq!(passages_found(&rt, "caraway").await.len(), 1);

    // Settled documents are left alone at the next start.
    rt.kill_and_restart().await;
    let jobs = body(rt.get("/api/v1/jobs").await).await["jobs"]
        .as_array()
        .cloned()
        .expect("jobs");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_the_database_cannot_mark_indexed_fails_and_is_not_found() {
    let rt = Runtime::start().await;
    // The passages reach the index; the database refuses the row that says so.
    sql(
        &rt,
        "CREATE TRIGGER fault BEFORE UPDATE ON documents WHEN NEW.status = 'indexed' \
         BEGIN SELECT RAISE(ABORT, 'simulated disk fault'); END",
    );
    let r = upload(
        &rt,
        vec![("rye.md", b"# Rye\nDark rye with caraway.".to_vec())],
    )
    .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await["job"]["id"].as_str().expect("job").to_owned();
    let done = wait_for_job(&rt, &job).await;
    assert_eq!(done["status"], "failed", "{done}");
    let docs = documents(&rt).await;
    assert_eq!(docs[0]["status"], "failed", "{docs:?}");
    assert!(
        docs[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("upload it again")),
        "{docs:?}"
    );
    assert_eq!(
        passages_found(&rt, "caraway").await,
        [],
        "a failed document is not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_killed_as_it_saves_the_site_saves_it_once() {
    for (autonomy, versions, proposals) in [("autonomous", 2, 0), ("suggest", 1, 1)] {
        let mut rt = Runtime::start_with(Settings {
            crash_at: Some("generation_saved"),
            ..Settings::default()
        })
        .await;
        let id = rt.new_project_id("Bakery").await;
        let r = rt
            .post(
                &format!("/api/v1/projects/{id}/generate"),
                &bakery_brief(autonomy),
            )
            .await;
        assert_eq!(r.status(), 202);
        let job = body(r).await["id"].as_str().expect("job").to_owned();
        // The site is written, the job's end not yet: the process dies.
        rt.restart_after_the_crash().await;
        let done = wait_for_job(&rt, &job).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
        assert_eq!(
            history["versions"].as_array().expect("versions").len(),
            versions,
            "{autonomy}: {history}"
        );
        assert_eq!(rt.head(&id).await, versions as i64, "{autonomy}");
        let open = body(rt.get(&format!("/api/v1/projects/{id}/proposals")).await).await;
        assert_eq!(
            open["proposals"].as_array().expect("proposals").len(),
            proposals,
            "{autonomy}: {open}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_are_refused_and_store_nothing() {
    let rt = Runtime::start().await;
    let good = ("fine.txt", b"perfectly fine text".to_vec());

    // A zip named .docx that is no Word document: the whole upload is refused, the good
    // file too. (A file that is what it says but cannot be read fails alone, later: see
    // an_unreadable_pdf_fails_alone_with_its_reason.)
    let not_word = {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("readme.txt", zip::write::SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(b"hello").expect("write");
        zip.finish().expect("zip").into_inner()
    };
    let r = upload(&rt, vec![good.clone(), ("letter.docx", not_word)]).await;
    let b = error(r, 415).await;
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("letter.docx"),
        "{b}"
    );
    // An image named .txt.
    error(
        upload(
            &rt,
            vec![(
                "photo.txt",
                vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0xff],
            )],
        )
        .await,
        415,
    )
    .await;
    // A zip that unpacks to far more than it weighs.
    let bomb = {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("entry");
        let block = vec![b' '; 1 << 20];
        for _ in 0..12 {
            zip.write_all(&block).expect("write");
        }
        zip.finish().expect("zip").into_inner()
    };
    assert!(bomb.len() < 200_000, "{}", bomb.len());
    error(upload(&rt, vec![("bomb.docx", bomb)]).await, 400).await;
    // No files at all.
    let r = rt
        .http
        .post(rt.url("/api/v1/documents"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert!(r.status().is_client_error(), "{}", r.status());

    assert_eq!(
        body(rt.get("/api/v1/documents").await).await["documents"],
        json!([])
    );
    assert_eq!(
        body(rt.get("/api/v1/documents/search?q=fine").await).await["hits"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_pdf_fails_alone_with_its_reason() {
    let rt = Runtime::start().await;
    let docs = upload_indexed(
        &rt,
        vec![
            ("fine.txt", b"perfectly fine text".to_vec()),
            ("broken.pdf", b"%PDF-1.7 this is not a pdf at all".to_vec()),
            ("blank.md", b"   \n\n  ".to_vec()),
        ],
    )
    .await;
    let statuses: Vec<&str> = docs.iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(statuses, ["indexed", "failed", "failed"], "{docs:?}");
    let reason = docs[1]["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("broken.pdf") && reason.contains("could not be read"),
        "a reason a person can read: {reason}"
    );
    assert!(
        docs[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no text")),
        "{docs:?}"
    );
    assert!(docs[0]["error"].is_null());
    let jobs = body(rt.get("/api/v1/jobs").await).await;
    let job = &jobs["jobs"][0];
    assert_eq!(job["status"], "succeeded", "the job ran to its end: {job}");
    assert_eq!(
        (
            job["result"]["indexed"].as_u64(),
            job["result"]["failed"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let states: Vec<&str> = job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(states, ["done", "failed", "failed"]);
    assert_eq!(job["steps"][1]["message"].as_str(), Some(reason));

    // The good file is searchable; the failed ones can be deleted like any other.
    assert_eq!(passages_found(&rt, "fine").await.len(), 1);
    let broken = docs[1]["id"].as_str().expect("id");
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/documents/{broken}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    assert_eq!(
        body(rt.get("/api/v1/documents").await).await["documents"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_views_are_counted_without_cookies_and_rolled_up() {
    let mut rt = Runtime::start().await;
    let id = rt.new_project_id("Counted").await;
    assert_eq!(
        rt.put_page(&id, "about.html", "<p>About</p>", None)
            .await
            .status(),
        201
    );
    publish(&rt, &id).await;
    let site = rt
        .get(&format!("/sites/{id}/"))
        .await
        .text()
        .await
        .expect("site");
    assert!(
        site.contains(&format!("/a.gif?p={id}&path=index.html&s=site")),
        "published pages carry the beacon"
    );
    let preview = rt
        .get(&format!("/preview/{id}/index.html"))
        .await
        .text()
        .await
        .expect("preview");
    assert!(preview.contains("s=preview"));

    let view = async |visitor: &str, path: &str, referrer: &str, agent: &str| {
        let r = rt
            .http
            .get(rt.url("/a.gif"))
            .query(&[
                ("p", id.as_str()),
                ("path", path),
                ("s", "site"),
                ("r", referrer),
            ])
            .header("x-forwarded-for", visitor)
            .header("user-agent", agent)
            .send()
            .await
            .expect("beacon");
        assert_eq!(
            r.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("image/gif")
        );
        assert!(r.headers().get("set-cookie").is_none(), "no cookies");
    };
    let browser = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
    view(
        "203.0.113.1",
        "index.html",
        "https://search.example/?q=bread",
        browser,
    )
    .await;
    view("203.0.113.1", "about.html", "", browser).await;
    view(
        "203.0.113.2",
        "index.html",
        "https://friend.example/post",
        browser,
    )
    .await;
    view("203.0.113.3", "index.html", "", "Googlebot/2.1").await;
    view("203.0.113.4", "../etc/passwd", "", browser).await;
    // Paths that are not pages of the project are not counted (nor stored).
    view("203.0.113.5", "made-up.html", "", browser).await;
    view("203.0.113.5", "style.css", "", browser).await;
    // A beacon for another (unknown) project records nothing.
    rt.http
        .get(rt.url("/a.gif"))
        .query(&[
            ("p", uuid::Uuid::new_v4().to_string().as_str()),
            ("path", "index.html"),
            ("s", "site"),
        ])
        .header("user-agent", browser)
        .send()
        .await
        .expect("beacon");

    let today = body(rt.get(&format!("/api/v1/projects/{id}/analytics")).await).await;
    assert_eq!(today["views"], 3, "{today}");
    assert_eq!(today["visitors"], 2, "{today}");
    assert_eq!(today["pages"][0], json!({"name": "index.html", "views": 2}));
    let referrers: Vec<&str> = today["referrers"]
        .as_array()
        .expect("referrers")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        referrers,
        ["friend.example", "search.example"],
        "hosts only"
    );
    assert_eq!(today["by_day"].as_array().map(Vec::len), Some(30));

    // Yesterday's raw hits (of the site and of the preview) are counted at once, and rolled
    // up into daily totals by the background task (it runs at start-up, then hourly).
    use diesel::{Connection, RunQueryDsl};
    let db = rt.data.join("workspace.sqlite3");
    let open = || {
        let mut conn =
            diesel::SqliteConnection::establish(db.to_str().expect("path")).expect("open");
        diesel::sql_query("PRAGMA busy_timeout = 5000")
            .execute(&mut conn)
            .expect("pragma");
        conn
    };
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    {
        let mut conn = open();
        for (source, visitor, path, referrer) in [
            ("site", "a", "index.html", ""),
            ("site", "a", "about.html", ""),
            ("site", "b", "index.html", ""),
            ("preview", "c", "index.html", "colleague.example"),
        ] {
            diesel::sql_query(format!(
                "INSERT INTO analytics_hits (project_id, source, path, day, visitor, referrer) VALUES ('{id}', '{source}', '{path}', '{yesterday}', '{visitor}', '{referrer}')"
            ))
            .execute(&mut conn)
            .expect("insert");
        }
    }
    let check = async |rt: &Runtime| {
        let both = body(rt.get(&format!("/api/v1/projects/{id}/analytics")).await).await;
        assert_eq!(
            (both["views"].as_i64(), both["visitors"].as_i64()),
            (Some(6), Some(4)),
            "{both}"
        );
        let days = both["by_day"].as_array().expect("days");
        assert_eq!(days[days.len() - 2]["views"], 3);
        assert_eq!(days[days.len() - 2]["visitors"], 2);
        let preview = body(
            rt.get(&format!("/api/v1/projects/{id}/analytics?source=preview"))
                .await,
        )
        .await;
        assert_eq!(preview["views"], 1, "{preview}");
        assert_eq!(
            preview["referrers"][0],
            json!({"name": "colleague.example", "views": 1})
        );
    };
    check(&rt).await;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let raw_of = |day: &str| {
        diesel::sql_query(format!(
            "SELECT count(*) AS n FROM analytics_hits WHERE day = '{day}'"
        ))
        .get_result::<Count>(&mut open())
        .expect("count")
        .n
    };
    assert_eq!(raw_of(&yesterday), 4, "reading the analytics wrote nothing");
    rt.kill_and_restart().await;
    let mut rolled = false;
    for _ in 0..100 {
        if raw_of(&yesterday) == 0 {
            rolled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        rolled,
        "the raw hits of past days are rolled up and deleted"
    );
    assert_eq!(
        raw_of(&chrono::Utc::now().date_naive().to_string()),
        3,
        "today's stay raw"
    );
    check(&rt).await;

    error(
        rt.get(&format!(
            "/api/v1/projects/{id}/analytics?from=2026-02-01&to=2026-01-01"
        ))
        .await,
        400,
    )
    .await;
    error(
        rt.get(&format!(
            "/api/v1/projects/{id}/analytics?source=everything"
        ))
        .await,
        400,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_replies_stream_and_quote_the_users_documents() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;
    upload_indexed(
        &rt,
        vec![(
            "hours.txt",
            b"The bakery opens at seven and closes at three on weekdays.".to_vec(),
        )],
    )
    .await;

    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/sessions"),
            &json!({"title": "Opening hours"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let session = body(r).await["id"].as_str().expect("session").to_owned();

    let reply = rt
        .post(
            &format!("/api/v1/sessions/{session}/messages"),
            &json!({"content": "When does the bakery open?"}),
        )
        .await;
    assert_eq!(
        reply
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let text = reply.text().await.expect("events");
    let events: Vec<(&str, Value)> = text
        .split("\n\n")
        .filter_map(|frame| {
            let name = frame.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).expect("JSON")))
        })
        .collect();
    assert_eq!(events.first().map(|e| e.0), Some("message"));
    assert_eq!(events.last().map(|e| e.0), Some("done"));
    let tokens: String = events
        .iter()
        .filter(|e| e.0 == "token")
        .filter_map(|e| e.1["text"].as_str())
        .collect();
    let done = &events.last().expect("done").1;
    assert_eq!(
        tokens,
        done["content"].as_str().expect("content"),
        "the tokens make up the stored reply"
    );
    assert!(tokens.contains("not a language model"));
    assert!(
        tokens.contains("opens at seven") && tokens.contains("hours.txt"),
        "{tokens}"
    );
    assert_eq!(done["sources"][0]["document_name"], "hours.txt");

    let history = body(
        rt.get(&format!("/api/v1/sessions/{session}/messages?limit=10"))
            .await,
    )
    .await;
    let roles: Vec<&str> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["user", "assistant"]);
    let older = body(
        rt.get(&format!(
            "/api/v1/sessions/{session}/messages?before={}",
            history["messages"][1]["id"]
        ))
        .await,
    )
    .await;
    assert_eq!(older["messages"].as_array().map(Vec::len), Some(1));

    error(
        rt.post(
            &format!("/api/v1/sessions/{session}/messages"),
            &json!({"content": "   "}),
        )
        .await,
        400,
    )
    .await;
    let listed = body(rt.get(&format!("/api/v1/projects/{id}/sessions")).await).await;
    assert_eq!(listed["total"], 1);
    let renamed = rt
        .http
        .patch(rt.url(&format!("/api/v1/sessions/{session}")))
        .json(&json!({"title": "Hours"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(body(renamed).await["title"], "Hours");
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/sessions/{session}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    error(
        rt.get(&format!("/api/v1/sessions/{session}/messages"))
            .await,
        404,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_and_fonts_are_versioned_assets_checked_by_content() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Assets").await;
    let png =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    let put = async |path: &str, bytes: Vec<u8>| {
        rt.http
            .put(rt.url(&format!("/api/v1/projects/{id}/assets/{path}")))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .expect("put")
    };
    assert_eq!(put("images/logo.png", png.clone()).await.status(), 201);
    let listed = body(rt.get(&format!("/api/v1/projects/{id}/assets")).await).await;
    assert_eq!(listed["assets"][0]["path"], "images/logo.png");
    assert_eq!(listed["head_version"], 2, "an asset is a version too");

    let r = rt
        .get(&format!("/api/v1/projects/{id}/assets/images/logo.png"))
        .await;
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), png);
    let r = rt.get(&format!("/preview/{id}/images/logo.png")).await;
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );

    // A file that is not what its name says, or not an asset at all.
    error(
        put("images/fake.png", b"<script>alert(1)</script>".to_vec()).await,
        415,
    )
    .await;
    error(put("fonts/font.woff2", png.clone()).await, 415).await;
    error(put("tool.exe", b"MZ".to_vec()).await, 400).await;
    assert_eq!(
        put("fonts/brand.woff2", b"wOF2\0\x01\0\0".to_vec())
            .await
            .status(),
        201
    );
    // Replacing needs If-Match, like pages.
    error(put("images/logo.png", png.clone()).await, 428).await;
    assert_eq!(rt.head(&id).await, 3);
}

/// A minimal WebSocket client over TCP: enough to prove the server's side of the protocol.
struct Ws(tokio::net::TcpStream);

impl Ws {
    async fn connect(port: u16) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        tcp.write_all(
            format!("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").as_bytes(),
        )
        .await
        .expect("handshake");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            tcp.read_exact(&mut byte).await.expect("handshake answer");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        Ws(tcp)
    }

    async fn send_text(&mut self, text: &str) {
        use tokio::io::AsyncWriteExt;
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | text.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.0.write_all(&frame).await.expect("send");
    }

    /// The next frame: (opcode, payload).
    async fn frame(&mut self) -> (u8, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; 2];
        self.0.read_exact(&mut head).await.expect("frame");
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                self.0.read_exact(&mut n).await.expect("len");
                u16::from_be_bytes(n) as usize
            }
            127 => {
                let mut n = [0u8; 8];
                self.0.read_exact(&mut n).await.expect("len");
                u64::from_be_bytes(n) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.0.read_exact(&mut payload).await.expect("payload");
        (head[0] & 0x0f, payload)
    }

    /// The next text message, as JSON (pings from the server are skipped).
    async fn text(&mut self) -> Value {
        loop {
            let (opcode, payload) = tokio::time::timeout(Duration::from_secs(20), self.frame())
                .await
                .expect("a message in time");
            match opcode {
                0x1 => return serde_json::from_slice(&payload).expect("JSON text"),
                0x9 | 0xA => continue,
                other => panic!("unexpected opcode {other}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_answers_pings_and_carries_job_progress() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Live").await;
    let mut ws = Ws::connect(rt.port).await;
    // The server pings at once: a live connection keeps itself alive.
    let (opcode, _) = ws.frame().await;
    assert_eq!(opcode, 0x9, "a ping from the server");
    ws.send_text("ping").await;
    assert_eq!(ws.text().await, json!({"type": "pong"}));

    let job = body(
        rt.post(
            &format!("/api/v1/projects/{id}/generate"),
            &bakery_brief("autonomous"),
        )
        .await,
    )
    .await;
    let job_id = job["id"].as_str().expect("job").to_owned();
    let mut steps = Vec::new();
    loop {
        let message = ws.text().await;
        assert_eq!(message["type"], "job");
        if message["job"]["id"] != job_id.as_str() {
            continue;
        }
        if let Some(step) = message["job"]["step"]
            .as_str()
            .filter(|_| message["job"]["status"] == "running")
        {
            steps.push(step.to_owned());
        }
        if message["job"]["status"] == "succeeded" {
            break;
        }
    }
    assert_eq!(
        steps,
        ["plan", "content", "seo", "layout", "code", "review"]
    );

    // Indexing reports its progress there too, a step per document.
    let r = upload(&rt, vec![("live.txt", b"Live crumbs.".to_vec())]).await;
    let answer = body(r).await;
    let job_id = answer["job"]["id"].as_str().expect("job").to_owned();
    loop {
        let message = ws.text().await;
        if message["type"] != "job" || message["job"]["id"] != job_id.as_str() {
            continue;
        }
        if message["job"]["status"] == "succeeded" {
            assert_eq!(message["job"]["steps"][0]["label"], "live.txt");
            assert_eq!(message["job"]["steps"][0]["state"], "done");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_api() {
    let rt = Runtime::start().await;
    let doc = body(rt.get("/api/v1/openapi.json").await).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/projects", "post"),
        ("/api/v1/projects/{id}/pages/{path}", "put"),
        ("/api/v1/projects/{id}/undo", "post"),
        ("/api/v1/projects/{id}/seo", "get"),
        ("/api/v1/documents/search", "get"),
        ("/api/v1/projects/{id}/generate", "post"),
        ("/api/v1/projects/{id}/exports", "post"),
        ("/api/v1/projects/{id}/publish", "post"),
        ("/api/v1/jobs/{id}", "get"),
        ("/api/v1/jobs/{id}/artifact", "get"),
        ("/api/v1/documents", "post"),
        ("/api/v1/sessions/{id}/messages", "post"),
        ("/api/v1/projects/{id}/analytics", "get"),
        ("/ws", "get"),
        ("/api/v1/whoami", "get"),
        ("/api/v1/notes", "get"),
        ("/api/v1/notes", "post"),
        ("/api/v1/notes/{id}", "get"),
        ("/api/v1/notes/{id}", "delete"),
        ("/api/v1/uploads", "get"),
        ("/api/v1/uploads", "post"),
        ("/api/v1/uploads/{id}", "get"),
        ("/api/v1/uploads/{id}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    let operations: usize = paths
        .values()
        .filter_map(|p| p.as_object())
        .map(|p| p.len())
        .sum();
    assert!(operations >= 68, "{operations} operations documented");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_session_names_an_agent_that_exists_and_outlives_it() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Agents and chats").await;
    let r = rt.post("/api/v1/agents", &json!({"name": "Editor"})).await;
    assert_eq!(r.status(), 201);
    let agent = body(r).await["id"].as_str().expect("agent").to_owned();

    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/sessions"),
            &json!({"title": "With a ghost", "agent_id": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(error(r, 404).await["error"]["code"], "not_found");

    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/sessions"),
            &json!({"title": "With the editor", "agent_id": agent}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let session = body(r).await["id"].as_str().expect("session").to_owned();
    let r = rt
        .http
        .delete(rt.url(&format!("/api/v1/agents/{agent}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    let shown = body(rt.get(&format!("/api/v1/sessions/{session}")).await).await;
    assert!(shown["agent_id"].is_null(), "{shown}");
    assert_eq!(shown["title"], "With the editor", "the session stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_like_get_without_a_body() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Heads").await;
    for path in [
        "/healthz".to_owned(),
        "/api/v1/projects".to_owned(),
        format!("/api/v1/projects/{id}"),
        format!("/api/v1/projects/{id}/pages/index.html"),
        "/api/v1/uploads".to_owned(),
    ] {
        let get = rt.get(&path).await;
        let head = rt.http.head(rt.url(&path)).send().await.expect("HEAD");
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(
            head.bytes().await.expect("body").is_empty(),
            "HEAD {path} has no body"
        );
    }
    let missing = rt
        .http
        .head(rt.url(&format!("/api/v1/projects/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(missing.status(), 404);
}

/// The status line a WebSocket upgrade of `/ws` gets, with `identity` if given.
async fn upgrade_status(port: u16, identity: Option<&str>) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let identity = identity
        .map(|v| format!("{IDENTITY}: {v}\r\n"))
        .unwrap_or_default();
    tcp.write_all(
        format!("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{identity}\r\n").as_bytes(),
    )
    .await
    .expect("handshake");
    let mut line = String::new();
    BufReader::new(tcp)
        .read_line(&mut line)
        .await
        .expect("status line");
    line.trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_tenant_secret_only_requests_the_platform_signed_are_answered() {
    let tenant = Tenant::new();
    let rt = Runtime::start_for(&tenant).await;

    // Unsigned: refused before anything reads it, so nothing is written.
    let r = rt
        .http
        .post(rt.url("/api/v1/notes"))
        .json(&json!({"text": "not from the platform"}))
        .send()
        .await
        .expect("post");
    let refused = error(r, 401).await;
    assert_eq!(refused["error"]["code"], "unauthenticated");
    assert_eq!(
        refused["error"]["message"],
        "this workspace only answers requests relayed by the WebSplat platform"
    );
    for path in [
        "/healthz",
        "/",
        "/static/app.js",
        "/api/v1/whoami",
        "/api/v1/notes",
        "/api/v1/openapi.json",
        "/no/such/thing",
    ] {
        let r = rt.http.get(rt.url(path)).send().await.expect("get");
        assert_eq!(r.status(), 401, "GET {path} unsigned");
    }
    assert!(
        upgrade_status(rt.port, None)
            .await
            .starts_with("HTTP/1.1 401"),
        "an unsigned WebSocket upgrade"
    );

    // Signed, but not right: another secret, another user, too old or too new, another
    // request, a mangled header.
    let now = chrono::Utc::now().timestamp();
    let impostor = Tenant {
        user: tenant.user,
        ..Tenant::new()
    };
    let path = "/api/v1/notes";
    for (what, method, identity) in [
        (
            "another secret",
            Method::GET,
            impostor.identity("GET", path),
        ),
        (
            "another user",
            Method::GET,
            tenant.identity_at(uuid::Uuid::new_v4(), now, "GET", path),
        ),
        (
            "a stale time",
            Method::GET,
            tenant.identity_at(tenant.user, now - 301, "GET", path),
        ),
        (
            "a future time",
            Method::GET,
            tenant.identity_at(tenant.user, now + 301, "GET", path),
        ),
        ("another method", Method::POST, tenant.identity("GET", path)),
        (
            "another query",
            Method::GET,
            tenant.identity("GET", "/api/v1/notes?limit=1"),
        ),
        (
            "an uppercase signature",
            Method::GET,
            tenant.identity("GET", path).to_uppercase(),
        ),
        ("garbage", Method::GET, "v1;user=me".to_owned()),
    ] {
        let r = rt
            .http
            .request(method, rt.url(path))
            .header(IDENTITY, identity)
            .json(&json!({"text": "not from the platform"}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401, "{what}");
    }

    // Signed for the owner: answered, and the owner is known.
    assert_eq!(rt.get("/healthz").await.status(), 200);
    let r = rt.get("/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(rt.get("/static/app.js").await.status(), 200);
    assert_eq!(
        body(rt.get("/api/v1/whoami").await).await,
        json!({"user": tenant.user.to_string(), "tenant_secret_required": true})
    );
    assert_eq!(
        body(rt.get("/api/v1/notes").await).await,
        json!({"items": []}),
        "no refused request wrote anything"
    );
    let r = rt.post("/api/v1/notes", &json!({"text": "relayed"})).await;
    assert_eq!(r.status(), 201);
    let items = body(rt.get("/api/v1/notes?limit=10").await).await["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(items[0]["text"], "relayed", "{items}");
    let status = upgrade_status(rt.port, Some(&tenant.identity("GET", "/ws"))).await;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
}

/// Starts the binary with the tenant settings `env`, expecting it to stop at once: (exit
/// code, stderr).
fn refused_start(env: &[(&str, &str)]) -> (Option<i32>, String) {
    use std::io::Read;
    let data = std::env::temp_dir().join(format!(
        "websplat-runtime-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut cmd = command(&data, 0, &Settings::default());
    cmd.envs(env.iter().copied()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start tenant-runtime");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&data);
            panic!("the runtime started with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let _ = std::fs::remove_dir_all(&data);
    (status.code(), stderr)
}

#[test]
fn a_short_secret_or_an_owner_that_is_not_a_uuid_stops_the_runtime_at_start() {
    let short = "x".repeat(31);
    let user = uuid::Uuid::new_v4().to_string();
    let (code, stderr) = refused_start(&[
        ("WEBSPLAT_TENANT_SECRET", &short),
        ("WEBSPLAT_TENANT_USER", &user),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("WEBSPLAT_TENANT_SECRET") && stderr.contains("32"),
        "{stderr}"
    );
    assert!(!stderr.contains(&short), "the secret is never shown");

    let long = "s".repeat(40);
    let (code, stderr) = refused_start(&[
        ("WEBSPLAT_TENANT_SECRET", &long),
        ("WEBSPLAT_TENANT_USER", "alice"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("WEBSPLAT_TENANT_USER") && stderr.contains("not a UUID"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_written_listed_and_deleted_and_outlive_a_restart() {
    let mut rt = Runtime::start().await;
    assert_eq!(
        body(rt.get("/api/v1/whoami").await).await,
        json!({"user": null, "tenant_secret_required": false}),
        "standalone, nobody is vouched for"
    );
    assert_eq!(
        body(rt.get("/api/v1/notes").await).await,
        json!({"items": []})
    );

    let r = rt
        .post("/api/v1/notes", &json!({"text": "  first \n"}))
        .await;
    assert_eq!(r.status(), 201);
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_owned();
    let first = body(r).await;
    assert_eq!(first["text"], "first", "trimmed");
    let first_id = first["id"].as_i64().expect("an integer id");
    assert_eq!(location, format!("/api/v1/notes/{first_id}"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(first["created_at"].as_str().expect("a time")).is_ok(),
        "{first}"
    );
    let mut ids = vec![first_id];
    for text in ["second", "third"] {
        let r = rt.post("/api/v1/notes", &json!({"text": text})).await;
        assert_eq!(r.status(), 201);
        ids.push(body(r).await["id"].as_i64().expect("id"));
    }
    assert_eq!(body(rt.get(&location).await).await, first);

    let listed = |v: Value| -> Vec<(i64, String)> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|n| {
                (
                    n["id"].as_i64().expect("id"),
                    n["text"].as_str().expect("text").to_owned(),
                )
            })
            .collect()
    };
    let newest_first = vec![
        (ids[2], "third".to_owned()),
        (ids[1], "second".to_owned()),
        (ids[0], "first".to_owned()),
    ];
    assert_eq!(
        listed(body(rt.get("/api/v1/notes").await).await),
        newest_first
    );
    assert_eq!(
        listed(body(rt.get("/api/v1/notes?limit=2").await).await),
        newest_first[..2]
    );
    assert_eq!(
        listed(body(rt.get("/api/v1/notes?limit=2&offset=2").await).await),
        newest_first[2..]
    );

    // Refused input writes nothing.
    for (bad, field) in [
        (json!({"text": ""}), Some("text")),
        (json!({"text": " \n\t "}), Some("text")),
        (json!({"text": "x".repeat(10_001)}), Some("text")),
        (json!({"text": "ring\u{7}"}), Some("text")),
        (json!({"text": "ok", "pinned": true}), None),
        (json!({}), None),
        (json!({"text": 5}), None),
        (json!("text"), None),
    ] {
        let b = error(rt.post("/api/v1/notes", &bad).await, 400).await;
        assert_eq!(b["error"]["field"].as_str(), field, "{bad}: {b}");
    }
    let r = rt
        .request(Method::POST, "/api/v1/notes")
        .header("content-type", "application/json")
        .body("{\"text\": ")
        .send()
        .await
        .expect("post");
    assert_eq!(error(r, 400).await["error"]["code"], "bad_request");
    let r = rt
        .request(Method::POST, "/api/v1/notes")
        .header("content-type", "text/plain")
        .body("{\"text\": \"plain\"}")
        .send()
        .await
        .expect("post");
    assert_eq!(
        error(r, 415).await["error"]["code"],
        "unsupported_media_type"
    );
    for query in ["limit=0", "limit=101", "offset=-1"] {
        let b = error(rt.get(&format!("/api/v1/notes?{query}")).await, 400).await;
        assert_eq!(b["error"]["code"], "validation_failed", "{query}");
    }
    for query in ["limit=many", "page=2"] {
        error(rt.get(&format!("/api/v1/notes?{query}")).await, 400).await;
    }
    assert_eq!(
        listed(body(rt.get("/api/v1/notes").await).await),
        newest_first
    );

    // The longest note there may be.
    let long = "é".repeat(10_000);
    let r = rt.post("/api/v1/notes", &json!({"text": long})).await;
    assert_eq!(r.status(), 201);
    let long_id = body(r).await["id"].as_i64().expect("id");

    for missing in ["abc", "0", "-1", "999999", "1.5"] {
        let r = rt.get(&format!("/api/v1/notes/{missing}")).await;
        assert_eq!(
            error(r, 404).await["error"]["code"],
            "not_found",
            "{missing}"
        );
    }
    for id in [ids[1], long_id] {
        assert_eq!(
            rt.delete(&format!("/api/v1/notes/{id}")).await.status(),
            204
        );
        error(rt.delete(&format!("/api/v1/notes/{id}")).await, 404).await;
        error(rt.get(&format!("/api/v1/notes/{id}")).await, 404).await;
    }

    // A hard stop and a new process on the same data: the notes are there, ids never reused.
    rt.kill_and_restart().await;
    let kept = vec![newest_first[0].clone(), newest_first[2].clone()];
    assert_eq!(listed(body(rt.get("/api/v1/notes").await).await), kept);
    let r = rt.post("/api/v1/notes", &json!({"text": "after"})).await;
    assert_eq!(r.status(), 201);
    assert!(body(r).await["id"].as_i64().expect("id") > long_id);
}
