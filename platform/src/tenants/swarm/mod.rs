//! The Docker Swarm driver of the [`Orchestrator`] interface, on bollard's services,
//! tasks and nodes API, for one pool on one cluster (its manager's API). Each tenant is a
//! service of its own with one replica that is never restarted ([`spec`]); it runs on the
//! node that holds its user's volume ([`placement`]); its task tells whether it runs and
//! where it answers ([`tasks`]). It asks only the manager, negotiates the manager's API
//! version before its first call, and never touches a node's own daemon.
//!
//! Volumes are local to a node: the engine makes one when the first task that mounts it
//! starts there, and only that node's daemon can delete it.

mod moving;
mod placement;
pub mod spec;
mod tasks;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ServiceSpecMode, ServiceSpecModeReplicated};
use bollard::query_parameters::{
    ListNodesOptions, ListServicesOptionsBuilder, ListTasksOptions, UpdateServiceOptionsBuilder,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::OnceCell;

use super::docker::timed;
use super::orchestrator::{
    ContainerEvent, ContainerInfo, ContainerSpec, Machine, Orchestrator, OrchestratorError, Result,
    label,
};
use placement::NodeView;
use spec::POOL_NODE_LABEL;
use tasks::Snapshot;

/// How often the task states are compared for deaths and lost nodes.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long the watcher waits before asking a manager that did not answer again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How often a task that lost the race for its node's network is tried again.
const NETWORK_RACE_RETRIES: u32 = 3;
/// How long a new task may take to run (the image is on the node; no pull).
const START_WAIT: Duration = Duration::from_secs(60);

struct Inner {
    docker: Docker,
    endpoint: String,
    pool: String,
    /// The tenant network (a swarm-scoped bridge network with a part on every node).
    network: String,
    negotiated: OnceCell<()>,
}

#[derive(Clone)]
pub struct SwarmDriver {
    inner: Arc<Inner>,
}

impl SwarmDriver {
    /// Connects to a manager lazily (nothing is asked of it until the first call).
    /// `network` is the tenant network's name on the swarm.
    pub fn connect(endpoint: &str, pool: &str, network: &str) -> anyhow::Result<Self> {
        let docker = Docker::connect_with_host(endpoint)?;
        Ok(SwarmDriver {
            inner: Arc::new(Inner {
                docker,
                endpoint: endpoint.to_owned(),
                pool: pool.to_owned(),
                network: network.to_owned(),
                negotiated: OnceCell::new(),
            }),
        })
    }

    /// The client, at the API version the manager speaks (asked once).
    async fn docker(&self) -> Result<&Docker> {
        let inner = &self.inner;
        inner
            .negotiated
            .get_or_try_init(|| async {
                timed(inner.docker.clone().negotiate_version())
                    .await
                    .map(drop)
            })
            .await?;
        Ok(&inner.docker)
    }

    fn pool_filter(&self, key: &str, value: &str) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{key}={value}"),
                format!("{}={}", label::POOL, self.inner.pool),
            ],
        )])
    }

    async fn nodes(&self) -> Result<Vec<NodeView>> {
        let docker = self.docker().await?;
        Ok(timed(docker.list_nodes(None::<ListNodesOptions>))
            .await?
            .iter()
            .map(NodeView::of)
            .collect())
    }

    async fn all_tasks(&self) -> Result<Vec<bollard::models::Task>> {
        let docker = self.docker().await?;
        timed(docker.list_tasks(None::<ListTasksOptions>)).await
    }

    /// The pool's services carrying `key=value`, with their tasks and the nodes.
    async fn snapshot(&self, key: &str, value: &str) -> Result<Snapshot> {
        let docker = self.docker().await?;
        let filters = self.pool_filter(key, value);
        let options = ListServicesOptionsBuilder::new().filters(&filters).build();
        let (services, tasks, nodes) = tokio::try_join!(
            timed(docker.list_services(Some(options))),
            self.all_tasks(),
            self.nodes()
        )?;
        Ok(Snapshot {
            services,
            tasks,
            nodes,
        })
    }

    /// One service, its tasks and the nodes; `None` when there is no such service.
    async fn snapshot_of(&self, id: &str) -> Result<Option<Snapshot>> {
        let docker = self.docker().await?;
        let service = match timed(docker.inspect_service(id, None)).await {
            Ok(s) => s,
            Err(OrchestratorError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let filters = HashMap::from([("service".to_owned(), vec![id.to_owned()])]);
        let options = bollard::query_parameters::ListTasksOptionsBuilder::new()
            .filters(&filters)
            .build();
        let (tasks, nodes) =
            tokio::try_join!(timed(docker.list_tasks(Some(options))), self.nodes())?;
        Ok(Some(Snapshot {
            services: vec![service],
            tasks,
            nodes,
        }))
    }

    /// Makes the swarm start a service's task anew (its restart policy would not).
    async fn force_update(&self, id: &str) -> Result<()> {
        let docker = self.docker().await?;
        let service = timed(docker.inspect_service(id, None)).await?;
        let version = service
            .version
            .and_then(|v| v.index)
            .and_then(|i| i32::try_from(i).ok())
            .unwrap_or_default();
        let mut spec = service.spec.unwrap_or_default();
        if let Some(task) = spec.task_template.as_mut() {
            task.force_update = Some(task.force_update.unwrap_or(0) + 1);
        }
        let options = UpdateServiceOptionsBuilder::new().version(version).build();
        timed(docker.update_service(id, spec, options, None))
            .await
            .map(drop)
    }

    /// Sets a service's replica count (0 stops its task, which is never restarted).
    async fn scale(&self, id: &str, replicas: i64) -> Result<()> {
        let docker = self.docker().await?;
        let service = timed(docker.inspect_service(id, None)).await?;
        let version = service
            .version
            .and_then(|v| v.index)
            .and_then(|i| i32::try_from(i).ok())
            .unwrap_or_default();
        let mut spec = service.spec.unwrap_or_default();
        spec.mode = Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(replicas),
            }),
            ..Default::default()
        });
        let options = UpdateServiceOptionsBuilder::new().version(version).build();
        timed(docker.update_service(id, spec, options, None))
            .await
            .map(drop)
    }
}

