//! A workspace's life: a sign-in starts one hardened container, sign-out stops it and the
//! next finds the notes; a killed runtime is replaced with its data; two browsers at once get
//! one container; progress streams over SSE until it is ready.

use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body};

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_starts_one_hardened_container_sign_out_stops_it_and_the_next_finds_the_notes() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let ready = alice.wait_for(&app, "ready").await;
    let url = ready["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with("http://alice-") && url.contains(".ws.localhost:"),
        "{url}"
    );

    // Exactly one container, labelled, hardened, with only the user's volume.
    let list = containers(&app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let first_id = list[0].id.clone().expect("id");
    let c = docker()
        .inspect_container(&first_id, None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    let config = c.config.expect("config");
    let labels = config.labels.expect("labels");
    assert_eq!(labels["websplat.user"], alice.id);
    assert_eq!(labels["websplat.pool"], "default");
    assert_eq!(labels["websplat.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        labels["websplat.tenant"],
        ready["tenant"].as_str().expect("tenant")
    );
    assert_eq!(config.user.as_deref(), Some("65532:65532"), "non-root");
    let host = c.host_config.expect("host config");
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.readonly_rootfs, Some(true));
    let security = host.security_opt.unwrap_or_default();
    assert!(
        security.contains(&"no-new-privileges:true".to_owned()),
        "{security:?}"
    );
    assert!(
        !security
            .iter()
            .any(|s| s.contains("seccomp") || s.contains("apparmor=unconfined")),
        "the default seccomp profile stays: {security:?}"
    );
    let tmp = &host.tmpfs.expect("tmpfs")["/tmp"];
    assert!(
        tmp.contains("noexec") && tmp.contains("nosuid") && tmp.contains("size="),
        "{tmp}"
    );
    assert!(host.pids_limit.is_some_and(|p| p > 0 && p <= 1024));
    // Its logs rotate (a chatty tenant cannot fill the disk) and its open files are capped.
    // (Values apart from common daemon defaults, so the platform's own setting shows.)
    let log = host.log_config.expect("log config");
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    let log = log.config.unwrap_or_default();
    assert_eq!(
        log.get("max-size").map(String::as_str),
        Some("5m"),
        "{log:?}"
    );
    assert_eq!(
        log.get("max-file").map(String::as_str),
        Some("2"),
        "{log:?}"
    );
    let nofile = host
        .ulimits
        .unwrap_or_default()
        .into_iter()
        .find(|u| u.name.as_deref() == Some("nofile"))
        .expect("a nofile limit");
    assert_eq!((nofile.soft, nofile.hard), (Some(4096), Some(4096)));
    let levels = app.state.clone();
    let free = {
        let mut conn = levels.db.get().await.expect("conn");
        platform::authz::access_levels::require(&mut conn, "free")
            .await
            .expect("free")
    };
    let memory = i64::from(free.memory_mib) * 1024 * 1024;
    assert_eq!(host.memory, Some(memory));
    assert_eq!(host.memory_swap, Some(memory), "no swap beyond memory");
    assert_eq!(
        host.nano_cpus,
        Some(i64::from(free.cpu_millicores) * 1_000_000)
    );
    assert!(host.binds.unwrap_or_default().is_empty(), "no host paths");
    let mounts = c.mounts.expect("mounts");
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let volume = mounts[0].name.clone().expect("volume name");
    assert_eq!(mounts[0].destination.as_deref(), Some("/data"));
    assert_eq!(
        mounts[0].typ.as_ref().map(|t| t.to_string()),
        Some("volume".to_owned())
    );
    assert_eq!(
        app.count(&format!(
            "workspaces WHERE volume = '{volume}' AND user_id = '{}'",
            alice.id
        ))
        .await,
        1
    );
    assert!(
        !c.network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .keys()
            .any(|n| n == "bridge" || n == "host")
    );

    // The workspace origin, after the handoff, serves the user's runtime.
    let origin = alice.open(&app).await;
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/whoami", None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        body(r).await["user"],
        alice.id.as_str(),
        "the runtime verified who is asking"
    );
    alice.write_note(&origin, "remember the milk").await;

    // The keeper's periodic round asks every running runtime for its storage.
    let asked = app.state.tenants.collect_all_usage().await.expect("usage");
    assert_eq!(asked, 1);
    let w = alice.workspace(&app).await;
    assert!(
        w["usage"]["used_bytes"].as_i64().is_some_and(|b| b > 0),
        "{w}"
    );

    // Sign-out stops it: no container left running, the volume stays.
    alice.sign_out(&app).await;
    let stopped = alice_status_after_sign_out(&app, &alice).await;
    assert_eq!(stopped["state"], "stopped");
    assert!(running(&containers(&app).await).is_empty());
    assert!(
        docker().inspect_volume(&volume).await.is_ok(),
        "the volume stays"
    );

    // The next sign-in makes a new container, which finds the notes.
    alice.sign_in(&app).await;
    let w = alice.wait_for(&app, "ready").await;
    // The stopped runtime reported its storage as it stopped.
    let used = w["usage"]["used_bytes"].as_i64().expect("usage reported");
    assert!(used > 0, "{w}");
    assert_eq!(
        w["usage"]["quota_bytes"],
        i64::from(free.storage_mib) * 1024 * 1024
    );
    let list = containers(&app).await;
    assert_eq!(running(&list).len(), 1);
    assert_ne!(
        list[0].id.as_deref(),
        Some(first_id.as_str()),
        "never reused"
    );
    let origin = alice.open(&app).await;
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);
    let notes = body(r).await;
    assert_eq!(notes["items"][0]["text"], "remember the milk", "{notes}");

    // The dashboard's metrics: a spawn observed, tenants by state.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_tenant_spawn_duration_seconds_count{outcome="ready"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"websplat_tenants{state="ready"} 1"#));
    assert!(metrics.contains("websplat_proxy_request_duration_seconds_count"));
}

