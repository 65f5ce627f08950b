//! Isolation: nobody else reaches a workspace by host, path or ids, and the runtime wants the
//! platform's secret; a tenant reaches neither another tenant, nor the internet, nor the
//! host's services (probed from a container on the tenant network).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::helpers::body;

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_else_reaches_a_workspace_by_host_path_or_ids_and_the_runtime_wants_the_secret() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    let alice_ws = alice.wait_for(&app, "ready").await;
    bob.wait_for(&app, "ready").await;
    let alice_origin = alice.open(&app).await;
    assert_eq!(alice_ws["url"], alice_origin.as_str());
    alice.write_note(&alice_origin, "alice's secret plan").await;

    // Bob at Alice's host, without a cookie for it: sent to the platform, which hands him
    // to his own workspace, never to hers.
    let r = bob
        .client
        .get(format!("{alice_origin}/"))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    let to_platform = location(&r);
    assert!(to_platform.starts_with(&app.base), "{to_platform}");
    let r = bob.client.get(&to_platform).send().await.expect("open");
    assert_eq!(r.status(), 303);
    let handoff = location(&r);
    assert!(
        handoff.starts_with("http://bob-"),
        "handed to his own workspace: {handoff}"
    );
    // As a program: refused without content.
    let r = bob
        .client
        .get(format!("{alice_origin}/api/v1/notes"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap_or_default().contains("secret plan"));

    // Bob's own workspace cookie, copied by hand to Alice's host: refused.
    let (bob_origin, bob_cookie) = bob.open_with_cookie(&app).await;
    let forged = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Loopback))
        .build()
        .expect("client");
    let r = forged
        .get(format!("{alice_origin}/api/v1/notes"))
        .header("Cookie", &bob_cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap_or_default().contains("secret plan"));
    // With his cookie on his own host he sees his (empty) notes, not hers.
    let r = forged
        .get(format!("{bob_origin}/api/v1/notes"))
        .header("Cookie", &bob_cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(!r.text().await.unwrap_or_default().contains("secret plan"));

    // Swapped ids: the workspace API answers about the caller only.
    let r = bob
        .client
        .get(app.url(&format!("/api/v1/workspace?user={}", alice.id)))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let answer = body(r).await;
    assert_eq!(
        answer["url"],
        bob_origin.as_str(),
        "always the caller's own: {answer}"
    );
    assert_ne!(answer["tenant"], alice_ws["tenant"]);

    // Straight to Alice's container (only the host can): refused without the signed
    // identity, and with a forged one.
    let list = containers(&app).await;
    let alice_container = list
        .iter()
        .find(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l["websplat.user"] == alice.id)
        })
        .expect("alice's container");
    let ip = alice_container
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|n| n.values().next())
        .and_then(|e| e.ip_address.clone())
        .expect("ip");
    let direct = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for header in [
        None,
        Some("v1;user=00000000-0000-0000-0000-000000000000;ts=1;sig=00"),
    ] {
        let mut request = direct.get(format!("http://{ip}:8080/api/v1/notes"));
        if let Some(h) = header {
            request = request.header("X-Websplat-Identity", h);
        }
        let r = request.send().await.expect("direct");
        assert_eq!(r.status(), 401);
        assert!(!r.text().await.unwrap_or_default().contains("secret plan"));
    }
    // A cross-origin write to her workspace (from Bob's pages, say) is refused.
    let r = alice
        .client
        .post(format!("{alice_origin}/api/v1/notes"))
        .header("Origin", &bob_origin)
        .json(&json!({"text": "planted"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
}

/// A probe image: Debian's static busybox `FROM scratch` (scripts/test installs
/// `busybox-static`), built once per machine.
async fn probe_image() -> String {
    let tag = "websplat/probe:busybox".to_owned();
    if docker().inspect_image(&tag).await.is_ok() {
        return tag;
    }
    let dir =
        std::env::temp_dir().join(format!("websplat-probe-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy("/bin/busybox", dir.join("busybox"))
        .expect("/bin/busybox (apt-get install busybox-static)");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /busybox\nUSER 65532:65532\nENTRYPOINT [\"/busybox\"]\n",
    )
    .expect("Dockerfile");
    let status = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(&dir)
        .status()
        .expect("docker build");
    assert!(status.success(), "cannot build the probe image");
    let _ = std::fs::remove_dir_all(&dir);
    tag
}

/// Runs a shell script in a probe container that shares `container`'s network namespace
/// (sees exactly what the tenant sees); returns what it printed.
pub(crate) async fn probe_from(container: &str, script: &str) -> String {
    use bollard::query_parameters::{LogsOptionsBuilder, RemoveContainerOptionsBuilder};
    let image = probe_image().await;
    let d = docker();
    let id = d
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(image),
                cmd: Some(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()]),
                host_config: Some(bollard::models::HostConfig {
                    network_mode: Some(format!("container:{container}")),
                    cap_drop: Some(vec!["ALL".to_owned()]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create the probe")
        .id;
    d.start_container(
        &id,
        None::<bollard::query_parameters::StartContainerOptions>,
    )
    .await
    .expect("start the probe");
    let mut waited = d.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
    let finished = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(w) = futures_util::StreamExt::next(&mut waited).await {
            if w.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "the probe did not finish within 2 minutes"
    );
    let mut logs = d.logs(
        &id,
        Some(LogsOptionsBuilder::new().stdout(true).stderr(true).build()),
    );
    let mut out = String::new();
    while let Some(Ok(line)) = futures_util::StreamExt::next(&mut logs).await {
        out.push_str(&line.to_string());
    }
    let _ = d
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reaches_neither_another_tenant_nor_the_internet_nor_the_hosts_services() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    alice.wait_for(&app, "ready").await;
    bob.wait_for(&app, "ready").await;
    let bob_address = app
        .query_one(&format!(
            "SELECT address FROM tenants WHERE user_id = '{}' AND state = 'ready'",
            bob.id
        ))
        .await;
    let alice_container = containers_of(&app, &alice.id).await[0]
        .id
        .clone()
        .expect("id");
    // The host, as the tenant network's gateway.
    let network = docker()
        .inspect_network(
            &app.state.config.tenants.network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .expect("network");
    assert_eq!(network.internal, Some(true));
    let gateway = network
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().find_map(|c| c.gateway))
        .unwrap_or_else(|| "172.17.0.1".to_owned());
    let pg_port = crate::support::env_var("WEBSPLAT_TEST_DATABASE_URL")
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next().map(str::to_owned))
        .expect("port");
    let redis_port = crate::support::env_var("WEBSPLAT_TEST_REDIS_URL")
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .map(str::to_owned)
        .expect("port");
    let platform_port = app.base.rsplit(':').next().expect("port").to_owned();
    let (bob_ip, bob_port) = bob_address.split_once(':').expect("ip:port");
    let targets = [
        ("own-runtime", "127.0.0.1", "8080"),
        ("other-tenant", bob_ip, bob_port),
        ("internet", "1.1.1.1", "80"),
        ("host-postgresql", &gateway, &pg_port),
        ("host-redis", &gateway, &redis_port),
        ("host-docker-api", &gateway, "2375"),
        ("host-platform", &gateway, &platform_port),
    ];
    let script: String = targets
        .iter()
        .map(|(name, host, port)| {
            format!(
                "if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /busybox timeout 5 /busybox nc -w 2 {host} {port} >/dev/null 2>&1; then echo '{name} reached'; else echo '{name} blocked'; fi; "
            )
        })
        .collect();
    let out = probe_from(&alice_container, &script).await;
    // The probe works: it reaches the tenant it sits in.
    assert!(out.contains("own-runtime reached"), "{out}");
    for (name, _, _) in &targets[1..] {
        assert!(
            out.contains(&format!("{name} blocked")),
            "{name} must be unreachable:\n{out}"
        );
    }
}
