//! A tenant's service seen through its task: running or not, where it answers, how it
//! ended (exit code, or its node lost). The swarm's event stream says nothing of tasks, so
//! their changes are found by comparing snapshots ([`Snapshot::changes`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use bollard::models::{Service, Task, TaskState};

use super::super::orchestrator::{ContainerEvent, ContainerInfo, EventKind, label};
use super::placement::NodeView;

/// The services of a pool with their tasks and the nodes, read at one moment.
#[derive(Default)]
pub struct Snapshot {
    pub services: Vec<Service>,
    pub tasks: Vec<Task>,
    pub nodes: Vec<NodeView>,
}

impl Snapshot {
    /// The newest task of a service (one replica, never restarted: its only one, unless
    /// an operator restarted it by hand).
    pub fn task_of(&self, service: &str) -> Option<&Task> {
        self.tasks
            .iter()
            .filter(|t| t.service_id.as_deref() == Some(service))
            .max_by_key(|t| t.version.as_ref().and_then(|v| v.index).unwrap_or(0))
    }

    fn node(&self, id: Option<&str>) -> Option<&NodeView> {
        let id = id?;
        self.nodes.iter().find(|n| n.id == id)
    }

    /// A service as the platform sees a container.
    pub fn info(&self, service: &Service) -> ContainerInfo {
        let id = service.id.clone().unwrap_or_default();
        let labels = service
            .spec
            .as_ref()
            .and_then(|s| s.labels.clone())
            .unwrap_or_default();
        let task = self.task_of(&id);
        let state = task
            .and_then(|t| t.status.as_ref())
            .and_then(|s| s.state)
            .unwrap_or(TaskState::NEW);
        let node = task.and_then(|t| self.node(t.node_id.as_deref()));
        // A node that stopped answering cannot report its tasks: the last word stays
        // "running". The platform counts such a task as lost.
        let machine_lost = matches!(state, TaskState::RUNNING | TaskState::STARTING)
            && node.is_some_and(|n| !n.ready);
        let running = state == TaskState::RUNNING && !machine_lost;
        let exit_code = task
            .and_then(|t| t.status.as_ref())
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.exit_code)
            .filter(|_| is_final(state));
        let port: Option<u16> = labels.get(label::RUNTIME_PORT).and_then(|p| p.parse().ok());
        let address = match (task, port) {
            (Some(task), Some(port)) if running => self.address(task, node, port),
            _ => None,
        };
        ContainerInfo {
            id,
            labels,
            running,
            address,
            exit_code,
            oom_killed: false,
            machine_lost,
        }
    }

    /// Where the platform reaches a running task: the port its node publishes, on the
    /// node's address (the task's own address is on a network local to its node).
    fn address(&self, task: &Task, node: Option<&NodeView>, port: u16) -> Option<SocketAddr> {
        let published = task
            .status
            .as_ref()
            .and_then(|s| s.port_status.as_ref())
            .and_then(|p| p.ports.as_ref())
            .and_then(|ports| {
                ports
                    .iter()
                    .find(|p| p.target_port == Some(i64::from(port)))
                    .and_then(|p| p.published_port)
            })
            .and_then(|p| u16::try_from(p).ok())?;
        let ip: IpAddr = node?.address.as_deref()?.parse().ok()?;
        Some(SocketAddr::new(ip, published))
    }

    /// Every service as a container.
    pub fn infos(&self) -> Vec<ContainerInfo> {
        self.services.iter().map(|s| self.info(s)).collect()
    }

    /// What ended between `before` and now: a task that ran and stopped (`Died`), or whose
    /// node was lost (`MachineLost`). A service that vanished was removed on purpose.
    pub fn changes(&self, before: &HashMap<String, bool>) -> Vec<ContainerEvent> {
        self.infos()
            .into_iter()
            .filter(|info| before.get(&info.id) == Some(&true) && !info.running)
            .map(|info| ContainerEvent {
                kind: if info.machine_lost {
                    EventKind::MachineLost
                } else {
                    EventKind::Died {
                        exit_code: info.exit_code,
                    }
                },
                container_id: info.id,
                labels: info.labels,
            })
            .collect()
    }

    /// Which services run now, for the next comparison.
    pub fn running(&self) -> HashMap<String, bool> {
        self.infos()
            .into_iter()
            .map(|info| (info.id, info.running))
            .collect()
    }
}

/// A task that will not run again.
pub fn is_final(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::COMPLETE
            | TaskState::SHUTDOWN
            | TaskState::FAILED
            | TaskState::REJECTED
            | TaskState::REMOVE
            | TaskState::ORPHANED
    )
}

/// Why a task did not start, in the engine's words (e.g. "no suitable node").
pub fn task_error(task: &Task) -> Option<String> {
    let status = task.status.as_ref()?;
    status
        .err
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| status.message.clone().filter(|m| !m.is_empty()))
}
