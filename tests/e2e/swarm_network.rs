//! The tenants' network on the real multi-node swarm (issue #16), probed from inside a
//! tenant as the single-engine network probe does: a tenant reaches the AI gateway's door
//! and nothing else — not a tenant on another node (by its address or its published port),
//! not the nodes' swarm ports, not the machine's services, not the internet. Runs on the
//! cluster `scripts/test` starts (`WEBSPLAT_TEST_SWARM_ENV`); without it, it fails.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, HostConfig};
use bollard::query_parameters::{ListServicesOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;
use reqwest::StatusCode;
use websplat_test_support::swarm::{Swarm, SwarmNode};

use crate::support::{TestDb, workspace_browser};
use crate::{Platform, register, wait_for_workspace};

/// A person's running workspace on the swarm: its task's container and node.
struct Tenant {
    node: SwarmNode,
    container: ContainerInspectResponse,
    /// `<node address>:<published port>`, where the platform reaches it.
    address: String,
}

impl Tenant {
    fn id(&self) -> String {
        self.container.id.clone().expect("container id")
    }

    fn ip(&self) -> String {
        self.container
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| n.values().find_map(|e| e.ip_address.clone()))
            .filter(|ip| !ip.is_empty())
            .expect("the task's address on the tenants' network")
    }

    fn env(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.container
            .config
            .as_ref()?
            .env
            .as_ref()?
            .iter()
            .find_map(|e| e.strip_prefix(&prefix).map(str::to_owned))
    }
}

/// Removes this test's services and volumes from the cluster when it ends (its own
/// deployment label only).
struct Leftovers {
    swarm: Swarm,
    deployment: String,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let sockets: Vec<String> = self.swarm.nodes.iter().map(|n| n.socket.clone()).collect();
        websplat_test_support::swarm::remove_deployment(
            &self.swarm.manager,
            &sockets,
            &self.deployment,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_on_the_swarm_reaches_the_door_and_nothing_else_not_even_a_tenant_on_another_node()
{
    let swarm = Swarm::from_env();
    let _lock = swarm.shared();
    let db = TestDb::create().await;
    let platform = Platform::start(
        &db,
        vec![
            ("WEBSPLAT_RATE_LIMIT_PER_IP".to_owned(), "100000".to_owned()),
            // The door where the nodes' tenants reach it.
            (
                "WEBSPLAT_GATEWAY_LISTEN".to_owned(),
                format!("{}:0", swarm.host_address),
            ),
        ],
    )
    .await;
    let deployment = platform
        .env
        .iter()
        .find(|(k, _)| k == "WEBSPLAT_DEPLOYMENT")
        .map(|(_, v)| v.clone())
        .expect("deployment");
    let _leftovers = Leftovers {
        swarm: swarm.clone(),
        deployment: deployment.clone(),
    };
    let said = platform
        .cli(&[
            "pools",
            "set",
            "default",
            "--engine",
            "swarm",
            "--endpoint",
            &swarm.manager,
        ])
        .await;
    assert!(said.contains("default"), "{said}");

    // People sign in until two workspaces run on different nodes (new ones go to the node
    // with the most free memory, so the second already does on an idle cluster).
    let mut tenants: Vec<Tenant> = Vec::new();
    for i in 1..=swarm.nodes.len() + 1 {
        let http = workspace_browser();
        let email = format!("person{i}@example.com");
        register(&platform, &http, &email, &email).await;
        let r = http
            .post(platform.url("/api/v1/workspace/start"))
            .header("Origin", &platform.url)
            .send()
            .await
            .expect("start");
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "start {email}'s workspace"
        );
        wait_for_workspace(&platform, &http).await;
        tenants = running_tenants(&swarm, &deployment).await;
        let nodes: std::collections::HashSet<_> = tenants.iter().map(|t| t.node.index).collect();
        if nodes.len() >= 2 {
            break;
        }
    }
    let alice = &tenants[0];
    let bob = tenants
        .iter()
        .find(|t| t.node.index != alice.node.index)
        .expect("two workspaces on two nodes");
    let bob_port = bob.address.rsplit(':').next().expect("port").to_owned();
    // The platform (this machine's network namespace) reaches both, where the runtime
    // answers, and refuses what the platform did not sign.
    let direct = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for t in [alice, bob] {
        let r = direct
            .get(format!("http://{}/api/v1/notes", t.address))
            .send()
            .await
            .expect("the platform reaches the task");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", t.address);
    }

    // What the probe must not reach, next to what it must: the door (the tenant's own
    // gateway URL) and its own server. A service of this machine listening on every
    // interface stands for the machine's services.
    let door = alice
        .env("WEBSPLAT_GATEWAY_URL")
        .expect("the tenant is told the door's URL");
    let door = door.trim_start_matches("http://").trim_end_matches('/');
    let machine_service = TcpListener::bind("0.0.0.0:0").expect("a listener");
    let machine_port = machine_service
        .local_addr()
        .expect("addr")
        .port()
        .to_string();
    let machine_ip = machine_address();
    let manager = swarm.node(1).address.to_string();
    let bob_node = bob.node.address.to_string();
    let bob_ip = bob.ip();
    let targets: Vec<(&str, String)> = vec![
        ("own-runtime", "127.0.0.1:8080".to_owned()),
        ("the-door", door.to_owned()),
        ("other-node-tenant-by-address", format!("{bob_ip}:8080")),
        (
            "other-node-tenant-by-published-port",
            format!("{bob_node}:{bob_port}"),
        ),
        ("other-node-gossip", format!("{bob_node}:7946")),
        ("manager-api", format!("{manager}:2377")),
        ("machine-service", format!("{machine_ip}:{machine_port}")),
        ("internet", "1.1.1.1:80".to_owned()),
    ];
    let out = probe_from(&swarm, alice, &targets).await;
    assert!(out.contains("own-runtime reached"), "{out}");
    assert!(out.contains("the-door reached"), "{out}");
    for (name, _) in &targets[2..] {
        assert!(
            out.contains(&format!("{name} blocked")),
            "{name} must be unreachable from a tenant on node {}:\n{out}",
            alice.node.index
        );
    }
    drop(machine_service);
}

/// The running tasks of this deployment, with their containers (inspected on their nodes).
async fn running_tenants(swarm: &Swarm, deployment: &str) -> Vec<Tenant> {
    let manager = swarm.manager_docker().await;
    let filters = HashMap::from([("label", vec![format!("websplat.deployment={deployment}")])]);
    let services = manager
        .list_services(Some(
            ListServicesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .expect("list the deployment's services");
    let mut out = Vec::new();
    for service in services {
        let name = service
            .spec
            .and_then(|s| s.name)
            .expect("the service's name");
        let (task, node, container) = swarm.task_container(&name).await;
        let address = swarm
            .task_address(&task)
            .expect("the task's published port");
        out.push(Tenant {
            node,
            container,
            address,
        });
    }
    out
}

/// This machine's own address (the source of its default route).
fn machine_address() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "route", "get", "1.1.1.1"])
        .output()
        .expect("ip route get");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "src")
        .nth(1)
        .expect("a source address")
        .to_owned()
}