/// Sign-out stops the workspace in the background; the user (signed out) asks through
/// PostgreSQL what became of it.
async fn alice_status_after_sign_out(app: &TestApp, alice: &Person) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = app
            .query_one(&format!(
                "SELECT state FROM tenants WHERE user_id = '{}' ORDER BY requested_at DESC LIMIT 1",
                alice.id
            ))
            .await;
        if state == "stopped" {
            return json!({"state": state});
        }
        assert!(Instant::now() < deadline, "still {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runtime_is_replaced_on_the_next_request_with_its_data() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    alice.write_note(&origin, "survives a crash").await;
    // And a site: the workspace's own data, beside the note.
    let r = alice
        .call(
            &origin,
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "Survivor"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let project = body(r).await["id"].as_str().expect("id").to_owned();
    let before = containers(&app).await[0].id.clone().expect("id");
    docker()
        .kill_container(
            &before,
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("docker kill");
    let failed = alice.wait_for(&app, "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("killed") || r.contains("exit code")),
        "{failed}"
    );
    // The next request starts a new container, which has the data.
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["items"][0]["text"], "survives a crash");
    let r = alice
        .call(
            &origin,
            reqwest::Method::GET,
            &format!("/api/v1/projects/{project}"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["name"], "Survivor");
    let after = containers(&app).await;
    assert_eq!(after.len(), 1, "the dead one was removed: {after:?}");
    assert_ne!(after[0].id.as_deref(), Some(before.as_str()));
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_tenant_failures_total{reason="crashed"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_signing_in_at_once_get_one_container() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let first = containers(&app).await[0].id.clone().expect("id");
    let browsers: Vec<Person> = (0..2)
        .map(|_| Person {
            client: browser(),
            email: alice.email.clone(),
            id: alice.id.clone(),
        })
        .collect();
    futures_util::future::join_all(browsers.iter().map(|b| b.sign_in(&app))).await;
    browsers[0].wait_for(&app, "ready").await;
    // Let a straggling spawn show itself if there were one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let list = containers(&app).await;
    let live = running(&list);
    assert_eq!(live.len(), 1, "{list:?}");
    assert_ne!(
        live[0].id.as_deref(),
        Some(first.as_str()),
        "a fresh one for the new login"
    );
    assert_eq!(
        app.count(&format!(
            "tenants WHERE user_id = '{}' AND state IN ('requested','creating','starting','ready')",
            alice.id
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_over_sse_until_ready() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let r = alice.post(&app, "/api/v1/workspace/start").await;
    assert_eq!(r.status(), 202);
    let r = alice
        .client
        .get(app.url("/api/v1/workspace/events"))
        .send()
        .await
        .expect("events");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(90), r.text())
        .await
        .expect("the stream ends at ready")
        .expect("text");
    let states: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["state"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(states.last().map(String::as_str), Some("ready"), "{text}");
    assert!(states.iter().any(|s| s == "starting"), "{states:?}");
}
