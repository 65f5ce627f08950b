//! An in-memory container engine behind the [`Orchestrator`] interface: for tests and
//! development only, NEVER for serving users (it runs no tenant code, isolates nothing and
//! keeps nothing on disk). It exists so the lifecycle, the reconciler, the idle reaper and
//! admission can be tested in seconds without Docker, and so the interface is proven to
//! hold for more than one engine.
//!
//! It behaves as an engine does: containers are created, started, stopped and removed with
//! their labels; volumes are kept by name; deaths and out-of-memory kills come out of an
//! event stream (replayed from `since`); a name in use or a missing image is refused. A
//! started container is a tiny HTTP server on a loopback port that checks the platform's
//! identity header (signed with the container's secret) and answers the runtime's health
//! path and usage report, so the lifecycle probes it exactly as it probes a real runtime.
//! One started with a claim key instead (a warm runtime) answers, as the real one does,
//! only its health check and one claim signed with that key, then serves the claiming user.
//!
//! Like a Docker daemon, one engine serves the whole process ([`MemoryDriver::shared`]):
//! a platform restarted in the same process finds its containers still running. Its
//! servers run on a thread of the engine's own, so they outlive the platform's workers.
//! Tests steer it with [`MemoryDriver::crash`], [`MemoryDriver::run_out_of_memory`],
//! [`MemoryDriver::remove_image`], [`MemoryDriver::set_startup`] and
//! [`MemoryDriver::set_used_bytes`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

use super::orchestrator::{
    ContainerEvent, ContainerInfo, ContainerSpec, EventKind, Orchestrator, OrchestratorError,
    Result, runtime,
};

/// What a container of an image does once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Startup {
    /// Serves at once (the default).
    #[default]
    Serves,
    /// Runs but never answers its health check (503).
    NeverReady,
    /// Runs without answering, then exits with this code after a moment.
    Exits(i64),
}

#[derive(Debug, Clone)]
enum Status {
    Created,
    Running { address: SocketAddr },
    Exited { code: i64, oom: bool },
}

struct Container {
    id: String,
    name: String,
    image: String,
    labels: HashMap<String, String>,
    env: HashMap<String, String>,
    volume: String,
    status: Status,
    /// The task serving its runtime's HTTP, while it runs.
    server: Option<tokio::task::JoinHandle<()>>,
    used_bytes: Arc<std::sync::atomic::AtomicI64>,
}

impl Container {
    fn info(&self) -> ContainerInfo {
        let (running, address, exit_code, oom_killed) = match &self.status {
            Status::Created => (false, None, None, false),
            Status::Running { address } => (true, Some(*address), None, false),
            Status::Exited { code, oom } => (false, None, Some(*code), *oom),
        };
        ContainerInfo {
            id: self.id.clone(),
            labels: self.labels.clone(),
            running,
            address,
            exit_code,
            oom_killed,
            machine_lost: false,
        }
    }

    fn carries(&self, key: &str, value: &str) -> bool {
        self.labels.get(key).is_some_and(|v| v == value)
    }
}

#[derive(Default)]
struct EngineState {
    containers: HashMap<String, Container>,
    volumes: HashMap<String, HashMap<String, String>>,
    missing_images: HashSet<String>,
    startups: HashMap<String, Startup>,
    /// Every event so far, with its time (unix seconds), for subscribers' `since`.
    log: Vec<(i64, ContainerEvent)>,
}

/// The in-memory engine (see the module's header); clones share one engine.
#[derive(Clone)]
pub struct MemoryDriver {
    engine: Arc<Engine>,
}

struct Engine {
    state: Mutex<EngineState>,
    events: broadcast::Sender<ContainerEvent>,
    /// The engine's own runtime, where container servers run.
    runtime: tokio::runtime::Handle,
}

impl MemoryDriver {
    /// The process's engine, started on first use.
    pub fn shared() -> Arc<MemoryDriver> {
        static SHARED: OnceLock<Arc<MemoryDriver>> = OnceLock::new();
        Arc::clone(SHARED.get_or_init(|| Arc::new(MemoryDriver::new())))
    }

