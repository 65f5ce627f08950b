//! Where a workspace runs on a swarm: the node that holds its volume, or, for a new one,
//! the pool's node (label `websplat.pool=<pool>`) with the most memory not reserved by
//! running workspaces. A pinned node that is down or drained is never replaced: its user
//! is told, and nothing starts elsewhere on an empty volume.

use std::collections::HashMap;

use bollard::models::{Node, NodeSpecAvailabilityEnum, NodeState, Task, TaskState};

use super::super::orchestrator::{Machine, OrchestratorError, Result};
use super::spec::POOL_NODE_LABEL;

/// A node as placement sees it.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: String,
    pub name: String,
    pub pool: Option<String>,
    pub state: String,
    pub ready: bool,
    pub active: bool,
    pub address: Option<String>,
    pub memory_bytes: i64,
}

impl NodeView {
    pub fn of(node: &Node) -> NodeView {
        let spec = node.spec.clone().unwrap_or_default();
        let status = node.status.clone().unwrap_or_default();
        let description = node.description.clone().unwrap_or_default();
        NodeView {
            id: node.id.clone().unwrap_or_default(),
            name: spec
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .or(description.hostname)
                .unwrap_or_default(),
            pool: spec
                .labels
                .as_ref()
                .and_then(|l| l.get(POOL_NODE_LABEL).cloned()),
            state: status
                .state
                .map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
            ready: status.state == Some(NodeState::READY),
            active: matches!(
                spec.availability,
                None | Some(NodeSpecAvailabilityEnum::ACTIVE)
            ),
            address: status.addr.filter(|a| !a.is_empty()),
            memory_bytes: description
                .resources
                .and_then(|r| r.memory_bytes)
                .unwrap_or(0),
        }
    }
}

/// Whether a task holds (or is about to hold) its node's resources.
pub fn holds_node(task: &Task) -> bool {
    task.desired_state == Some(TaskState::RUNNING)
}

/// Memory reserved on each node by the tasks that hold it.
pub fn reserved(tasks: &[Task]) -> HashMap<String, (i64, usize)> {
    let mut out: HashMap<String, (i64, usize)> = HashMap::new();
    for task in tasks.iter().filter(|t| holds_node(t)) {
        let Some(node) = task.node_id.clone() else {
            continue;
        };
        let bytes = task
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.reservations.as_ref())
            .and_then(|r| r.memory_bytes)
            .unwrap_or(0);
        let entry = out.entry(node).or_default();
        entry.0 += bytes;
        entry.1 += 1;
    }
    out
}

/// The node a workspace is to run on. `pinned`: where its volume is.
pub fn choose(
    pool: &str,
    nodes: &[NodeView],
    tasks: &[Task],
    pinned: Option<&str>,
) -> Result<String> {
    if let Some(pinned) = pinned {
        let Some(node) = nodes.iter().find(|n| n.id == pinned) else {
            return Err(OrchestratorError::MachineUnavailable(
                "it is no longer part of the cluster".to_owned(),
            ));
        };
        if !node.ready {
            return Err(OrchestratorError::MachineUnavailable(format!(
                "{} is {}",
                node.name, node.state
            )));
        }
        if !node.active {
            return Err(OrchestratorError::MachineUnavailable(format!(
                "{} is drained for maintenance",
                node.name
            )));
        }
        return Ok(node.id.clone());
    }
    let reserved = reserved(tasks);
    nodes
        .iter()
        .filter(|n| n.pool.as_deref() == Some(pool) && n.ready && n.active)
        .max_by_key(|n| {
            let (bytes, count) = reserved.get(&n.id).copied().unwrap_or_default();
            // Most free memory first; then the fewest workspaces; then a stable order.
            (
                n.memory_bytes - bytes,
                std::cmp::Reverse(count),
                std::cmp::Reverse(n.id.clone()),
            )
        })
        .map(|n| n.id.clone())
        .ok_or_else(|| {
            OrchestratorError::NoMachine(format!(
                "no node labelled {POOL_NODE_LABEL}={pool} is ready and active"
            ))
        })
}

/// The pool's nodes as operators see them.
pub fn machines(pool: &str, nodes: &[NodeView], tasks: &[Task]) -> Vec<Machine> {
    let reserved = reserved(tasks);
    nodes
        .iter()
        .filter(|n| n.pool.as_deref() == Some(pool))
        .map(|n| {
            let (bytes, count) = reserved.get(&n.id).copied().unwrap_or_default();
            Machine {
                id: n.id.clone(),
                name: n.name.clone(),
                state: n.state.clone(),
                active: n.active,
                address: n.address.clone(),
                memory_bytes: n.memory_bytes,
                reserved_bytes: bytes,
                workspaces: count,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, pool: &str, memory: i64, ready: bool, active: bool) -> NodeView {
        NodeView {
            id: id.to_owned(),
            name: format!("node-{id}"),
            pool: Some(pool.to_owned()),
            state: if ready { "ready" } else { "down" }.to_owned(),
            ready,
            active,
            address: None,
            memory_bytes: memory,
        }
    }

    fn task(node: &str, bytes: i64) -> Task {
        Task {
            node_id: Some(node.to_owned()),
            desired_state: Some(TaskState::RUNNING),
            spec: Some(bollard::models::TaskSpec {
                resources: Some(bollard::models::TaskSpecResources {
                    reservations: Some(bollard::models::ResourceObject {
                        memory_bytes: Some(bytes),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_workspace_goes_to_the_pool_node_with_the_most_free_memory() {
        let nodes = [
            node("a", "default", 1000, true, true),
            node("b", "default", 1000, true, true),
            node("c", "other", 9000, true, true),
            node("d", "default", 9000, false, true),
            node("e", "default", 9000, true, false),
        ];
        let tasks = [task("a", 600), task("b", 100)];
        assert_eq!(
            choose("default", &nodes, &tasks, None).expect("present"),
            "b"
        );
        let tasks = [task("a", 100), task("b", 600)];
        assert_eq!(
            choose("default", &nodes, &tasks, None).expect("present"),
            "a"
        );
    }

    #[test]
    fn a_pinned_workspace_never_moves_off_its_node() {
        let nodes = [
            node("a", "default", 1000, false, true),
            node("b", "default", 1000, true, true),
            node("c", "default", 1000, true, false),
        ];
        let down = choose("default", &nodes, &[], Some("a")).expect_err("refused");
        assert!(matches!(down, OrchestratorError::MachineUnavailable(_)));
        let drained = choose("default", &nodes, &[], Some("c")).expect_err("refused");
        assert!(drained.to_string().contains("drained"), "{drained}");
        assert_eq!(
            choose("default", &nodes, &[], Some("b")).expect("present"),
            "b"
        );
        let gone = choose("default", &nodes, &[], Some("zz")).expect_err("refused");
        assert!(matches!(gone, OrchestratorError::MachineUnavailable(_)));
    }
}
