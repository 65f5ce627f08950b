//! The swarm the tests run on, as `scripts/swarm` describes it, and what a test leaves on
//! it cleaned up when it ends.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;

/// The cluster as `scripts/swarm` wrote it.
pub(crate) struct Cluster {
    pub(crate) manager: String,
    /// The platform's address as the nodes reach it (where the AI gateway's door listens).
    pub(crate) host_address: String,
    pub(crate) nodes: Vec<Node>,
    env_file: String,
}

pub(crate) struct Node {
    pub(crate) index: usize,
    pub(crate) id: String,
    pub(crate) socket: String,
}

impl Cluster {
    pub(crate) fn from_env() -> Cluster {
        let path = std::env::var("WEBSPLAT_TEST_SWARM_ENV").unwrap_or_else(|_| {
            panic!(
                "WEBSPLAT_TEST_SWARM_ENV is not set: these tests run on the swarm cluster scripts/test starts (scripts/swarm up)"
            )
        });
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the swarm's env file {path}: {e}"));
        let vars: HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{path} has no {k}"))
        };
        let count: usize = get("WEBSPLAT_SWARM_NODES").parse().expect("a node count");
        let nodes = (1..=count)
            .map(|i| Node {
                index: i,
                id: get(&format!("WEBSPLAT_SWARM_NODE_{i}_ID")),
                socket: get(&format!("WEBSPLAT_SWARM_NODE_{i}_SOCKET")),
            })
            .collect();
        Cluster {
            manager: get("WEBSPLAT_SWARM_MANAGER"),
            host_address: get("WEBSPLAT_SWARM_HOST_ADDRESS"),
            nodes,
            env_file: path,
        }
    }

    pub(super) fn docker(&self, node: &Node) -> Docker {
        Docker::connect_with_host(&node.socket).expect("the node's daemon")
    }

    /// `scripts/swarm <args>` for this test instance's cluster.
    pub(super) fn script(&self, args: &[&str]) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = std::process::Command::new("bash")
            .arg(root.join("scripts/swarm"))
            .args(args)
            .output()
            .expect("scripts/swarm");
        assert!(
            out.status.success(),
            "scripts/swarm {args:?} ({}): {}",
            self.env_file,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// This deployment's running containers on a node, inspected.
    pub(super) async fn containers_on(
        &self,
        node: &Node,
        deployment: &str,
    ) -> Vec<bollard::models::ContainerInspectResponse> {
        let docker = self.docker(node);
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("websplat.deployment={deployment}")],
        )]);
        let listed = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .expect("list the node's containers");
        let mut out = Vec::new();
        for c in listed {
            let id = c.id.unwrap_or_default();
            out.push(
                docker
                    .inspect_container(&id, None)
                    .await
                    .expect("inspect the task's container"),
            );
        }
        out
    }
}

/// Removes a test's services from the cluster and its volumes from every node when the
/// test ends, passed or not (by the test's own deployment label, nothing else).
pub(super) struct Leftovers {
    pub(super) manager: String,
    pub(super) sockets: Vec<String>,
    pub(super) deployment: String,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        websplat_test_support::swarm::remove_deployment(
            &self.manager,
            &self.sockets,
            &self.deployment,
        );
    }
}

/// Starts a killed node again when dropped (`scripts/swarm start` does nothing to a node
/// that runs).
pub(super) struct NodeBack(pub(super) usize);

impl Drop for NodeBack {
    fn drop(&mut self) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let _ = std::process::Command::new("bash")
            .arg(root.join("scripts/swarm"))
            .args(["start", &self.0.to_string()])
            .output();
    }
}
