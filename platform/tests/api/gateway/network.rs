//! The door on the real engine: a tenant container learns where the door is from its
//! environment (which holds no provider key), reaches it on the tenant network's gateway
//! address, and reaches neither the platform's main listener nor a provider's host. A call
//! signed with the container's own secret is answered.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::Value;

use super::{PROVIDER_KEY, Tenant, Upstream, hello};
use crate::workspaces::helpers::{Person, app_with_workspaces, containers_of, docker};
use crate::workspaces::isolation::probe_from;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_container_reaches_the_door_and_nothing_else_and_holds_no_key() {
    let upstream = Upstream::start();
    let provider_port = upstream
        .server
        .base
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    let app = app_with_workspaces(&[
        ("WEBSPLAT_AI_FAKE_KIND", "openai"),
        ("WEBSPLAT_AI_FAKE_BASE_URL", &upstream.base_url),
        ("WEBSPLAT_AI_FAKE_API_KEY", PROVIDER_KEY),
        ("WEBSPLAT_AI_FAKE_MODELS", "fake-chat"),
        ("WEBSPLAT_AI_ALIAS_FAST", "fake/fake-chat"),
    ])
    .await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let container = containers_of(&app, &alice.id).await[0]
        .id
        .clone()
        .expect("id");
    let inspected = docker()
        .inspect_container(
            &container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .expect("inspect");
    let env: HashMap<String, String> = inspected
        .config
        .and_then(|c| c.env)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    assert!(
        !env.values().any(|v| v.contains(PROVIDER_KEY)),
        "no provider key in the container"
    );
    let door = env
        .get("WEBSPLAT_GATEWAY_URL")
        .expect("the runtime learns where the door is")
        .clone();
    let door_addr = door.strip_prefix("http://").expect("http").to_owned();
    let (door_host, door_port) = door_addr.rsplit_once(':').expect("host:port");
    let network = docker()
        .inspect_network(
            &app.state.config.tenants.network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .expect("network");
    let gateway = network
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().find_map(|c| c.gateway))
        .expect("the network's gateway");
    assert_eq!(
        door_host, gateway,
        "the door is on the tenant network's gateway address"
    );
    let platform_port = app.base.rsplit(':').next().expect("port").to_owned();
    let script = format!(
        "printf 'GET /v1/models HTTP/1.0\\r\\n\\r\\n' | /busybox timeout 5 /busybox nc -w 2 {door_host} {door_port} | /busybox head -n 1; \
         for t in platform:{gateway}:{platform_port} provider:{gateway}:{provider_port}; do \
           n=${{t%%:*}}; a=${{t#*:}}; \
           if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /busybox timeout 5 /busybox nc -w 2 ${{a%:*}} ${{a##*:}} >/dev/null 2>&1; then echo \"$n reached\"; else echo \"$n blocked\"; fi; \
         done"
    );
    let out = probe_from(&container, &script).await;
    assert!(
        out.contains(" 401 Unauthorized"),
        "the door answers, and wants a signature:\n{out}"
    );
    assert!(out.contains("platform blocked"), "{out}");
    assert!(out.contains("provider blocked"), "{out}");

    // Signed with the container's own secret, a call is answered through the door.
    let tenant = Tenant {
        user: platform::users::UserId(alice.id.parse().expect("uuid")),
        secret: env.get("WEBSPLAT_TENANT_SECRET").expect("secret").clone(),
        door,
        client: reqwest::Client::new(),
        session: alice.client.clone(),
    };
    let r = tenant.chat(&hello(false)).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("json");
    assert!(!answer.to_string().contains(PROVIDER_KEY));
    let r = tenant.call(Method::GET, "/v1/models", None).await;
    assert_eq!(r.status(), 200);
}
