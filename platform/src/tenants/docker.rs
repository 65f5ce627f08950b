//! The Docker Engine driver of the [`Orchestrator`] interface, on bollard. Every tenant
//! joins one internal bridge network with inter-container traffic off: the host (the
//! platform) reaches each tenant, tenants reach neither each other nor anything outside.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig,
    HostConfigLogConfig, Mount, MountType, NetworkCreateRequest, NetworkingConfig,
    ResourcesUlimits, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::orchestrator::{
    ContainerEvent, ContainerInfo, ContainerSpec, EventKind, Orchestrator, OrchestratorError,
    Result, label,
};

/// How long one Engine call may take (a stop waits for its grace period on top).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The uid:gid tenants run as (the tenant image's user).
const TENANT_USER: &str = "65532:65532";
/// Each tenant's container log: files of at most this size, this many of them (10 MiB).
const LOG_MAX_SIZE: &str = "5m";
const LOG_MAX_FILES: &str = "2";
/// Open files per process in a tenant.
const NOFILE: i64 = 4096;
/// The label that remembers the port a container's runtime listens on ([`ContainerSpec`]'s
/// `port`), so addresses reported later use it.
const PORT_LABEL: &str = label::RUNTIME_PORT;

/// The address of a container's runtime: its IP on the tenant network and the port it was
/// made with. `None` for containers made without one (not by this driver).
fn address_of(ip: Option<IpAddr>, labels: &HashMap<String, String>) -> Option<SocketAddr> {
    let port = labels.get(PORT_LABEL)?.parse().ok()?;
    Some(SocketAddr::new(ip?, port))
}

pub struct DockerDriver {
    docker: Docker,
    network: String,
    network_id: std::sync::RwLock<Option<String>>,
}

impl DockerDriver {
    /// Connects to the local Engine (`DOCKER_HOST` or the default socket) lazily: nothing is
    /// asked of it until the first call.
    pub fn connect(network: &str) -> anyhow::Result<Self> {
        let docker = Docker::connect_with_local_defaults()?;
        Ok(DockerDriver {
            docker,
            network: network.to_owned(),
            network_id: std::sync::RwLock::new(None),
        })
    }

    /// Networks with exactly the tenant network's name.
    async fn networks_named(&self) -> Result<Vec<bollard::models::Network>> {
        let filters = HashMap::from([("name".to_owned(), vec![self.network.clone()])]);
        let options = bollard::query_parameters::ListNetworksOptionsBuilder::new()
            .filters(&filters)
            .build();
        Ok(timed(self.docker.list_networks(Some(options)))
            .await?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(self.network.as_str()))
            .collect())
    }

    /// The network by id once known (names can be ambiguous), else by name.
    fn network_ref(&self) -> String {
        self.network_id
            .read()
            .ok()
            .and_then(|id| id.clone())
            .unwrap_or_else(|| self.network.clone())
    }

    fn info(&self, c: ContainerInspectResponse) -> ContainerInfo {
        let state = c.state.unwrap_or_default();
        let ip = c
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(&self.network))
            .and_then(|e| endpoint_ip(&e));
        let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
        ContainerInfo {
            id: c.id.unwrap_or_default(),
            address: address_of(ip, &labels),
            labels,
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            machine_lost: false,
        }
    }
}

fn endpoint_ip(e: &EndpointSettings) -> Option<IpAddr> {
    e.ip_address
        .as_deref()
        .filter(|s| !s.is_empty())?
        .parse()
        .ok()
}

pub(super) async fn timed<T>(
    call: impl std::future::Future<Output = std::result::Result<T, DockerError>>,
) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => Err(OrchestratorError::Timeout(CALL_TIMEOUT)),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(e)),
    }
}

fn classify(e: DockerError) -> OrchestratorError {
    match e {
        DockerError::DockerResponseServerError {
            status_code: 404,
            message,
        } => OrchestratorError::NotFound(message),
        DockerError::DockerResponseServerError { message, .. } => {
            OrchestratorError::Engine(message)
        }
        other => OrchestratorError::Engine(other.to_string()),
    }
}

