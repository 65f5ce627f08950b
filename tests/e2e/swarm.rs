//! A pool on a real multi-node Docker Swarm (issue #16): the cluster `scripts/test` starts
//! (engine daemons in network namespaces, `scripts/swarm`), described by the file named in
//! `WEBSPLAT_TEST_SWARM_ENV`. Without it these tests fail: they never pass by skipping.
//!
//! What a user and an operator see: sign-ins spread over the nodes by free memory, each
//! tenant hardened on its node (asserted on the running task's container, through that
//! node's own daemon), a second sign-in on the node that holds the data; a node lost and
//! back; a drained node taking no new workspace.

use std::time::{Duration, Instant};

use bollard::Docker;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestDb, workspace_browser};

mod cluster;
use crate::{Platform, TIMEOUT, register, wait_for_workspace};
pub(crate) use cluster::{Cluster, Node};
use cluster::{Leftovers, NodeBack};

/// Long enough for a task to be scheduled and its runtime to answer on a loaded machine.
const SPAWN: Duration = Duration::from_secs(120);

/// Starts the platform with the default pool on the cluster; returns it and an operator.
async fn platform_on(cluster: &Cluster, db: &TestDb) -> (Platform, Client, Leftovers) {
    let platform = Platform::start(
        db,
        vec![
            (
                "WEBSPLAT_TENANT_RECONCILE_INTERVAL".to_owned(),
                "2s".to_owned(),
            ),
            (
                "WEBSPLAT_RATE_LIMIT_PER_ACCOUNT".to_owned(),
                "100000".to_owned(),
            ),
            ("WEBSPLAT_RATE_LIMIT_PER_IP".to_owned(), "100000".to_owned()),
            // A task on a node of this one-machine cluster (vfs storage: each container's
            // root is a full copy) can take longer than the default 30 s to answer while the
            // rest of the suite runs beside it; how fast it is, the benchmark says.
            ("WEBSPLAT_TENANT_READY_TIMEOUT".to_owned(), "90s".to_owned()),
            // The door where the nodes' tenants reach it.
            (
                "WEBSPLAT_GATEWAY_LISTEN".to_owned(),
                format!("{}:0", cluster.host_address),
            ),
        ],
    )
    .await;
    let operator = workspace_browser();
    register(&platform, &operator, "op@example.com", "Operator").await;
    let said = platform
        .cli(&["admin", "grant", "op@example.com", "operator"])
        .await;
    assert!(said.contains("now holds the role"), "{said}");
    let said = platform
        .cli(&[
            "pools",
            "set",
            "default",
            "--engine",
            "swarm",
            "--endpoint",
            &cluster.manager,
        ])
        .await;
    assert!(said.contains("changed the pool default"), "{said}");
    let leftovers = Leftovers {
        manager: cluster.manager.clone(),
        sockets: cluster.nodes.iter().map(|n| n.socket.clone()).collect(),
        deployment: deployment(&platform),
    };
    (platform, operator, leftovers)
}

fn deployment(platform: &Platform) -> String {
    platform
        .env
        .iter()
        .find(|(k, _)| k == "WEBSPLAT_DEPLOYMENT")
        .map(|(_, v)| v.clone())
        .expect("deployment")
}

/// A person signed in with their workspace open on its own origin.
struct Person {
    http: Client,
    origin: String,
}

impl Person {
    async fn signs_up(platform: &Platform, email: &str) -> Person {
        let http = workspace_browser();
        register(platform, &http, email, email).await;
        let person = Person {
            http,
            origin: String::new(),
        };
        person.start(platform).await
    }

