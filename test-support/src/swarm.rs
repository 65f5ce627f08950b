//! The real multi-node Docker Swarm the tests run on (issue #16): `scripts/test` starts it
//! with `scripts/swarm up` (engine daemons in network namespaces of their own) and names
//! its env file in `WEBSPLAT_TEST_SWARM_ENV`. This module reads that file (the manager's
//! endpoint, each node's socket, address and id), gives a bollard client per node, kills and
//! starts a node's daemon, drains and activates nodes, and finds the container of a
//! service's task on the node that runs it, to assert what runs there.
//!
//! Tests in several processes share one cluster, so a test that kills or drains a node takes
//! [`Swarm::exclusive`] and every other swarm test [`Swarm::shared`] (a file lock beside the
//! env file). It must never touch the machine's own Docker Engine.

use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerInspectResponse, NodeSpecAvailabilityEnum, NodeState, Task, TaskState,
};
use bollard::query_parameters::{ListTasksOptionsBuilder, UpdateNodeOptionsBuilder};

/// How long a node's state or a task gets to become what a helper waits for.
const WAIT: Duration = Duration::from_secs(60);

/// One engine daemon of the cluster.
#[derive(Debug, Clone)]
pub struct SwarmNode {
    /// 1-based, as `scripts/swarm kill I` counts; also the node label `websplat.node`.
    pub index: usize,
    /// The swarm's node id.
    pub id: String,
    /// `unix://…/docker.sock`: this node's own daemon (not the manager unless `index == 1`).
    pub socket: String,
    /// The node's address, where its tasks' host-mode published ports answer.
    pub address: IpAddr,
    /// Its network namespace (`/var/run/netns/<netns>`).
    pub netns: String,
}

/// The cluster, as `scripts/swarm` wrote it in its env file.
#[derive(Debug, Clone)]
pub struct Swarm {
    /// `scripts/swarm`'s number for this cluster (`WEBSPLAT_SWARM_SLOT`).
    pub slot: u8,
    /// `unix://…`: the manager's endpoint, the one a swarm pool is configured with.
    pub manager: String,
    /// The platform's address as the nodes see it: where the AI gateway's door must listen.
    pub host_address: IpAddr,
    /// The swarm network tenants join (`websplat-tenants`).
    pub network: String,
    pub nodes: Vec<SwarmNode>,
    env_file: PathBuf,
}

/// A lock on the cluster, held while the guard lives.
#[must_use = "the lock is released when this is dropped"]
pub struct SwarmLock {
    _file: File,
}

/// A node whose daemon a test killed: started again when this is dropped, unless
/// [`Swarm::start_node`] did it first.
#[must_use = "the node's daemon is started again when this is dropped"]
pub struct KilledNode {
    swarm: Swarm,
    index: usize,
}

impl Drop for KilledNode {
    fn drop(&mut self) {
        if self.swarm.daemon_pid(self.index).is_none() {
            self.swarm.run_script("start", self.index);
        }
    }
}

