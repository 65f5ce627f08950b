//! The orchestrator interface: the few things the platform asks of whatever runs tenant
//! containers. Docker Engine implements it ([`super::docker`]), and so does an in-memory
//! engine for tests and development ([`super::memory`]); a Kubernetes driver (a pod and a
//! volume claim per user) can implement it later without touching the callers. Which one
//! runs is chosen in one place, [`super::driver`]. Nothing engine-specific (names, error
//! texts, network details) may leak out of a driver past this interface.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;

/// How a runtime is started and probed: its port, paths and environment (the shared
/// contract with the runtime).
pub use websplat_contract::runtime;

/// Labels on every container and volume the platform makes (the shared contract).
pub use websplat_contract::labels as label;

/// What to run for one tenant. Its `Debug` shows the environment's names only (the
/// tenant's secret is one of the values).
#[derive(Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub env: Vec<(String, String)>,
    pub labels: HashMap<String, String>,
    /// The user's volume, mounted at `/data`.
    pub volume: String,
    pub limits: Limits,
    /// The port the runtime listens on inside the container.
    pub port: u16,
    /// The machine to run on (what [`Orchestrator::place`] chose), on an engine of several.
    pub node: Option<String>,
}

impl std::fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ContainerSpec")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("env", &env)
            .field("labels", &self.labels)
            .field("volume", &self.volume)
            .field("limits", &self.limits)
            .field("port", &self.port)
            .field("node", &self.node)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub cpu_millicores: u32,
    pub memory_bytes: i64,
    pub pids: i64,
    pub tmp_bytes: u64,
}

/// A container as the orchestrator sees it.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
    /// Where the platform reaches the runtime, once it runs.
    pub address: Option<SocketAddr>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    /// The machine it ran on stopped answering (its state there is unknown).
    pub machine_lost: bool,
}

/// Something that happened to a container, from the orchestrator's event stream.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub container_id: String,
    pub labels: HashMap<String, String>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The main process exited (or was killed).
    Died { exit_code: Option<i64> },
    /// The kernel killed a process for memory.
    OutOfMemory,
    /// The machine it ran on stopped answering.
    MachineLost,
}

/// One machine of an engine of several, as operators see it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Machine {
    pub id: String,
    pub name: String,
    /// Whether it answers the cluster (`ready`), or why not (`down`, `disconnected`, …).
    pub state: String,
    /// Whether it takes new workspaces (not drained or paused).
    pub active: bool,
    pub address: Option<String>,
    /// Memory it offers and what its workspaces reserve of it, in bytes.
    pub memory_bytes: i64,
    pub reserved_bytes: i64,
    /// Workspaces running on it now.
    pub workspaces: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error("{0} does not exist")]
    NotFound(String),
    /// The image to run is not on the engine (a container cannot be made of it).
    #[error("the image {0} is not on the container engine")]
    ImageMissing(String),
    #[error("the container engine refused: {0}")]
    Engine(String),
    #[error("the container engine did not answer within {0:?}")]
    Timeout(Duration),
    /// The machine holding a workspace's data is down or drained; nothing may start
    /// elsewhere on an empty volume.
    #[error("your workspace's machine is unavailable ({0})")]
    MachineUnavailable(String),
    /// No machine of the pool can take a new workspace.
    #[error("no machine can take a new workspace: {0}")]
    NoMachine(String),
}

pub type Result<T> = std::result::Result<T, OrchestratorError>;

#[async_trait]
pub trait Orchestrator: Send + Sync {
    /// Makes ready what every tenant joins (for Docker, the internal tenant network);
    /// idempotent, and safe to call from several replicas at once.
    async fn prepare_network(&self) -> Result<()>;
    /// The host's own address on the tenant network (the bridge's gateway), where a tenant
    /// can reach the platform's AI gateway door; `None` when tenants reach the host on
    /// loopback (the in-memory engine).
    async fn host_address(&self) -> Result<Option<std::net::IpAddr>> {
        Ok(None)
    }
    /// The digest (content id) of an image as the engine has it, `None` when the engine
    /// does not name images by content (the in-memory engine).
    async fn image_digest(&self, _image: &str) -> Result<Option<String>> {
        Ok(None)
    }
    /// Where a workspace's data lives and its container is to run: `pinned` is the
    /// machine that already holds its volume, if any. `None` on an engine of one machine.
    /// A pinned machine that is down or drained is [`OrchestratorError::MachineUnavailable`];
    /// a new workspace goes to the machine with the most free memory.
    async fn place(&self, pinned: Option<&str>) -> Result<Option<String>> {
        let _ = pinned;
        Ok(None)
    }
    /// The machines of an engine of several (empty for one machine).
    async fn machines(&self) -> Result<Vec<Machine>> {
        Ok(Vec::new())
    }
    /// Copies a volume, byte for byte, from one machine to another (its workspace stopped),
    /// telling `progress` each step. An engine of one machine has nowhere to copy to.
    async fn copy_volume(
        &self,
        volume: &str,
        from: &str,
        to: &str,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<()> {
        let _ = (volume, from, to, progress);
        Err(OrchestratorError::Engine(
            "this engine has one machine: there is nowhere to copy a volume to".to_owned(),
        ))
    }
    /// Creates the volume if it does not exist yet (idempotent).
    async fn ensure_volume(&self, name: &str, labels: &HashMap<String, String>) -> Result<()>;
    /// Deletes a volume and everything in it.
    async fn remove_volume(&self, name: &str) -> Result<()>;
    /// Creates a container (not started); returns its id.
    async fn create(&self, spec: &ContainerSpec) -> Result<String>;
    async fn start(&self, id: &str) -> Result<()>;
    /// `None` when there is no such container.
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>>;
    /// Asks the container to stop, killing it after `grace`.
    async fn stop(&self, id: &str, grace: Duration) -> Result<()>;
    /// Removes a container, running or not (idempotent).
    async fn remove(&self, id: &str) -> Result<()>;
    /// Every container, running or not, carrying the label `key=value`.
    async fn list(&self, key: &str, value: &str) -> Result<Vec<ContainerInfo>>;
    /// Deaths and out-of-memory kills of containers carrying the label `key=value`, from
    /// `since` (unix seconds) on. Ends when the engine connection does.
    fn events(
        &self,
        key: &str,
        value: &str,
        since: i64,
    ) -> BoxStream<'static, Result<ContainerEvent>>;
    /// Whether the engine answers (for readiness).
    async fn ping(&self) -> Result<()>;
    /// The last `lines` lines a container wrote (its output and errors), oldest first, for
    /// an admin looking into a workspace. An engine that keeps none answers nothing.
    async fn logs(&self, id: &str, lines: usize) -> Result<Vec<String>> {
        let _ = (id, lines);
        Ok(Vec::new())
    }
    /// The memory a running container uses now, in bytes; `None` when the engine cannot
    /// tell.
    async fn memory_used(&self, id: &str) -> Result<Option<u64>> {
        let _ = id;
        Ok(None)
    }
}