#[async_trait]
impl Orchestrator for SwarmDriver {
    /// Checks that the tenant network exists on the swarm. It is a swarm-scoped bridge
    /// network made from a config network on every node (each with `enable_icc=false`
    /// and the nodes' firewall, README "Pools on a Docker Swarm"): a node's part cannot be
    /// made through the manager, so the driver only names it, and says so when it is missing.
    #[tracing::instrument(skip(self), fields(pool = %self.inner.pool, network = %self.inner.network))]
    async fn prepare_network(&self) -> Result<()> {
        let docker = self.docker().await?;
        let filters = HashMap::from([("name".to_owned(), vec![self.inner.network.clone()])]);
        let options = bollard::query_parameters::ListNetworksOptionsBuilder::new()
            .filters(&filters)
            .build();
        let found = timed(docker.list_networks(Some(options))).await?;
        let network = found
            .iter()
            .find(|n| n.name.as_deref() == Some(self.inner.network.as_str()));
        match network {
            Some(n) if n.scope.as_deref() == Some("swarm") => Ok(()),
            Some(_) => Err(OrchestratorError::Engine(format!(
                "the network {} on the swarm of the pool {} is not swarm-scoped; make it with docker network create --driver bridge --scope swarm --config-from {}-config {}",
                self.inner.network, self.inner.pool, self.inner.network, self.inner.network
            ))),
            None => Err(OrchestratorError::Engine(format!(
                "the swarm of the pool {} has no network named {}; make it as the README says (a config network with enable_icc=false on every node, then docker network create --driver bridge --scope swarm --config-from {}-config {})",
                self.inner.pool, self.inner.network, self.inner.network, self.inner.network
            ))),
        }
    }

    #[tracing::instrument(skip(self), fields(pool = %self.inner.pool))]
    async fn place(&self, pinned: Option<&str>) -> Result<Option<String>> {
        let (nodes, tasks) = tokio::try_join!(self.nodes(), self.all_tasks())?;
        placement::choose(&self.inner.pool, &nodes, &tasks, pinned).map(Some)
    }

    #[tracing::instrument(skip(self), fields(pool = %self.inner.pool))]
    async fn machines(&self) -> Result<Vec<Machine>> {
        let (nodes, tasks) = tokio::try_join!(self.nodes(), self.all_tasks())?;
        Ok(placement::machines(&self.inner.pool, &nodes, &tasks))
    }

