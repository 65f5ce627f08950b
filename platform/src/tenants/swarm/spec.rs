//! One tenant as a Swarm service: one replica that is never restarted, pinned to the node
//! that holds the user's volume, hardened as on a single engine (non-root, no
//! capabilities, read-only root with a tmpfs, pids/memory/CPU limits, log limits, open
//! files). Engine API 1.41 cannot ask no-new-privileges per service: the nodes' daemons
//! set it for every container (`"no-new-privileges": true` in their configuration), and
//! the field is sent anyway for engines that take it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, Limit, Mount, MountTmpfsOptions, MountType,
    MountVolumeOptions, NetworkAttachmentConfig, ResourceObject, ResourcesUlimits, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecPrivileges, TaskSpecLogDriver, TaskSpecPlacement, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};

use super::super::orchestrator::{ContainerSpec, label};

/// The uid:gid tenants run as (the tenant image's user).
const TENANT_USER: &str = "65532:65532";
/// Each tenant's container log: files of at most this size, this many of them (10 MiB).
const LOG_MAX_SIZE: &str = "5m";
const LOG_MAX_FILES: &str = "2";
/// Open files per process in a tenant.
const NOFILE: i64 = 4096;
/// How long a stopping tenant gets before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// The node label that says which pool a node serves.
pub const POOL_NODE_LABEL: &str = "websplat.pool";

/// The service of one tenant, on `network`, in `pool`. The platform reaches its runtime on
/// a port the node publishes on its own address (host mode: no ingress, no virtual IP).
pub fn service(spec: &ContainerSpec, pool: &str, network: &str) -> ServiceSpec {
    let limits = spec.limits;
    let mut labels = spec.labels.clone();
    labels.insert(label::RUNTIME_PORT.to_owned(), spec.port.to_string());
    let volume_labels: HashMap<String, String> = [label::USER, label::DEPLOYMENT]
        .into_iter()
        .filter_map(|k| Some((k.to_owned(), spec.labels.get(k)?.clone())))
        .collect();
    let mut constraints = vec![format!("node.labels.{POOL_NODE_LABEL}=={pool}")];
    if let Some(node) = &spec.node {
        constraints.push(format!("node.id=={node}"));
    }
    let container = TaskSpecContainerSpec {
        image: Some(spec.image.clone()),
        labels: Some(labels.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        user: Some(TENANT_USER.to_owned()),
        hostname: Some("workspace".to_owned()),
        read_only: Some(true),
        init: Some(false),
        privileges: Some(TaskSpecContainerSpecPrivileges {
            no_new_privileges: Some(true),
            ..Default::default()
        }),
        capability_drop: Some(vec!["ALL".to_owned()]),
        ulimits: Some(vec![ResourcesUlimits {
            name: Some("nofile".to_owned()),
            soft: Some(NOFILE),
            hard: Some(NOFILE),
        }]),
        stop_grace_period: Some(i64::try_from(STOP_GRACE.as_nanos()).unwrap_or(i64::MAX)),
        // Only the user's volume and a small tmpfs: no host paths, no Docker socket.
        mounts: Some(vec![
            Mount {
                target: Some("/data".to_owned()),
                source: Some(spec.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                volume_options: Some(MountVolumeOptions {
                    labels: Some(volume_labels),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Mount {
                target: Some("/tmp".to_owned()),
                typ: Some(MountType::TMPFS),
                tmpfs_options: Some(MountTmpfsOptions {
                    size_bytes: Some(i64::try_from(limits.tmp_bytes).unwrap_or(i64::MAX)),
                    mode: Some(0o1777),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let nano_cpus = i64::from(limits.cpu_millicores) * 1_000_000;
    let task = TaskSpec {
        container_spec: Some(container),
        resources: Some(TaskSpecResources {
            limits: Some(Limit {
                nano_cpus: Some(nano_cpus),
                memory_bytes: Some(limits.memory_bytes),
                pids: Some(limits.pids),
            }),
            // What placement counts a node's capacity in: the memory each workspace may use.
            reservations: Some(ResourceObject {
                memory_bytes: Some(limits.memory_bytes),
                ..Default::default()
            }),
            ..Default::default()
        }),
        // A workspace that ends is never started again by the swarm (on this node or any
        // other): its lifecycle is the platform's.
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
            max_attempts: Some(0),
            ..Default::default()
        }),
        placement: Some(TaskSpecPlacement {
            constraints: Some(constraints),
            ..Default::default()
        }),
        networks: Some(vec![NetworkAttachmentConfig {
            target: Some(network.to_owned()),
            ..Default::default()
        }]),
        log_driver: Some(TaskSpecLogDriver {
            name: Some("json-file".to_owned()),
            options: Some(HashMap::from([
                ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                ("max-file".to_owned(), LOG_MAX_FILES.to_owned()),
            ])),
        }),
        ..Default::default()
    };
    // No published port named: the node picks a free one, read back from the task.
    let ports = Some(vec![EndpointPortConfig {
        protocol: Some(EndpointPortConfigProtocolEnum::TCP),
        target_port: Some(i64::from(spec.port)),
        publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
        ..Default::default()
    }]);
    ServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(labels),
        task_template: Some(task),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        // No virtual IP and no ingress (IPVS is not needed, nor always there): the platform
        // reaches the task itself.
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenants::orchestrator::Limits;

    fn spec(node: Option<&str>) -> ContainerSpec {
        ContainerSpec {
            name: "websplat-t-1".to_owned(),
            image: "websplat/tenant-runtime:0.1.0".to_owned(),
            env: vec![("A".to_owned(), "b".to_owned())],
            labels: HashMap::from([(label::USER.to_owned(), "u".to_owned())]),
            volume: "websplat-v".to_owned(),
            limits: Limits {
                cpu_millicores: 500,
                memory_bytes: 256 << 20,
                pids: 128,
                tmp_bytes: 64 << 20,
            },
            port: 8080,
            node: node.map(str::to_owned),
        }
    }

    #[test]
    fn a_tenant_is_one_hardened_replica_never_restarted_and_pinned_to_its_node() {
        let s = service(&spec(Some("n1")), "default", "net");
        assert_eq!(
            s.mode
                .expect("present")
                .replicated
                .expect("present")
                .replicas,
            Some(1)
        );
        let task = s.task_template.expect("present");
        assert_eq!(
            task.restart_policy.expect("present").condition,
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        assert_eq!(
            task.placement
                .expect("present")
                .constraints
                .expect("present"),
            vec![
                "node.labels.websplat.pool==default".to_owned(),
                "node.id==n1".to_owned()
            ]
        );
        let c = task.container_spec.expect("present");
        assert_eq!(c.user.as_deref(), Some(TENANT_USER));
        assert_eq!(c.read_only, Some(true));
        assert_eq!(c.capability_drop, Some(vec!["ALL".to_owned()]));
        let limits = task.resources.expect("present").limits.expect("present");
        assert_eq!(limits.pids, Some(128));
        assert_eq!(limits.memory_bytes, Some(256 << 20));
        assert_eq!(limits.nano_cpus, Some(500_000_000));
        assert_eq!(
            s.endpoint_spec.expect("present").mode,
            Some(EndpointSpecModeEnum::DNSRR)
        );
    }
}
