//! The swarm's floor (issue #16): a bare service of the tenant image, made by hand with a
//! tenant's hardening, network and a fresh volume on the real multi-node swarm that
//! `scripts/bench workspaces` starts (`WEBSPLAT_TEST_SWARM_ENV`), timed from `create_service`
//! until its `/healthz` answers at `<node address>:<published port>` (polled every 5 ms),
//! N one after another and N at once. Sign-in → ready on a swarm pool is set beside it.
//! It removes every service and volume it made.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum,
    Limit, Mount, MountTmpfsOptions, MountType, MountVolumeOptions, NetworkAttachmentConfig,
    ResourcesUlimits, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec,
    TaskSpecContainerSpec, TaskSpecLogDriver, TaskSpecPlacement, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::ListTasksOptionsBuilder;
use platform::tenants::identity;
use platform::tenants::orchestrator::runtime;
use platform::users::UserId;
use reqwest::Client;
use websplat_test_support::swarm::Swarm;

use super::report;

/// The label that marks what this bench made on the swarm.
const LABEL: &str = "websplat.bench";

/// Prints the swarm's floor for `n` (sequential and at once), or why it is not measured.
pub async fn floor(n: usize, image: &str) -> anyhow::Result<()> {
    if std::env::var("WEBSPLAT_TEST_SWARM_ENV").is_err() {
        println!(
            "swarm floor: not measured (no swarm: `scripts/bench workspaces` starts one when run as root)"
        );
        return Ok(());
    }
    let swarm = Swarm::from_env();
    let manager = swarm.manager_docker().await;
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let floor = SwarmFloor {
        swarm: &swarm,
        manager: &manager,
        image,
        run: &run,
    };
    let result = async {
        let mut seq = Vec::new();
        for _ in 0..n {
            seq.push(floor.once().await?);
        }
        let at_once = futures_util::future::join_all((0..n).map(|_| floor.once()))
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok::<_, anyhow::Error>((seq, at_once))
    }
    .await;
    floor.remove_all().await;
    let (seq, at_once) = result?;
    report("swarm floor: service to /healthz, sequential", seq, None);
    report(&format!("swarm floor: {n} at once"), at_once, None);
    Ok(())
}

struct SwarmFloor<'a> {
    swarm: &'a Swarm,
    manager: &'a Docker,
    image: &'a str,
    run: &'a str,
}

impl SwarmFloor<'_> {
    /// One bare service, from create until `/healthz` answers on its published port.
    async fn once(&self) -> anyhow::Result<Duration> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("websplat-bench-{}-{}", self.run, &id[..12]);
        let user = UserId(uuid::Uuid::new_v4());
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let probe = Client::builder().no_proxy().build()?;
        let started = Instant::now();
        self.manager
            .create_service(self.spec(&name, user, &secret), None)
            .await
            .context("create the floor's service")?;
        let mut url = None;
        loop {
            if url.is_none() {
                let filters = HashMap::from([("service", vec![name.as_str()])]);
                url = self
                    .manager
                    .list_tasks(Some(
                        ListTasksOptionsBuilder::new().filters(&filters).build(),
                    ))
                    .await
                    .unwrap_or_default()
                    .iter()
                    .find_map(|t| self.swarm.task_address(t))
                    .map(|a| format!("http://{a}{}", runtime::HEALTH_PATH));
            }
            if let Some(url) = &url {
                let header = identity::sign_now(&secret, user, "GET", runtime::HEALTH_PATH);
                if let Ok(r) = probe.get(url).header(identity::HEADER, header).send().await
                    && r.status().is_success()
                {
                    return Ok(started.elapsed());
                }
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "the swarm floor's service {name} never answered"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A tenant's service as the platform makes one: non-root, no capabilities, read-only
    /// root with a tmpfs, the free level's limits, log limits, its own volume, the tenants'
    /// network, its port published on its node (no ingress: dnsrr), never restarted.
    fn spec(&self, name: &str, user: UserId, secret: &str) -> ServiceSpec {
        let labels = HashMap::from([(LABEL.to_owned(), self.run.to_owned())]);
        let env = [
            (runtime::env::TENANT_SECRET, secret.to_owned()),
            (runtime::env::TENANT_USER, user.to_string()),
            (runtime::env::LISTEN, runtime::listen_address()),
            (runtime::env::DATA_DIR, runtime::DATA_DIR.to_owned()),
            (runtime::env::STORAGE_QUOTA, "1024M".to_owned()),
            (runtime::env::MAX_UPLOAD, "10M".to_owned()),
        ];
        ServiceSpec {
            name: Some(name.to_owned()),
            labels: Some(labels.clone()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(self.image.to_owned()),
                    env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    user: Some("65532:65532".to_owned()),
                    hostname: Some("workspace".to_owned()),
                    read_only: Some(true),
                    capability_drop: Some(vec!["ALL".to_owned()]),
                    init: Some(false),
                    ulimits: Some(vec![ResourcesUlimits {
                        name: Some("nofile".to_owned()),
                        soft: Some(4096),
                        hard: Some(4096),
                    }]),
                    mounts: Some(vec![
                        Mount {
                            target: Some(runtime::DATA_DIR.to_owned()),
                            source: Some(name.to_owned()),
                            typ: Some(MountType::VOLUME),
                            volume_options: Some(MountVolumeOptions {
                                labels: Some(labels.clone()),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        Mount {
                            target: Some("/tmp".to_owned()),
                            typ: Some(MountType::TMPFS),
                            tmpfs_options: Some(MountTmpfsOptions {
                                size_bytes: Some(64 * 1024 * 1024),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }),
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus: Some(500_000_000),
                        memory_bytes: Some(512 * 1024 * 1024),
                        pids: Some(256),
                    }),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: Some(vec!["node.labels.websplat.pool==default".to_owned()]),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some(self.swarm.network.clone()),
                    ..Default::default()
                }]),
                log_driver: Some(TaskSpecLogDriver {
                    name: Some("json-file".to_owned()),
                    options: Some(HashMap::from([
                        ("max-size".to_owned(), "10m".to_owned()),
                        ("max-file".to_owned(), "3".to_owned()),
                    ])),
                }),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ports: Some(vec![EndpointPortConfig {
                    target_port: Some(i64::from(runtime::PORT)),
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        }
    }

    /// Removes this run's services, then (once their containers are gone) their volumes on
    /// every node. Best effort: it runs after failures too.
    async fn remove_all(&self) {
        let filters = HashMap::from([("label", vec![format!("{LABEL}={}", self.run)])]);
        let services = self
            .manager
            .list_services(Some(
                bollard::query_parameters::ListServicesOptionsBuilder::new()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap_or_default();
        for service in services {
            if let Some(id) = service.id {
                let _ = self.manager.delete_service(&id).await;
            }
        }
        for node in &self.swarm.nodes {
            let docker = self.swarm.docker(node.index).await;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let volumes = docker
                    .list_volumes(Some(
                        bollard::query_parameters::ListVolumesOptionsBuilder::new()
                            .filters(&filters)
                            .build(),
                    ))
                    .await
                    .ok()
                    .and_then(|v| v.volumes)
                    .unwrap_or_default();
                let mut left = 0;
                for volume in volumes {
                    if docker
                        .remove_volume(
                            &volume.name,
                            None::<bollard::query_parameters::RemoveVolumeOptions>,
                        )
                        .await
                        .is_err()
                    {
                        left += 1;
                    }
                }
                if left == 0 || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}