    #[tracing::instrument(skip(self, progress), fields(pool = %self.inner.pool))]
    async fn copy_volume(
        &self,
        volume: &str,
        from: &str,
        to: &str,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<()> {
        moving::copy(self, volume, from, to, progress).await
    }

    /// Nothing to do ahead: the node makes the volume when the first task mounting it
    /// starts there.
    async fn ensure_volume(&self, _name: &str, _labels: &HashMap<String, String>) -> Result<()> {
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        Err(OrchestratorError::Engine(format!(
            "the volume {name} lives on one node of the swarm pool {}; remove it on that node (docker volume rm {name})",
            self.inner.pool
        )))
    }

    #[tracing::instrument(skip(self, spec), fields(pool = %self.inner.pool, name = %spec.name, node = ?spec.node))]
    async fn create(&self, spec: &ContainerSpec) -> Result<String> {
        let docker = self.docker().await?;
        let service = spec::service(spec, &self.inner.pool, &self.inner.network);
        match timed(docker.create_service(service, None)).await {
            Ok(created) => created.id.ok_or_else(|| {
                OrchestratorError::Engine("the manager made a service without an id".to_owned())
            }),
            // The network is missing: say what to make.
            Err(OrchestratorError::NotFound(m)) if m.contains("network") => {
                self.prepare_network().await?;
                Err(OrchestratorError::NotFound(m))
            }
            Err(e) => Err(e),
        }
    }

    /// The service runs its one task from creation: waits until that task runs, and says
    /// in the engine's words why it did not.
    #[tracing::instrument(skip(self), fields(pool = %self.inner.pool))]
    async fn start(&self, id: &str) -> Result<()> {
        let deadline = Instant::now() + START_WAIT;
        let mut retries = 0;
        loop {
            let Some(snapshot) = self.snapshot_of(id).await? else {
                return Err(OrchestratorError::NotFound(format!("the service {id}")));
            };
            let task = snapshot.task_of(id);
            let state = task.and_then(|t| t.status.as_ref()).and_then(|s| s.state);
            match state {
                // Running, and its node says where it answers.
                Some(bollard::models::TaskState::RUNNING)
                    if snapshot
                        .services
                        .first()
                        .and_then(|service| snapshot.info(service).address)
                        .is_some() =>
                {
                    return Ok(());
                }
                Some(s) if tasks::is_final(s) => {
                    let why = task
                        .and_then(tasks::task_error)
                        .unwrap_or_else(|| s.to_string());
                    // The first tasks to start at once on a node race to make its part of
                    // the tenant network ("network … exists"): the loser is tried again.
                    if retries < NETWORK_RACE_RETRIES
                        && why.contains("network")
                        && why.contains("exists")
                    {
                        retries += 1;
                        tracing::info!(
                            why,
                            retries,
                            "the task lost a race for the node's network; trying it again"
                        );
                        self.force_update(id).await?;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    return Err(OrchestratorError::Engine(format!(
                        "its task ended before it ran: {why}"
                    )));
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                let why = task
                    .and_then(tasks::task_error)
                    .unwrap_or_else(|| "it is still waiting for its node".to_owned());
                return Err(OrchestratorError::Engine(format!(
                    "its task did not run within {} seconds: {why}",
                    START_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tracing::instrument(skip(self), fields(pool = %self.inner.pool))]
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>> {
        Ok(self
            .snapshot_of(id)
            .await?
            .and_then(|s| s.services.first().map(|service| s.info(service))))
    }

    /// Scales the service to nothing and waits (up to `grace` and a call's time) until its
    /// task is no longer running; the engine kills it after its stop grace period.
    #[tracing::instrument(skip(self), fields(pool = %self.inner.pool))]
    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        match self.scale(id, 0).await {
            Ok(()) => {}
            Err(OrchestratorError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + grace + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.inspect(id).await? {
                Some(info) if info.running => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => return Ok(()),
            }
        }
        Err(OrchestratorError::Timeout(grace))
    }

    #[tracing::instrument(skip(self), fields(pool = %self.inner.pool))]
    async fn remove(&self, id: &str) -> Result<()> {
        let docker = self.docker().await?;
        match timed(docker.delete_service(id)).await {
            Ok(()) | Err(OrchestratorError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip(self), fields(pool = %self.inner.pool))]
    async fn list(&self, key: &str, value: &str) -> Result<Vec<ContainerInfo>> {
        Ok(self.snapshot(key, value).await?.infos())
    }

    /// Task deaths and lost nodes, found by comparing the pool's tasks every second (the
    /// swarm's own event stream has no task events). A manager that does not answer is
    /// asked again a little later (logged, not ended: the other engines' streams go on);
    /// what ended meanwhile is found by the reconciler.
    fn events(
        &self,
        key: &str,
        value: &str,
        _since: i64,
    ) -> BoxStream<'static, Result<ContainerEvent>> {
        let this = self.clone();
        let (key, value) = (key.to_owned(), value.to_owned());
        tracing::info!(pool = %self.inner.pool, label = %format!("{key}={value}"), "watching the swarm's tasks");
        futures_util::stream::unfold(None::<HashMap<String, bool>>, move |before| {
            let (this, key, value) = (this.clone(), key.clone(), value.clone());
            async move {
                let mut before = before;
                loop {
                    if before.is_some() {
                        tokio::time::sleep(WATCH_EVERY).await;
                    }
                    match this.snapshot(&key, &value).await {
                        Ok(now) => {
                            let events: Vec<Result<ContainerEvent>> = before
                                .as_ref()
                                .map(|b| now.changes(b))
                                .unwrap_or_default()
                                .into_iter()
                                .map(Ok)
                                .collect();
                            return Some((events, Some(now.running())));
                        }
                        Err(e) => {
                            tracing::warn!(pool = %this.inner.pool, error = %e, "the swarm's manager does not answer");
                            tokio::time::sleep(RETRY_AFTER).await;
                            before = None;
                        }
                    }
                }
            }
        })
        .flat_map(futures_util::stream::iter)
        .boxed()
    }

    #[tracing::instrument(skip(self), fields(pool = %self.inner.pool, endpoint = %self.inner.endpoint))]
    async fn ping(&self) -> Result<()> {
        let docker = self.docker().await?;
        timed(docker.ping()).await.map(drop)
    }

    async fn host_address(&self) -> Result<Option<IpAddr>> {
        Ok(None)
    }
}

/// The node label a pool's nodes carry (`websplat.pool=<pool>`), for operators' words.
pub fn node_label(pool: &str) -> String {
    format!("{POOL_NODE_LABEL}={pool}")
}