impl Swarm {
    /// The cluster of `WEBSPLAT_TEST_SWARM_ENV`; panics with what to do when it is not set.
    pub fn from_env() -> Self {
        let path = std::env::var("WEBSPLAT_TEST_SWARM_ENV").unwrap_or_else(|_| {
            panic!(
                "WEBSPLAT_TEST_SWARM_ENV is not set: run the tests with `scripts/test` as root, \
                 which starts the swarm (scripts/swarm up)"
            )
        });
        Self::load(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Reads an env file written by `scripts/swarm` (`KEY=value` lines).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the swarm's env file {}: {e}", path.display()))?;
        parse(&text, path)
    }

    /// A bollard client on the manager, its API version negotiated.
    pub async fn manager_docker(&self) -> Docker {
        connect(&self.manager).await
    }

    /// A bollard client on node `index`'s own daemon (1-based).
    pub async fn docker(&self, index: usize) -> Docker {
        connect(&self.node(index).socket).await
    }

    pub fn node(&self, index: usize) -> &SwarmNode {
        self.nodes
            .iter()
            .find(|n| n.index == index)
            .unwrap_or_else(|| panic!("the swarm has no node {index}"))
    }

    /// The node of a swarm node id.
    pub fn node_by_id(&self, id: &str) -> Option<&SwarmNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// A shared lock: nobody kills or drains a node while it is held.
    pub fn shared(&self) -> SwarmLock {
        let file = self.lock_file();
        file.lock_shared().expect("a shared lock on the swarm");
        SwarmLock { _file: file }
    }

    /// The only lock: for a test that kills, drains or moves nodes.
    pub fn exclusive(&self) -> SwarmLock {
        let file = self.lock_file();
        file.lock().expect("an exclusive lock on the swarm");
        SwarmLock { _file: file }
    }

    fn lock_file(&self) -> File {
        let path = self.env_file.with_file_name("tests.lock");
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
    }

    /// Kills node `index`'s daemon, its containerd and its containers (SIGKILL: the machine
    /// is lost), data kept. The node comes back when the guard drops, or by
    /// [`Swarm::start_node`].
    pub fn kill_node(&self, index: usize) -> KilledNode {
        assert!(
            index != 1,
            "node 1 is the swarm's only manager; kill a worker"
        );
        self.run_script("kill", index);
        KilledNode {
            swarm: self.clone(),
            index,
        }
    }

    /// Starts node `index`'s daemon again with the same data (and waits until it answers).
    pub fn start_node(&self, index: usize) {
        self.run_script("start", index);
    }

    /// The live dockerd pid of node `index`, read from its pid file.
    pub fn daemon_pid(&self, index: usize) -> Option<u32> {
        let dir = self.env_file.parent()?.join(format!("node{index}"));
        let pid: u32 = std::fs::read_to_string(dir.join("docker.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "dockerd").then_some(pid)
    }

    fn run_script(&self, command: &str, index: usize) {
        // <root>/.data/swarm-N/env → <root>/scripts/swarm
        let dir = self.env_file.parent().expect("the env file's directory");
        let root = dir
            .parent()
            .and_then(Path::parent)
            .expect("the repository root");
        let out = std::process::Command::new("bash")
            .arg(root.join("scripts/swarm"))
            .arg(command)
            .arg(index.to_string())
            .env("WEBSPLAT_SWARM_SLOT", self.slot.to_string())
            .output()
            .expect("run scripts/swarm");
        assert!(
            out.status.success(),
            "scripts/swarm {command} {index} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Swarm's own `availability=drain` on node `index`.
    pub async fn drain(&self, index: usize) {
        self.set_availability(index, NodeSpecAvailabilityEnum::DRAIN)
            .await;
    }

    /// Back to `availability=active`.
    pub async fn activate(&self, index: usize) {
        self.set_availability(index, NodeSpecAvailabilityEnum::ACTIVE)
            .await;
    }

    async fn set_availability(&self, index: usize, availability: NodeSpecAvailabilityEnum) {
        let docker = self.manager_docker().await;
        let id = &self.node(index).id;
        let node = docker.inspect_node(id).await.expect("inspect the node");
        let mut spec = node.spec.expect("the node's spec");
        spec.availability = Some(availability);
        let version = node.version.and_then(|v| v.index).expect("node version");
        let version = i64::try_from(version).expect("node version");
        docker
            .update_node(
                id,
                spec,
                UpdateNodeOptionsBuilder::new().version(version).build(),
            )
            .await
            .expect("update the node's availability");
    }

    /// The manager's view of node `index` (`ready`, `down`, …).
    pub async fn node_state(&self, index: usize) -> Option<NodeState> {
        let docker = self.manager_docker().await;
        docker
            .inspect_node(&self.node(index).id)
            .await
            .ok()
            .and_then(|n| n.status)
            .and_then(|s| s.state)
    }

    /// Waits until the manager sees node `index` in `state` (a killed node is `down` after
    /// some seconds of missed heartbeats); panics after a minute.
    pub async fn wait_node_state(&self, index: usize, state: NodeState) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.node_state(index).await;
            if now == Some(state) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {index} is {now:?}, not {state:?}, after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The tasks of a service (by name or id), newest first.
    pub async fn tasks(&self, service: &str) -> Vec<Task> {
        let docker = self.manager_docker().await;
        let filters = HashMap::from([("service", vec![service])]);
        let mut tasks = docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .expect("list the service's tasks");
        tasks.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        tasks
    }

    /// The running task of a service, its node, and its container inspected on that node's
    /// own daemon (where hardening is asserted); waits for it up to a minute.
    pub async fn task_container(
        &self,
        service: &str,
    ) -> (Task, SwarmNode, ContainerInspectResponse) {
        let deadline = Instant::now() + WAIT;
        loop {
            let running = self
                .tasks(service)
                .await
                .into_iter()
                .find(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING));
            if let Some(task) = running {
                let node = task
                    .node_id
                    .as_deref()
                    .and_then(|id| self.node_by_id(id))
                    .cloned()
                    .expect("the task's node is one of the swarm's");
                let container = task
                    .status
                    .as_ref()
                    .and_then(|s| s.container_status.as_ref())
                    .and_then(|c| c.container_id.clone())
                    .expect("the running task's container id");
                let inspected = self
                    .docker(node.index)
                    .await
                    .inspect_container(
                        &container,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
                    .expect("inspect the task's container on its node");
                return (task, node, inspected);
            }
            assert!(
                Instant::now() < deadline,
                "service {service} has no running task after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `<node address>:<published port>` of a task published in host mode: where the
    /// platform (on the host) reaches it.
    pub fn task_address(&self, task: &Task) -> Option<String> {
        let node = self.node_by_id(task.node_id.as_deref()?)?;
        let port = task
            .status
            .as_ref()?
            .port_status
            .as_ref()?
            .ports
            .as_ref()?
            .first()?
            .published_port?;
        Some(format!("{}:{port}", node.address))
    }
}

/// Removes what one test deployment left on a swarm, passed or not: its services (by the
/// deployment's label, through the manager at `manager`), then, on each node's daemon at
/// `sockets`, its volumes by label and by name (a copy a move made is named as its
/// workspace's volume). Nothing of another deployment is touched.
pub fn remove_deployment(manager: &str, sockets: &[String], deployment: &str) {
    let label = format!("label=websplat.deployment={deployment}");
    let docker = |host: &str, args: &[&str]| {
        std::process::Command::new("docker")
            .env("DOCKER_CONTEXT", "")
            .arg("-H")
            .arg(host)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let services = docker(manager, &["service", "ls", "-q", "--filter", &label]);
    for id in services.split_whitespace() {
        docker(manager, &["service", "rm", id]);
    }
    // The tasks' containers go with their services, a moment later.
    std::thread::sleep(Duration::from_secs(2));
    let named = format!("name=websplat-{deployment}-");
    for socket in sockets {
        for filter in [&label, &named] {
            let volumes = docker(socket, &["volume", "ls", "-q", "--filter", filter]);
            for name in volumes.split_whitespace() {
                docker(socket, &["volume", "rm", "-f", name]);
            }
        }
    }
}

/// Whether the process `pid` (a container's `State.Pid`) runs with no-new-privileges, read
/// from `/proc/<pid>/status` (a daemon-wide `no-new-privileges` does not show in the
/// container's `HostConfig.SecurityOpt`).
pub fn no_new_privileges(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"))
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["NoNewPrivs:", "1"])
}

async fn connect(socket: &str) -> Docker {
    Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION)
        .unwrap_or_else(|e| panic!("cannot connect to {socket}: {e}"))
        .negotiate_version()
        .await
        .unwrap_or_else(|e| panic!("cannot negotiate the API version with {socket}: {e}"))
}

fn parse(text: &str, path: &Path) -> Result<Swarm, String> {
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let get = |key: &str| -> Result<&str, String> {
        vars.get(key)
            .copied()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{} has no {key}", path.display()))
    };
    let ip = |key: &str| -> Result<IpAddr, String> {
        get(key)?
            .parse()
            .map_err(|e| format!("{key} in {} is not an address: {e}", path.display()))
    };
    let count: usize = get("WEBSPLAT_SWARM_NODES")?
        .parse()
        .map_err(|e| format!("WEBSPLAT_SWARM_NODES in {}: {e}", path.display()))?;
    let nodes = (1..=count)
        .map(|i| {
            Ok(SwarmNode {
                index: i,
                id: get(&format!("WEBSPLAT_SWARM_NODE_{i}_ID"))?.to_owned(),
                socket: get(&format!("WEBSPLAT_SWARM_NODE_{i}_SOCKET"))?.to_owned(),
                address: ip(&format!("WEBSPLAT_SWARM_NODE_{i}_ADDRESS"))?,
                netns: get(&format!("WEBSPLAT_SWARM_NODE_{i}_NETNS"))?.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Swarm {
        slot: get("WEBSPLAT_SWARM_SLOT")?
            .parse()
            .map_err(|e| format!("WEBSPLAT_SWARM_SLOT in {}: {e}", path.display()))?,
        manager: get("WEBSPLAT_SWARM_MANAGER")?.to_owned(),
        host_address: ip("WEBSPLAT_SWARM_HOST_ADDRESS")?,
        network: get("WEBSPLAT_SWARM_NETWORK")?.to_owned(),
        nodes,
        env_file: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_env_file_scripts_swarm_writes() {
        let text = "WEBSPLAT_SWARM_SLOT=5\nWEBSPLAT_SWARM_NODES=2\n\
            WEBSPLAT_SWARM_MANAGER=unix:///r/.data/swarm-5/node1/docker.sock\n\
            WEBSPLAT_SWARM_HOST_ADDRESS=10.210.5.1\n\
            WEBSPLAT_SWARM_NETWORK=websplat-tenants\n\
            WEBSPLAT_SWARM_NODE_1_SOCKET=unix:///r/.data/swarm-5/node1/docker.sock\n\
            WEBSPLAT_SWARM_NODE_1_ADDRESS=10.210.5.11\n\
            WEBSPLAT_SWARM_NODE_1_PID=42\n\
            WEBSPLAT_SWARM_NODE_1_ID=abc\n\
            WEBSPLAT_SWARM_NODE_1_NETNS=wssw5-n1\n\
            WEBSPLAT_SWARM_NODE_2_SOCKET=unix:///r/.data/swarm-5/node2/docker.sock\n\
            WEBSPLAT_SWARM_NODE_2_ADDRESS=10.210.5.12\n\
            WEBSPLAT_SWARM_NODE_2_PID=\n\
            WEBSPLAT_SWARM_NODE_2_ID=def\n\
            WEBSPLAT_SWARM_NODE_2_NETNS=wssw5-n2\n";
        let swarm = parse(text, Path::new("/r/.data/swarm-5/env")).expect("parsed");
        assert_eq!(swarm.nodes.len(), 2);
        assert_eq!(swarm.node(2).id, "def");
        assert_eq!(swarm.node(2).address.to_string(), "10.210.5.12");
        assert_eq!(swarm.host_address.to_string(), "10.210.5.1");
        assert_eq!(swarm.node_by_id("abc").map(|n| n.index), Some(1));
        let missing =
            parse("WEBSPLAT_SWARM_NODES=1\n", Path::new("/x/env")).expect_err("missing keys");
        assert!(missing.contains("/x/env has no"), "{missing}");
    }
}
