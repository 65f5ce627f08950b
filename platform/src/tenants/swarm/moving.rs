//! Copying a workspace's volume from one node to another, through two helper tasks on a
//! network of their own: one on the target node listens and unpacks into the volume there,
//! one on the source node packs the volume (mounted read-only) and sends it. Nothing of the
//! copy passes through the platform, and the source volume is left as it was (an operator
//! removes it on its node once the moved workspace has been seen to work).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, Mount, MountType, NetworkAttachmentConfig,
    NetworkCreateRequest, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};

use super::super::docker::timed;
use super::super::orchestrator::{OrchestratorError, Result, label};
use super::{SwarmDriver, tasks};

/// The helper image: a static busybox (`tar`, `nc`), loaded on every node like the tenant
/// image.
pub const HELPER_IMAGE: &str = "websplat/probe:busybox";
const PORT: u16 = 7070;
/// How long a copy may take at most.
const COPY_WAIT: Duration = Duration::from_secs(30 * 60);

/// One helper's service: busybox running `script` on `node`, the volume at /data.
fn helper(
    name: &str,
    node: &str,
    volume: &str,
    read_only: bool,
    network: &str,
    script: String,
) -> ServiceSpec {
    let labels = HashMap::from([("websplat.role".to_owned(), "move".to_owned())]);
    ServiceSpec {
        name: Some(name.to_owned()),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(HELPER_IMAGE.to_owned()),
                labels: Some(labels),
                command: Some(vec![
                    "/busybox".to_owned(),
                    "sh".to_owned(),
                    "-c".to_owned(),
                    script,
                ]),
                // Root, to keep the files' owners; only the capabilities a copy needs.
                user: Some("0:0".to_owned()),
                read_only: Some(true),
                capability_drop: Some(vec!["ALL".to_owned()]),
                capability_add: Some(vec![
                    "CAP_CHOWN".to_owned(),
                    "CAP_DAC_OVERRIDE".to_owned(),
                    "CAP_FOWNER".to_owned(),
                ]),
                mounts: Some(vec![Mount {
                    target: Some("/data".to_owned()),
                    source: Some(volume.to_owned()),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(read_only),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(vec![format!("node.id=={node}")]),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(network.to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: None,
        }),
        ..Default::default()
    }
}

/// Copies `volume` from node `from` to node `to`, saying each step to `progress`.
pub async fn copy(
    driver: &SwarmDriver,
    volume: &str,
    from: &str,
    to: &str,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<()> {
    let docker = driver.docker().await?;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let tag = &tag[..12];
    let network = format!("websplat-move-{tag}");
    let receiver = format!("websplat-move-{tag}-to");
    let sender = format!("websplat-move-{tag}-from");
    timed(docker.create_network(NetworkCreateRequest {
        name: network.clone(),
        driver: Some("overlay".to_owned()),
        scope: Some("swarm".to_owned()),
        internal: Some(true),
        labels: Some(HashMap::from([(
            label::POOL.to_owned(),
            driver.inner.pool.clone(),
        )])),
        ..Default::default()
    }))
    .await?;
    let result = async {
        progress(format!("copying the data: a receiver on the target machine ({to})"));
        let receive = format!("/busybox nc -l -p {PORT} -e /busybox tar -C /data -xf -");
        let to_id = timed(docker.create_service(helper(&receiver, to, volume, false, &network, receive), None))
            .await?
            .id
            .unwrap_or_default();
        progress(format!("copying the data: a sender on the source machine ({from})"));
        let send = format!(
            "for i in $(/busybox seq 1 300); do /busybox nc -w 5 {receiver} {PORT} -e /busybox tar -C /data -cf - . && exit 0; /busybox sleep 0.2; done; exit 1"
        );
        let from_id = timed(docker.create_service(helper(&sender, from, volume, true, &network, send), None))
            .await?
            .id
            .unwrap_or_default();
        let deadline = Instant::now() + COPY_WAIT;
        let mut said = false;
        loop {
            let receiving = ended(driver, &to_id).await?;
            let sending = ended(driver, &from_id).await?;
            match (receiving, sending) {
                (Some(Ok(())), Some(Ok(()))) => break,
                (Some(Err(why)), _) => {
                    return Err(OrchestratorError::Engine(format!("the receiver failed: {why}")));
                }
                (_, Some(Err(why))) => {
                    return Err(OrchestratorError::Engine(format!("the sender failed: {why}")));
                }
                _ => {}
            }
            if !said {
                progress("copying the data: under way".to_owned());
                said = true;
            }
            if Instant::now() >= deadline {
                return Err(OrchestratorError::Timeout(COPY_WAIT));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        progress("copying the data: done".to_owned());
        Ok(())
    }
    .await;
    for name in [&sender, &receiver] {
        let _ = timed(docker.delete_service(name)).await;
    }
    // The network goes once its tasks have let go of it.
    for _ in 0..50 {
        if timed(docker.remove_network(&network)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    result
}

/// `None` while a helper runs; how it ended once it has.
async fn ended(
    driver: &SwarmDriver,
    service: &str,
) -> Result<Option<std::result::Result<(), String>>> {
    let Some(snapshot) = driver.snapshot_of(service).await? else {
        return Ok(Some(Err("its service vanished".to_owned())));
    };
    let Some(task) = snapshot.task_of(service) else {
        return Ok(None);
    };
    let state = task.status.as_ref().and_then(|s| s.state);
    Ok(match state {
        Some(TaskState::COMPLETE) => Some(Ok(())),
        Some(s) if tasks::is_final(s) => {
            Some(Err(tasks::task_error(task).unwrap_or_else(|| s.to_string())))
        }
        _ => None,
    })
}