    async fn start(mut self, platform: &Platform) -> Person {
        let r = self
            .http
            .post(platform.url("/api/v1/workspace/start"))
            .header("Origin", &platform.url)
            .send()
            .await
            .expect("start");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "start the workspace");
        wait_for_workspace(platform, &self.http).await;
        let handoff =
            crate::support::handoff_link(&self.http, platform.url("/workspace/open")).await;
        let r = self.http.get(&handoff).send().await.expect("handoff");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "the handoff");
        let url = reqwest::Url::parse(&handoff).expect("a URL");
        self.origin = format!(
            "http://{}:{}",
            url.host_str().expect("host"),
            url.port().expect("port")
        );
        self
    }

    async fn workspace(&self, platform: &Platform) -> Value {
        self.http
            .get(platform.url("/api/v1/workspace"))
            .send()
            .await
            .expect("workspace")
            .json()
            .await
            .expect("json")
    }

    async fn wait_for(&self, platform: &Platform, state: &str) -> Value {
        let deadline = Instant::now() + SPAWN;
        loop {
            let w = self.workspace(platform).await;
            if w["state"] == state {
                return w;
            }
            assert!(Instant::now() < deadline, "never {state}: {w}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(&self, platform: &Platform) {
        let r = self
            .http
            .post(platform.url("/api/v1/workspace/stop"))
            .header("Origin", &platform.url)
            .send()
            .await
            .expect("stop");
        assert!(r.status().is_success(), "stop: {}", r.status());
        self.wait_for(platform, "stopped").await;
    }

    async fn write(&self, text: &str) {
        let r = self
            .http
            .post(format!("{}/api/v1/notes", self.origin))
            .header("Origin", &self.origin)
            .json(&json!({ "text": text }))
            .send()
            .await
            .expect("write a note");
        assert!(r.status().is_success(), "write a note: {}", r.status());
    }

    async fn notes(&self) -> Result<Vec<String>, String> {
        let r = self
            .http
            .get(format!("{}/api/v1/notes", self.origin))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != StatusCode::OK {
            return Err(format!("{}", r.status()));
        }
        let b: Value = r.json().await.map_err(|e| e.to_string())?;
        Ok(b["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|n| n["text"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// The pool's machines as the operator console shows them: name → (state, workspaces).
async fn machines(platform: &Platform, operator: &Client) -> Vec<Value> {
    let r = operator
        .get(platform.url("/api/v1/pools/default/machines"))
        .send()
        .await
        .expect("machines");
    assert_eq!(r.status(), StatusCode::OK, "machines");
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["engine"], "swarm");
    b["machines"].as_array().cloned().unwrap_or_default()
}

/// The node a workspace is pinned to (recorded with the workspace).
async fn pinned_node(db: &TestDb, email: &str) -> Option<String> {
    use diesel::QueryableByName;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Pin {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        node: Option<String>,
    }
    let mut conn = db.connect().await;
    diesel::sql_query(
        "SELECT w.node FROM workspaces w JOIN users u ON u.id = w.user_id WHERE u.email = $1",
    )
    .bind::<diesel::sql_types::Text, _>(email)
    .get_result::<Pin>(&mut conn)
    .await
    .expect("the workspace's pin")
    .node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_spread_over_the_nodes_each_hardened_and_a_second_sign_in_finds_its_data_on_its_node()
 {
    let cluster = Cluster::from_env();
    let db = TestDb::create().await;
    let (platform, operator, _leftovers) = platform_on(&cluster, &db).await;
    let deployment = deployment(&platform);

    // One person per node: each lands on the node with the most free memory, so on an
    // empty cluster of equal nodes every node gets one.
    let mut people = Vec::new();
    for i in 1..=cluster.nodes.len() {
        let email = format!("user{i}@example.com");
        let person = Person::signs_up(&platform, &email).await;
        person.write(&format!("note of {email}")).await;
        people.push((email, person));
    }
    let seen = machines(&platform, &operator).await;
    assert_eq!(seen.len(), cluster.nodes.len(), "{seen:?}");
    for m in &seen {
        assert_eq!(
            (m["state"].as_str(), m["workspaces"].as_u64()),
            (Some("ready"), Some(1)),
            "one workspace per node: {seen:?}"
        );
    }

    // Hardened as on a single engine, on each node's own daemon.
    for node in &cluster.nodes {
        let found = cluster.containers_on(node, &deployment).await;
        assert_eq!(found.len(), 1, "node {}: {}", node.index, found.len());
        let c = &found[0];
        let config = c.config.clone().expect("config");
        let host = c.host_config.clone().expect("host config");
        assert_eq!(config.user.as_deref(), Some("65532:65532"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert!(
            host.pids_limit.is_some_and(|p| p > 0),
            "{:?}",
            host.pids_limit
        );
        assert!(host.memory.is_some_and(|m| m > 0), "{:?}", host.memory);
        assert!(
            host.nano_cpus.is_some_and(|n| n > 0),
            "{:?}",
            host.nano_cpus
        );
        let log = host.log_config.clone().expect("log config");
        assert_eq!(
            log.config
                .unwrap_or_default()
                .get("max-size")
                .map(String::as_str),
            Some("5m")
        );
        assert!(
            host.ulimits
                .unwrap_or_default()
                .iter()
                .any(|u| u.name.as_deref() == Some("nofile") && u.hard == Some(4096)),
            "open files bounded"
        );
        let tmp = host
            .mounts
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.target.as_deref() == Some("/tmp"));
        assert!(tmp.is_some(), "a tmpfs at /tmp");
        // no-new-privileges: from the node daemon's configuration, seen on the process.
        let pid = c.state.clone().and_then(|s| s.pid).expect("the task's pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
        assert!(
            status.lines().any(|l| l == "NoNewPrivs:\t1"),
            "no-new-privileges on node {}'s task",
            node.index
        );
    }

    // A second sign-in: on the node that holds the volume, with the data.
    let (email, person) = people.remove(0);
    let pinned = pinned_node(&db, &email).await.expect("pinned to a node");
    person.stop(&platform).await;
    let person = person.start(&platform).await;
    assert_eq!(
        pinned_node(&db, &email).await.as_deref(),
        Some(pinned.as_str())
    );
    let node = cluster
        .nodes
        .iter()
        .find(|n| n.id == pinned)
        .expect("a node of the cluster");
    assert_eq!(
        cluster.containers_on(node, &deployment).await.len(),
        1,
        "its new task runs on the node holding the volume (the old one is gone)"
    );
    assert_eq!(
        person.notes().await.expect("notes"),
        vec![format!("note of {email}")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lost_fails_its_workspaces_in_words_the_rest_serve_and_back_it_starts_with_its_data()
{
    let cluster = Cluster::from_env();
    assert!(cluster.nodes.len() >= 2, "a cluster of two nodes or more");
    let db = TestDb::create().await;
    let (platform, operator, _leftovers) = platform_on(&cluster, &db).await;
    let mut people = Vec::new();
    for i in 1..=cluster.nodes.len() {
        let email = format!("user{i}@example.com");
        let person = Person::signs_up(&platform, &email).await;
        person.write(&format!("note of {email}")).await;
        let node = pinned_node(&db, &email).await.expect("pinned");
        people.push((email, node, person));
    }
    // A worker's daemon is killed (never the manager's: the platform asks the manager),
    // and brought back when the test ends, passed or not.
    let lost = cluster.nodes.last().expect("a node");
    cluster.script(&["kill", &lost.index.to_string()]);
    let _back = NodeBack(lost.index);
    let (email, _, person) = people
        .iter()
        .find(|(_, node, _)| *node == lost.id)
        .expect("someone on the lost node");
    let failed = person.wait_for(&platform, "failed").await;
    assert_eq!(
        failed["reason"],
        "the machine it ran on stopped answering; its data stays on that machine and it can start again when the machine is back",
        "{failed}"
    );
    // The operator console shows the loss.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let seen = machines(&platform, &operator).await;
        if seen
            .iter()
            .any(|m| m["id"] == lost.id.as_str() && m["state"] != "ready")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the loss never shown: {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The rest keep serving.
    for (other, node, p) in &people {
        if *node != lost.id {
            assert_eq!(
                p.notes().await.expect("the others still serve"),
                vec![format!("note of {other}")]
            );
        }
    }
    // Starting again while the machine is away: refused in words, nothing elsewhere.
    let r = person
        .http
        .post(platform.url("/api/v1/workspace/start"))
        .header("Origin", &platform.url)
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let failed = person.wait_for(&platform, "failed").await;
    assert_eq!(
        failed["reason"], "your workspace's machine is unavailable; an operator has been alerted",
        "{failed}"
    );
    assert_eq!(
        pinned_node(&db, email).await.as_deref(),
        Some(lost.id.as_str())
    );

    // The machine back: the next start runs there, with the data.
    cluster.script(&["start", &lost.index.to_string()]);
    let deadline = Instant::now() + SPAWN;
    loop {
        let seen = machines(&platform, &operator).await;
        if seen
            .iter()
            .any(|m| m["id"] == lost.id.as_str() && m["state"] == "ready")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never came back: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (email, _, person) = people
        .into_iter()
        .find(|(_, node, _)| *node == lost.id)
        .expect("someone on the lost node");
    let person = person.start(&platform).await;
    assert_eq!(
        person.notes().await.expect("notes"),
        vec![format!("note of {email}")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_takes_no_new_workspace() {
    let cluster = Cluster::from_env();
    assert!(cluster.nodes.len() >= 2, "a cluster of two nodes or more");
    let db = TestDb::create().await;
    let (platform, operator, _leftovers) = platform_on(&cluster, &db).await;
    let drained = cluster.nodes.last().expect("a node");
    let manager = cluster.docker(&cluster.nodes[0]);
    set_availability(&manager, &drained.id, "drain").await;
    let mut seen_nodes = Vec::new();
    for i in 1..=cluster.nodes.len() {
        let email = format!("user{i}@example.com");
        Person::signs_up(&platform, &email).await;
        seen_nodes.push(pinned_node(&db, &email).await.expect("pinned"));
    }
    set_availability(&manager, &drained.id, "active").await;
    assert!(
        !seen_nodes.contains(&drained.id),
        "nobody placed on the drained node: {seen_nodes:?}"
    );
    let seen = machines(&platform, &operator).await;
    let on_drained = seen
        .iter()
        .find(|m| m["id"] == drained.id.as_str())
        .expect("the drained node listed");
    assert_eq!(on_drained["workspaces"], 0);
}

async fn set_availability(manager: &Docker, node: &str, availability: &str) {
    let found = manager.inspect_node(node).await.expect("the node");
    let mut spec = found.spec.expect("its spec");
    spec.availability = Some(match availability {
        "drain" => bollard::models::NodeSpecAvailabilityEnum::DRAIN,
        _ => bollard::models::NodeSpecAvailabilityEnum::ACTIVE,
    });
    let version = found.version.and_then(|v| v.index).expect("its version");
    manager
        .update_node(
            node,
            spec,
            bollard::query_parameters::UpdateNodeOptionsBuilder::new()
                .version(i64::try_from(version).expect("a version"))
                .build(),
        )
        .await
        .expect("update the node");
}

/// Every file of a volume on a node with its checksum, as a helper container there sees it.
fn checksums(node: &Node, volume: &str) -> String {
    let out = std::process::Command::new("docker")
        .env("DOCKER_CONTEXT", "")
        .args(["-H", &node.socket, "run", "--rm", "-u", "0:0", "-v"])
        .arg(format!("{volume}:/data:ro"))
        .args([
            "websplat/probe:busybox",
            "sh",
            "-c",
            "cd /data && /busybox find . -type f | /busybox sort | while read f; do /busybox md5sum \"$f\"; done; /busybox find . | /busybox sort | while read f; do /busybox stat -c '%n %u %g %a %s' \"$f\"; done",
        ])
        .output()
        .expect("docker run");
    assert!(
        out.status.success(),
        "checksums on node {}: {}",
        node.index,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn volume_of(db: &TestDb, email: &str) -> String {
    use diesel::QueryableByName;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Volume {
        #[diesel(sql_type = diesel::sql_types::Text)]
        volume: String,
    }
    let mut conn = db.connect().await;
    diesel::sql_query(
        "SELECT w.volume FROM workspaces w JOIN users u ON u.id = w.user_id WHERE u.email = $1",
    )
    .bind::<diesel::sql_types::Text, _>(email)
    .get_result::<Volume>(&mut conn)
    .await
    .expect("the workspace's volume")
    .volume
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_moves_a_workspace_to_another_node_and_its_data_comes_byte_for_byte() {
    let cluster = Cluster::from_env();
    assert!(cluster.nodes.len() >= 2, "a cluster of two nodes or more");
    let db = TestDb::create().await;
    let (platform, _operator, _leftovers) = platform_on(&cluster, &db).await;
    let email = "mover@example.com";
    let person = Person::signs_up(&platform, email).await;
    person.write("moved with me").await;
    let from = pinned_node(&db, email).await.expect("pinned");
    let source = cluster.nodes.iter().find(|n| n.id == from).expect("node");
    let target = cluster
        .nodes
        .iter()
        .find(|n| n.id != from)
        .expect("another node");
    person.stop(&platform).await;
    let volume = volume_of(&db, email).await;
    let before = checksums(source, &volume);
    assert!(before.contains("./"), "{before}");

    // Moved on the command line, each step printed.
    let said = platform.cli(&["pools", "move", email, &target.id]).await;
    assert!(said.contains("copying the data: done"), "{said}");
    assert!(said.contains("moved: the workspace is on"), "{said}");
    assert_eq!(
        pinned_node(&db, email).await.as_deref(),
        Some(target.id.as_str())
    );
    assert_eq!(
        checksums(target, &volume),
        before,
        "byte for byte, owners and modes"
    );

    // The next start runs there and finds the note.
    let person = person.start(&platform).await;
    assert_eq!(
        cluster
            .containers_on(target, &deployment(&platform))
            .await
            .len(),
        1
    );
    assert_eq!(
        person.notes().await.expect("notes"),
        vec!["moved with me".to_owned()]
    );
}
