//! The harness of the workspace tests: the runtime binary started on a port and data
//! directory of its own (killed, restarted after a crash point, signed for as the platform
//! would), answers read as JSON, background jobs waited for, and the documents the tests
//! upload (a real PDF, a Word file). It only drives the runtime from outside; it never reaches
//! into the runtime's files except through SQL a test asks for.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tenant_runtime::trust::{HEADER as IDENTITY, TenantSecret, sign};
use websplat_test_support::free_port;

/// How a test runtime is started: a storage quota, the largest staged upload, a tenant
/// secret, a point at which it crashes (`WEBSPLAT_RUNTIME_TEST_CRASH_AT`).
#[derive(Default, Clone)]
pub struct Settings {
    pub quota: Option<String>,
    pub max_staged_upload: Option<String>,
    pub tenant: Option<Tenant>,
    pub crash_at: Option<&'static str>,
}

/// What the platform gives a tenant's container: the secret it signs requests with, and
/// the owner it signs them for.
#[derive(Clone)]
pub struct Tenant {
    pub secret: String,
    pub user: uuid::Uuid,
}

impl Tenant {
    pub fn new() -> Self {
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
    pub fn identity_at(&self, user: uuid::Uuid, ts: i64, method: &str, path: &str) -> String {
        let secret = TenantSecret::parse(self.secret.as_str()).expect("a valid secret");
        sign(&secret, user, ts, method, path)
    }

    /// The owner's identity for a request made now.
    pub fn identity(&self, method: &str, path: &str) -> String {
        self.identity_at(self.user, chrono::Utc::now().timestamp(), method, path)
    }
}

/// A runtime process on its own port and data directory; killed (and the directory removed)
/// when the test ends. With a tenant secret, its helpers sign their requests as the platform.
pub struct Runtime {
    pub settings: Settings,
    pub base: String,
    pub port: u16,
    pub data: PathBuf,
    pub child: Child,
    pub http: Client,
}

impl Runtime {
    pub async fn start() -> Self {
        Self::start_with(Settings::default()).await
    }

    pub async fn start_with_quota(quota: &str) -> Self {
        Self::start_with(Settings {
            quota: Some(quota.to_owned()),
            ..Settings::default()
        })
        .await
    }

    pub async fn start_for(tenant: &Tenant) -> Self {
        Self::start_with(Settings {
            tenant: Some(tenant.clone()),
            ..Settings::default()
        })
        .await
    }

    pub async fn start_with(settings: Settings) -> Self {
        let data = std::env::temp_dir().join(format!(
            "websplat-runtime-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let port = free_port();
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

    pub async fn wait_healthy(&self) {
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
    pub async fn restart_after_the_crash(&mut self) {
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
    pub async fn kill_and_restart(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
        self.child = spawn(&self.data, self.port, &self.settings);
        self.wait_healthy().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, signed as the platform would when the runtime has a secret.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method.clone(), self.url(path));
        match &self.settings.tenant {
            Some(tenant) => req.header(IDENTITY, tenant.identity(method.as_str(), path)),
            None => req,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn put_page(
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

    pub async fn new_project(&self, name: &str) -> Value {
        let r = self.post("/api/v1/projects", &json!({"name": name})).await;
        assert_eq!(r.status(), 201);
        body(r).await
    }

    /// Creates a project; its id.
    pub async fn new_project_id(&self, name: &str) -> String {
        self.new_project(name).await["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn head(&self, project: &str) -> i64 {
        body(self.get(&format!("/api/v1/projects/{project}")).await).await["head_version"]
            .as_i64()
            .expect("head_version")
    }
}

pub fn command(data: &Path, port: u16, settings: &Settings) -> Command {
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

pub fn spawn(data: &Path, port: u16, settings: &Settings) -> Child {
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

pub async fn body(r: Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
}

pub async fn error(r: Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "unexpected status");
    let b = body(r).await;
    assert!(
        b["error"]["request_id"].is_string() && b["error"]["message"].is_string(),
        "{b}"
    );
    b
}

pub fn etag(r: &Response) -> String {
    r.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_owned()
}

/// Reads server-sent events from `response` until `stop` says so; returns their data.
pub async fn read_events(
    mut response: Response,
    mut stop: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
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

pub async fn wait_for_job(rt: &Runtime, job: &str) -> Value {
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
pub async fn publish(rt: &Runtime, project: &str) -> Value {
    let r = rt
        .post(&format!("/api/v1/projects/{project}/publish"), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await;
    let done = wait_for_job(rt, job["id"].as_str().expect("job id")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    done["result"].clone()
}

/// Starts the binary with the tenant settings `env`, expecting it to stop at once: (exit
/// code, stderr).
pub fn refused_start(env: &[(&str, &str)]) -> (Option<i32>, String) {
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

/// The names of a job's steps, in order.
pub fn step_names(job: &Value) -> Vec<String> {
    job["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("a job lists its steps: {job}"))
        .iter()
        .map(|s| s["name"].as_str().expect("a step name").to_owned())
        .collect()
}

pub fn bakery_brief(autonomy: &str) -> Value {
    json!({
        "name": "Corner Bakery",
        "description": "Sourdough bread and pastries baked every morning in Lisbon.",
        "sections": ["Menu", "About us", "Visit"],
        "tone": "friendly",
        "keywords": ["sourdough", "pastries"],
        "autonomy": autonomy
    })
}

/// A real (minimal) PDF with one text line per page, offsets and all.
pub fn pdf(pages: &[&str]) -> Vec<u8> {
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
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
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

pub async fn upload(rt: &Runtime, files: Vec<(&str, Vec<u8>)>) -> Response {
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
pub async fn upload_indexed(rt: &Runtime, files: Vec<(&str, Vec<u8>)>) -> Vec<Value> {
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
pub async fn passages_found(rt: &Runtime, q: &str) -> Vec<(String, u64, u64)> {
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

/// Runs SQL on a runtime's database from outside (WAL: while it runs, too).
pub fn sql(rt: &Runtime, statement: &str) {
    use diesel::{Connection, RunQueryDsl};
    let db = rt.data.join("workspace.sqlite3");
    let mut conn = diesel::SqliteConnection::establish(db.to_str().expect("path")).expect("open");
    diesel::sql_query(statement)
        .execute(&mut conn)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// The documents as listed.
pub async fn documents(rt: &Runtime) -> Vec<Value> {
    body(rt.get("/api/v1/documents").await).await["documents"]
        .as_array()
        .cloned()
        .expect("documents")
}