#[async_trait]
impl Orchestrator for DockerDriver {
    /// Creates the tenant network if it does not exist: an internal bridge (no route out)
    /// with inter-container communication off (no tenant reaches another). Docker allows
    /// two networks of one name, so replicas racing here both create one; every racer then
    /// keeps the one with the smallest id and removes the others.
    #[tracing::instrument(skip(self), fields(network = %self.network))]
    async fn prepare_network(&self) -> Result<()> {
        if self.networks_named().await?.is_empty() {
            let request = NetworkCreateRequest {
                name: self.network.clone(),
                driver: Some("bridge".to_owned()),
                internal: Some(true),
                options: Some(HashMap::from([(
                    "com.docker.network.bridge.enable_icc".to_owned(),
                    "false".to_owned(),
                )])),
                labels: Some(HashMap::from([(
                    "websplat.role".to_owned(),
                    "tenants".to_owned(),
                )])),
                ..Default::default()
            };
            timed(self.docker.create_network(request)).await?;
        }
        let mut found = self.networks_named().await?;
        found.sort_by(|a, b| a.id.cmp(&b.id));
        let Some(keep) = found.first().cloned() else {
            return Err(OrchestratorError::Engine(format!(
                "the network {} vanished as it was made",
                self.network
            )));
        };
        for extra in &found[1..] {
            if let Some(id) = &extra.id {
                // Another replica may have attached to it already: then it stays, harmless.
                let _ = timed(self.docker.remove_network(id)).await;
            }
        }
        let icc_off = keep
            .options
            .as_ref()
            .and_then(|o| o.get("com.docker.network.bridge.enable_icc"))
            .is_some_and(|v| v == "false");
        if keep.internal != Some(true) || !icc_off {
            return Err(OrchestratorError::Engine(format!(
                "the network {} exists but is not an internal bridge with enable_icc=false; remove it (docker network rm {}) and the platform recreates it",
                self.network, self.network
            )));
        }
        if let (Ok(mut id), Some(keep_id)) = (self.network_id.write(), keep.id) {
            *id = Some(keep_id);
        }
        Ok(())
    }