    /// An engine of its own (nothing shared with [`MemoryDriver::shared`]).
    pub fn new() -> MemoryDriver {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("memory-engine".to_owned())
            .spawn(move || {
                let built = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match built {
                    Ok(rt) => {
                        let _ = tx.send(Some(rt.handle().clone()));
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(_) => {
                        let _ = tx.send(None);
                    }
                }
            })
            .ok();
        let runtime = rx
            .recv()
            .ok()
            .flatten()
            // Without a thread of its own, servers run on the caller's runtime.
            .unwrap_or_else(tokio::runtime::Handle::current);
        MemoryDriver {
            engine: Arc::new(Engine {
                state: Mutex::new(EngineState::default()),
                events: broadcast::channel(1024).0,
                runtime,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, EngineState> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.engine
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an event and tells subscribers, under the lock (so a subscriber sees each
    /// event once: from the log or live).
    fn emit(&self, state: &mut EngineState, event: ContainerEvent) {
        state
            .log
            .push((chrono::Utc::now().timestamp(), event.clone()));
        let _ = self.engine.events.send(event);
    }

    /// Ends a running container's process: `Exited` with the code, and its events.
    fn end(&self, state: &mut EngineState, id: &str, code: i64, oom: bool) -> bool {
        let Some(c) = state.containers.get_mut(id) else {
            return false;
        };
        if !matches!(c.status, Status::Running { .. }) {
            return false;
        }
        if let Some(server) = c.server.take() {
            server.abort();
        }
        c.status = Status::Exited { code, oom };
        let (container_id, labels) = (c.id.clone(), c.labels.clone());
        if oom {
            self.emit(
                state,
                ContainerEvent {
                    container_id: container_id.clone(),
                    labels: labels.clone(),
                    kind: EventKind::OutOfMemory,
                },
            );
        }
        self.emit(
            state,
            ContainerEvent {
                container_id,
                labels,
                kind: EventKind::Died {
                    exit_code: Some(code),
                },
            },
        );
        true
    }

    /// Makes a running container's process exit with `code`, as a crash does. Returns
    /// whether it was running.
    pub fn crash(&self, id: &str, code: i64) -> bool {
        let mut state = self.lock();
        self.end(&mut state, id, code, false)
    }

    /// Kills a running container for memory, as the kernel does (exit code 137).
    pub fn run_out_of_memory(&self, id: &str) -> bool {
        let mut state = self.lock();
        self.end(&mut state, id, 137, true)
    }

    /// Takes an image off the engine: containers of it can no longer be made.
    pub fn remove_image(&self, image: &str) {
        self.lock().missing_images.insert(image.to_owned());
    }

    /// What containers of `image` do once started, from now on.
    pub fn set_startup(&self, image: &str, startup: Startup) {
        self.lock().startups.insert(image.to_owned(), startup);
    }

    /// The storage a container's runtime reports as used.
    pub fn set_used_bytes(&self, id: &str, bytes: i64) {
        if let Some(c) = self.lock().containers.get(id) {
            c.used_bytes
                .store(bytes, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether a volume of this name exists.
    pub fn has_volume(&self, name: &str) -> bool {
        self.lock().volumes.contains_key(name)
    }

    fn not_found(id: &str) -> OrchestratorError {
        OrchestratorError::NotFound(format!("the container {id}"))
    }
}

/// The runtime's storage quota from its environment (`<n>M`), in bytes.
fn quota_bytes(env: &HashMap<String, String>) -> i64 {
    env.get(runtime::env::STORAGE_QUOTA)
        .and_then(|q| q.strip_suffix('M'))
        .and_then(|n| n.parse::<i64>().ok())
        .map_or(0, |mib| mib * 1024 * 1024)
}

/// What one started container answers, and to whom.
#[derive(Clone)]
struct Runtime {
    secret: String,
    user: Option<uuid::Uuid>,
    /// Started unclaimed (a claim key instead of a secret and a user): its claim, shared by
    /// every connection, as the real runtime keeps it.
    claim: Option<Arc<Mutex<Claim>>>,
    ready: bool,
    quota_bytes: i64,
    used_bytes: Arc<std::sync::atomic::AtomicI64>,
}

/// What a request meets first: an answer of the claim's own, or the runtime serving with
/// this secret and user.
enum Gate {
    Answer(&'static str, String),
    Serve(String, Option<uuid::Uuid>),
}

/// An unclaimed runtime's state: its key until one claim binds it to a user.
#[derive(Debug)]
enum Claim {
    Open(String),
    Bound { secret: String, user: uuid::Uuid },
}

impl Runtime {
    /// Serves connections until aborted: one request per connection.
    async fn serve(self, listener: tokio::net::TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let this = self.clone();
            tokio::spawn(async move {
                let _ = this.answer(stream).await;
            });
        }
    }

    async fn answer(&self, mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 || head.len() > 16 * 1024 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&head);
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let (method, path) = (
            first.next().unwrap_or_default(),
            first.next().unwrap_or_default(),
        );
        let identity = lines.find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case(websplat_contract::identity::HEADER)
                .then(|| value.trim().to_owned())
        });
        let now = chrono::Utc::now().timestamp();
        let verify = |secret: &str, user: Option<uuid::Uuid>| {
            identity.as_deref().and_then(|value| {
                websplat_contract::identity::verify(
                    secret.as_bytes(),
                    user,
                    value,
                    method,
                    path,
                    now,
                )
                .ok()
            })
        };
        // Unclaimed: its health check and one claim, both signed with the claim key; once
        // claimed, exactly as a runtime started with the derived secret and the user.
        let gate = match &self.claim {
            None => Gate::Serve(self.secret.clone(), self.user),
            Some(claim) => {
                let Ok(mut claim) = claim.lock() else {
                    return Ok(());
                };
                let unauthorized =
                    || Gate::Answer("401 Unauthorized", r#"{"error":"unauthorized"}"#.to_owned());
                match &*claim {
                    Claim::Bound { .. } if path == runtime::CLAIM_PATH => {
                        Gate::Answer("409 Conflict", r#"{"error":"already claimed"}"#.to_owned())
                    }
                    Claim::Bound { secret, user } => Gate::Serve(secret.clone(), Some(*user)),
                    Claim::Open(key) => match verify(key, None) {
                        Some(v)
                            if path == runtime::CLAIM_PATH
                                && method == "POST"
                                && v.user != runtime::UNCLAIMED_USER =>
                        {
                            let secret =
                                websplat_contract::identity::claimed_secret(key.as_bytes(), v.user);
                            *claim = Claim::Bound {
                                secret,
                                user: v.user,
                            };
                            Gate::Answer("204 No Content", String::new())
                        }
                        Some(v)
                            if path == runtime::HEALTH_PATH
                                && v.user == runtime::UNCLAIMED_USER =>
                        {
                            Gate::Answer("200 OK", r#"{"status":"unclaimed"}"#.to_owned())
                        }
                        _ => unauthorized(),
                    },
                }
            }
        };
        let (secret, user) = match gate {
            Gate::Answer(status, body) => return Self::write(&mut stream, status, &body).await,
            Gate::Serve(secret, user) => (secret, user),
        };
        let verified = verify(&secret, user).is_some();
        let (status, body) = if !verified {
            ("401 Unauthorized", r#"{"error":"unauthorized"}"#.to_owned())
        } else if !self.ready {
            (
                "503 Service Unavailable",
                r#"{"status":"starting"}"#.to_owned(),
            )
        } else if path == runtime::HEALTH_PATH {
            ("200 OK", r#"{"status":"ok"}"#.to_owned())
        } else if path == runtime::USAGE_PATH {
            let used = self.used_bytes.load(std::sync::atomic::Ordering::Relaxed);
            (
                "200 OK",
                // A negative figure (set by a test) is answered as the runtime would: zero.
                serde_json::to_string(&websplat_contract::UsageReport {
                    used_bytes: u64::try_from(used).unwrap_or(0),
                    quota_bytes: u64::try_from(self.quota_bytes).unwrap_or(0),
                })
                .unwrap_or_default(),
            )
        } else {
            ("404 Not Found", r#"{"error":"not_found"}"#.to_owned())
        };
        Self::write(&mut stream, status, &body).await
    }

    async fn write(
        stream: &mut tokio::net::TcpStream,
        status: &str,
        body: &str,
    ) -> std::io::Result<()> {
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    }
}

impl Default for MemoryDriver {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Orchestrator for MemoryDriver {
    async fn prepare_network(&self) -> Result<()> {
        // Loopback is the only network: there is nothing to make.
        Ok(())
    }

    async fn ensure_volume(&self, name: &str, labels: &HashMap<String, String>) -> Result<()> {
        self.lock()
            .volumes
            .entry(name.to_owned())
            .or_insert_with(|| labels.clone());
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        let mut state = self.lock();
        let in_use = state.containers.values().any(|c| c.volume == name);
        if in_use {
            return Err(OrchestratorError::Engine(format!(
                "the volume {name} is in use"
            )));
        }
        state.volumes.remove(name);
        Ok(())
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String> {
        let mut state = self.lock();
        if state.missing_images.contains(&spec.image) {
            return Err(OrchestratorError::ImageMissing(spec.image.clone()));
        }
        if state.containers.values().any(|c| c.name == spec.name) {
            return Err(OrchestratorError::Engine(format!(
                "the container name {} is already in use",
                spec.name
            )));
        }
        // As engines do, a volume named but not made yet is made.
        state.volumes.entry(spec.volume.clone()).or_default();
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        state.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                name: spec.name.clone(),
                image: spec.image.clone(),
                labels: spec.labels.clone(),
                env: spec.env.iter().cloned().collect(),
                volume: spec.volume.clone(),
                status: Status::Created,
                server: None,
                used_bytes: Arc::default(),
            },
        );
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        let (runtime, startup) = {
            let state = self.lock();
            let c = state
                .containers
                .get(id)
                .ok_or_else(|| Self::not_found(id))?;
            if matches!(c.status, Status::Running { .. }) {
                return Ok(());
            }
            let startup = state.startups.get(&c.image).copied().unwrap_or_default();
            let runtime = Runtime {
                secret: c
                    .env
                    .get(runtime::env::TENANT_SECRET)
                    .cloned()
                    .unwrap_or_default(),
                user: c
                    .env
                    .get(runtime::env::TENANT_USER)
                    .and_then(|u| u.parse().ok()),
                claim: c
                    .env
                    .get(runtime::env::CLAIM_KEY)
                    .map(|key| Arc::new(Mutex::new(Claim::Open(key.clone())))),
                ready: startup == Startup::Serves,
                quota_bytes: quota_bytes(&c.env),
                used_bytes: Arc::clone(&c.used_bytes),
            };
            (runtime, startup)
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| OrchestratorError::Engine(format!("cannot listen: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| OrchestratorError::Engine(e.to_string()))?;
        let rt = &self.engine.runtime;
        let server = {
            let _entered = rt.enter();
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| OrchestratorError::Engine(e.to_string()))?;
            rt.spawn(runtime.serve(listener))
        };
        {
            let mut state = self.lock();
            let Some(c) = state.containers.get_mut(id) else {
                server.abort();
                return Err(Self::not_found(id));
            };
            c.status = Status::Running { address };
            c.server = Some(server);
        }
        if let Startup::Exits(code) = startup {
            let (engine, id) = (self.clone(), id.to_owned());
            rt.spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                engine.crash(&id, code);
            });
        }
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>> {
        Ok(self.lock().containers.get(id).map(Container::info))
    }

    async fn stop(&self, id: &str, _grace: Duration) -> Result<()> {
        let mut state = self.lock();
        if !state.containers.contains_key(id) {
            return Err(Self::not_found(id));
        }
        // The runtime finishes in time: a clean exit.
        self.end(&mut state, id, 0, false);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let mut state = self.lock();
        // Forced: a running container is killed first.
        self.end(&mut state, id, 137, false);
        state.containers.remove(id);
        Ok(())
    }

    async fn list(&self, key: &str, value: &str) -> Result<Vec<ContainerInfo>> {
        Ok(self
            .lock()
            .containers
            .values()
            .filter(|c| c.carries(key, value))
            .map(Container::info)
            .collect())
    }

    fn events(
        &self,
        key: &str,
        value: &str,
        since: i64,
    ) -> BoxStream<'static, Result<ContainerEvent>> {
        let (past, live) = {
            let state = self.lock();
            let past: Vec<ContainerEvent> = state
                .log
                .iter()
                .filter(|(at, _)| *at >= since)
                .map(|(_, e)| e.clone())
                .collect();
            (past, self.engine.events.subscribe())
        };
        let live = futures_util::stream::unfold(live, |mut live| async move {
            match live.recv().await {
                Ok(event) => Some((Ok(event), live)),
                Err(broadcast::error::RecvError::Lagged(n)) => Some((
                    Err(OrchestratorError::Engine(format!("{n} events were missed"))),
                    live,
                )),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        let (key, value) = (key.to_owned(), value.to_owned());
        futures_util::stream::iter(past.into_iter().map(Ok))
            .chain(live)
            .filter(move |event| {
                let keep = match event {
                    Ok(e) => e.labels.get(&key).is_some_and(|v| *v == value),
                    Err(_) => true,
                };
                std::future::ready(keep)
            })
            .boxed()
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