/// Runs busybox `nc` against each target from a probe container sharing the tenant's
/// network namespace on its node (it sees exactly what the tenant sees).
async fn probe_from(swarm: &Swarm, tenant: &Tenant, targets: &[(&str, String)]) -> String {
    let script: String = targets
        .iter()
        .map(|(name, target)| {
            let (host, port) = target.rsplit_once(':').expect("host:port");
            format!(
                "if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /busybox timeout 5 /busybox nc -w 2 {host} {port} >/dev/null 2>&1; then echo '{name} reached'; else echo '{name} blocked'; fi; "
            )
        })
        .collect();
    let docker: Docker = swarm.docker(tenant.node.index).await;
    let id = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            ContainerCreateBody {
                image: Some("websplat/probe:busybox".to_owned()),
                cmd: Some(vec!["sh".to_owned(), "-c".to_owned(), script]),
                host_config: Some(HostConfig {
                    network_mode: Some(format!("container:{}", tenant.id())),
                    cap_drop: Some(vec!["ALL".to_owned()]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create the probe (scripts/test loads websplat/probe:busybox into the nodes)")
        .id;
    docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .expect("start the probe");
    let mut waited =
        docker.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
    let finished = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(w) = waited.next().await {
            if w.is_err() {
                break;
            }
        }
    })
    .await;
    let mut logs = docker.logs(
        &id,
        Some(LogsOptionsBuilder::new().stdout(true).stderr(true).build()),
    );
    let mut out = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        out.push_str(&chunk.to_string());
    }
    let _ = docker
        .remove_container(
            &id,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await;
    assert!(finished.is_ok(), "the probe did not finish: {out}");
    out
}