    #[tracing::instrument(skip(self), fields(network = %self.network))]
    async fn host_address(&self) -> Result<Option<IpAddr>> {
        let mut found = self.networks_named().await?;
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found
            .into_iter()
            .next()
            .and_then(|n| n.ipam)
            .and_then(|i| i.config)
            .and_then(|c| c.into_iter().find_map(|c| c.gateway))
            .and_then(|g| g.parse().ok()))
    }

    #[tracing::instrument(skip(self))]
    async fn image_digest(&self, image: &str) -> Result<Option<String>> {
        match timed(self.docker.inspect_image(image)).await {
            Ok(found) => Ok(found.id),
            Err(OrchestratorError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip(self, labels))]
    async fn ensure_volume(&self, name: &str, labels: &HashMap<String, String>) -> Result<()> {
        // Creating an existing local volume is a no-op in Docker.
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            driver: Some("local".to_owned()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        timed(self.docker.create_volume(request)).await.map(drop)
    }

    #[tracing::instrument(skip(self))]
    async fn remove_volume(&self, name: &str) -> Result<()> {
        let options = RemoveVolumeOptionsBuilder::new().force(true).build();
        match timed(self.docker.remove_volume(name, Some(options))).await {
            Ok(()) | Err(OrchestratorError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip(self, spec), fields(name = %spec.name, image = %spec.image))]
    async fn create(&self, spec: &ContainerSpec) -> Result<String> {
        if self
            .network_id
            .read()
            .map(|id| id.is_none())
            .unwrap_or(true)
        {
            // Not made at start-up (the engine was away then): make it now.
            self.prepare_network().await?;
        }
        let limits = spec.limits;
        let host_config = HostConfig {
            // Only the user's volume: no host paths, no Docker socket.
            mounts: Some(vec![Mount {
                target: Some("/data".to_owned()),
                source: Some(spec.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            }]),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                format!("rw,noexec,nosuid,nodev,size={}", limits.tmp_bytes),
            )])),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
            privileged: Some(false),
            pids_limit: Some(limits.pids),
            memory: Some(limits.memory_bytes),
            memory_swap: Some(limits.memory_bytes),
            nano_cpus: Some(i64::from(limits.cpu_millicores) * 1_000_000),
            network_mode: Some(self.network_ref()),
            init: Some(false),
            ipc_mode: Some("private".to_owned()),
            // A tenant's logs cannot fill the host's disk: a few rotated files at most.
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_owned()),
                config: Some(HashMap::from([
                    ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                    ("max-file".to_owned(), LOG_MAX_FILES.to_owned()),
                ])),
            }),
            // Open files are bounded per process. (`nproc` counts a user id's processes
            // host-wide, and every tenant runs as the same uid, so it would cap all
            // tenants together: the pids limit above bounds each container instead.)
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".to_owned()),
                soft: Some(NOFILE),
                hard: Some(NOFILE),
            }]),
            ..Default::default()
        };
        let mut labels = spec.labels.clone();
        labels.insert(PORT_LABEL.to_owned(), spec.port.to_string());
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            user: Some(TENANT_USER.to_owned()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            hostname: Some("workspace".to_owned()),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network_ref(),
                    EndpointSettings::default(),
                )])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        match timed(self.docker.create_container(Some(options), body)).await {
            Ok(created) => Ok(created.id),
            // The engine's 404 on create names the image it lacks.
            Err(OrchestratorError::NotFound(message)) if message.contains("No such image") => {
                Err(OrchestratorError::ImageMissing(spec.image.clone()))
            }
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn start(&self, id: &str) -> Result<()> {
        timed(self.docker.start_container(id, None)).await
    }

    #[tracing::instrument(skip(self))]
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>> {
        match timed(self.docker.inspect_container(id, None)).await {
            Ok(c) => Ok(Some(self.info(c))),
            Err(OrchestratorError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(secs).build();
        let call = self.docker.stop_container(id, Some(options));
        match tokio::time::timeout(CALL_TIMEOUT + grace, call).await {
            Err(_) => Err(OrchestratorError::Timeout(CALL_TIMEOUT + grace)),
            Ok(Ok(())) => Ok(()),
            // 304: already stopped.
            Ok(Err(DockerError::DockerResponseServerError {
                status_code: 304, ..
            })) => Ok(()),
            Ok(Err(e)) => Err(classify(e)),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match timed(self.docker.remove_container(id, Some(options))).await {
            Ok(()) | Err(OrchestratorError::NotFound(_)) => Ok(()),
            // Already being removed (e.g. by another replica).
            Err(OrchestratorError::Engine(msg)) if msg.contains("already in progress") => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn list(&self, key: &str, value: &str) -> Result<Vec<ContainerInfo>> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{key}={value}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let found = timed(self.docker.list_containers(Some(options))).await?;
        Ok(found
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let ip = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .and_then(|mut n| n.remove(&self.network))
                    .and_then(|e| endpoint_ip(&e));
                ContainerInfo {
                    id: c.id.unwrap_or_default(),
                    address: address_of(ip, &labels),
                    labels,
                    running: matches!(
                        c.state,
                        Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
                    ),
                    exit_code: None,
                    oom_killed: false,
                    machine_lost: false,
                }
            })
            .collect())
    }

    fn events(
        &self,
        key: &str,
        value: &str,
        since: i64,
    ) -> BoxStream<'static, Result<ContainerEvent>> {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("label".to_owned(), vec![format!("{key}={value}")]),
            ("event".to_owned(), vec!["die".to_owned(), "oom".to_owned()]),
        ]);
        let options = EventsOptionsBuilder::new()
            .since(&since.to_string())
            .filters(&filters)
            .build();
        tracing::info!(label = %format!("{key}={value}"), since, "subscribing to container events");
        self.docker
            .events(Some(options))
            .filter_map(|event| async move {
                let event = match event {
                    Ok(e) => e,
                    Err(e) => return Some(Err(classify(e))),
                };
                let actor = event.actor.unwrap_or_default();
                let labels = actor.attributes.unwrap_or_default();
                let kind = match event.action.as_deref() {
                    Some("die") => EventKind::Died {
                        exit_code: labels.get("exitCode").and_then(|c| c.parse().ok()),
                    },
                    Some("oom") => EventKind::OutOfMemory,
                    _ => return None,
                };
                Some(Ok(ContainerEvent {
                    container_id: actor.id.unwrap_or_default(),
                    labels,
                    kind,
                }))
            })
            .boxed()
    }

    #[tracing::instrument(skip(self))]
    async fn ping(&self) -> Result<()> {
        timed(self.docker.ping()).await.map(drop)
    }

    #[tracing::instrument(skip(self))]
    async fn logs(&self, id: &str, lines: usize) -> Result<Vec<String>> {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let chunks = self.docker.logs(id, Some(options)).collect::<Vec<_>>();
        let mut text = String::new();
        for chunk in timed_stream(chunks).await? {
            let chunk = chunk.map_err(classify)?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        let all: Vec<String> = text.lines().map(str::to_owned).collect();
        let skip = all.len().saturating_sub(lines);
        Ok(all.into_iter().skip(skip).collect())
    }

    #[tracing::instrument(skip(self))]
    async fn memory_used(&self, id: &str) -> Result<Option<u64>> {
        let options = StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stats = self.docker.stats(id, Some(options));
        match tokio::time::timeout(CALL_TIMEOUT, stats.next()).await {
            Err(_) => Err(OrchestratorError::Timeout(CALL_TIMEOUT)),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) => Err(classify(e)),
            Ok(Some(Ok(s))) => Ok(s.memory_stats.and_then(|m| m.usage)),
        }
    }
}

/// A collected stream, within the call timeout.
async fn timed_stream<T>(call: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| OrchestratorError::Timeout(CALL_TIMEOUT))
}
