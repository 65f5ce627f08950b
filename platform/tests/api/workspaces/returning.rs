//! Warm capacity for returning people, on the real engine: after a sign-out the person's
//! next container waits, made with their volume and hardened like any tenant's, and the
//! next sign-in gets that very container and finds the data; for someone active recently it
//! is started ahead and answers nothing unclaimed. A new access level's limits or a new
//! image replaces them, an expired one is removed, and a platform restart leaves none
//! orphaned.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{InspectContainerOptions, TagImageOptionsBuilder};
use reqwest::Method;
use serde_json::json;

use super::helpers::*;
use crate::helpers::{TestApp, body};

/// The person's next container as its row says: (container id, state), once it is in
/// `state`.
async fn next_in_state(app: &TestApp, person: &Person, state: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = app
            .query_one(&format!(
                "SELECT coalesce(max(container_id), '') FROM returning_runtimes \
                 WHERE user_id = '{}' AND state = '{state}'",
                person.id
            ))
            .await;
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} never had a next container {state}",
            person.email
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn inspect(id: &str) -> ContainerInspectResponse {
    docker()
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .expect("inspect")
}

/// The ids of this test's next containers the engine lists.
async fn next_on_the_engine(app: &TestApp) -> HashSet<String> {
    containers(app)
        .await
        .into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l.contains_key("websplat.returning"))
        })
        .filter_map(|c| c.id)
        .collect()
}

async fn until_gone_from_engine(app: &TestApp, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while next_on_the_engine(app).await.contains(id) {
        assert!(Instant::now() < deadline, "{id} is still on the engine");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The same hardening every tenant container has (see `lifecycle.rs`), and only the
/// person's own volume at `/data`.
fn assert_hardened(c: &ContainerInspectResponse, memory_mib: i64, volume: &str) {
    let config = c.config.clone().expect("config");
    assert_eq!(config.user.as_deref(), Some("65532:65532"), "non-root");
    let env = config.env.unwrap_or_default();
    assert!(
        !env.iter()
            .any(|e| e.starts_with("WEBSPLAT_TENANT_SECRET=")
                || e.starts_with("WEBSPLAT_TENANT_USER=")),
        "no identity baked in ahead: {:?}",
        env.iter().map(|e| e.split('=').next()).collect::<Vec<_>>()
    );
    let host = c.host_config.clone().expect("host config");
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert!(
        host.security_opt
            .unwrap_or_default()
            .contains(&"no-new-privileges:true".to_owned())
    );
    let tmp = &host.tmpfs.expect("tmpfs")["/tmp"];
    assert!(tmp.contains("noexec") && tmp.contains("nosuid"), "{tmp}");
    assert!(host.pids_limit.is_some_and(|p| p > 0 && p <= 1024));
    assert_eq!(host.memory, Some(memory_mib * 1024 * 1024));
    assert_eq!(host.memory_swap, host.memory, "no swap beyond memory");
    assert!(host.binds.unwrap_or_default().is_empty(), "no host paths");
    let mounts = c.mounts.clone().expect("mounts");
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(
        mounts[0].name.as_deref(),
        Some(volume),
        "the person's volume"
    );
    assert_eq!(mounts[0].destination.as_deref(), Some("/data"));
    assert!(
        !c.network_settings
            .clone()
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .keys()
            .any(|n| n == "bridge" || n == "host")
    );
}

async fn notes(app: &TestApp, person: &Person) -> serde_json::Value {
    let origin = person.open(app).await;
    let r = person
        .call(&origin, Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);
    body(r).await
}

async fn figures(app: &TestApp, operator: &str) -> serde_json::Value {
    let r = app
        .call(Method::GET, "/api/v1/pools/default", operator, None)
        .await;
    assert_eq!(r.status(), 200);
    body(r).await["figures"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_person_gets_the_container_made_for_them_and_finds_their_data() {
    let app = app_with_workspaces(&[]).await;
    let (_, _, operator) = app.user_with_role("op@example.com", Some("operator")).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/pools/default",
            &operator,
            Some(
                json!({"returning_ahead": true, "returning_warm": 2, "returning_ttl_seconds": 600}),
            ),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    alice.write_note(&origin, "remember the milk").await;
    let volume = app
        .query_one(&format!(
            "SELECT volume FROM workspaces WHERE user_id = '{}'",
            alice.id
        ))
        .await;

    // Sign-out: her next container is made at once, never started (one start this week
    // is not yet "active recently"), hardened like any other and bound to her volume.
    alice.sign_out(&app).await;
    let made = next_in_state(&app, &alice, "created").await;
    let c = inspect(&made).await;
    assert_eq!(c.state.as_ref().and_then(|s| s.running), Some(false));
    let labels = c.config.clone().and_then(|c| c.labels).expect("labels");
    assert_eq!(labels["websplat.user"], alice.id);
    assert!(!labels.contains_key("websplat.tenant"), "no tenant yet");
    assert!(labels.contains_key("websplat.spec") && labels.contains_key("websplat.image-digest"));
    assert_hardened(&c, 512, &volume);
    assert_eq!(figures(&app, &operator).await["pre_created"], 1);

    // The next sign-in gets that very container, and her note.
    alice.sign_in(&app).await;
    let w = alice.wait_for(&app, "ready").await;
    let tenant = w["tenant"].as_str().expect("tenant");
    let used = app
        .query_one(&format!(
            "SELECT container_id FROM tenants WHERE id = '{tenant}'"
        ))
        .await;
    assert_eq!(used, made, "no container made on her path");
    assert_eq!(
        notes(&app, &alice).await["items"][0]["text"],
        "remember the milk"
    );

    // Two starts this week: her next one is started ahead, and unclaimed it answers
    // nothing the platform did not sign.
    alice.sign_out(&app).await;
    let warm = next_in_state(&app, &alice, "ready").await;
    assert_ne!(warm, made, "a fresh container each time");
    let c = inspect(&warm).await;
    assert_eq!(c.state.as_ref().and_then(|s| s.running), Some(true));
    assert_hardened(&c, 512, &volume);
    let address = app
        .query_one(&format!(
            "SELECT address FROM returning_runtimes WHERE user_id = '{}'",
            alice.id
        ))
        .await;
    let r = reqwest::Client::new()
        .get(format!("http://{address}/api/v1/notes"))
        .send()
        .await
        .expect("unsigned");
    assert_eq!(r.status(), 401, "an unclaimed runtime serves no one");
    let f = figures(&app, &operator).await;
    assert_eq!(
        (f["warm_returning"].as_i64(), f["pre_created"].as_i64()),
        (Some(1), Some(0)),
        "{f}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_pool_warm_returning{pool="default"} 1"#),
        "{metrics}"
    );

    alice.sign_in(&app).await;
    let w = alice.wait_for(&app, "ready").await;
    let used = app
        .query_one(&format!(
            "SELECT container_id FROM tenants WHERE id = '{}'",
            w["tenant"].as_str().expect("tenant")
        ))
        .await;
    assert_eq!(used, warm, "the container started ahead for her");
    assert_eq!(
        notes(&app, &alice).await["items"][0]["text"],
        "remember the milk"
    );
    let r = alice
        .call(&alice.open(&app).await, Method::GET, "/api/v1/whoami", None)
        .await;
    assert_eq!(body(r).await["user"], alice.id, "claimed for her alone");
    let metrics = app.metrics().await;
    for kind in ["returning_made", "returning_warm"] {
        assert!(
            metrics.contains(&format!(
                r#"websplat_tenant_start_step_seconds_count{{kind="{kind}",step="claim"}} 1"#
            )),
            "{kind}: {metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_containers_follow_the_spec_expire_and_a_restart_leaves_none_orphaned() {
    let mut app = app_with_workspaces(&[]).await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/pools/default",
            &admin,
            Some(json!({"returning_ahead": true})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    for p in [&alice, &bob] {
        p.wait_for(&app, "ready").await;
        p.sign_out(&app).await;
    }
    let first = next_in_state(&app, &alice, "created").await;

    // The access level gets more memory: the next container is made again with it.
    give_free_640_mib(&app, &admin).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let remade = loop {
        let now = next_in_state(&app, &alice, "created").await;
        if now != first {
            break now;
        }
        assert!(Instant::now() < deadline, "never remade");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        inspect(&remade).await.host_config.and_then(|h| h.memory),
        Some(640 * 1024 * 1024)
    );
    until_gone_from_engine(&app, &first).await;

    // Alice's passes its time to live: it goes, her volume stays.
    app.sql(&format!(
        "UPDATE returning_runtimes SET expires_at = now() WHERE user_id = '{}'",
        alice.id
    ))
    .await;
    until_gone_from_engine(&app, &remade).await;
    assert_eq!(
        app.count(&format!(
            "returning_runtimes WHERE user_id = '{}'",
            alice.id
        ))
        .await,
        0
    );
    let volume = app
        .query_one(&format!(
            "SELECT volume FROM workspaces WHERE user_id = '{}'",
            alice.id
        ))
        .await;
    assert!(
        docker().inspect_volume(&volume).await.is_ok(),
        "the volume stays"
    );

    // Alice comes and goes again; then her next container loses its row (a platform that
    // died between the two), and the platform restarts on a new image tag.
    alice.sign_in(&app).await;
    alice.wait_for(&app, "ready").await;
    alice.sign_out(&app).await;
    let orphan = next_in_state(&app, &alice, "created").await;
    let bobs = next_in_state(&app, &bob, "created").await;
    app.sql(&format!(
        "DELETE FROM returning_runtimes WHERE user_id = '{}'",
        alice.id
    ))
    .await;
    let image = crate::support::tenant_image(platform::config::DEFAULT_TENANT_IMAGE);
    let tag = format!("returning-{}", uuid::Uuid::new_v4().simple());
    let repo = image.split(':').next().expect("repo").to_owned();
    docker()
        .tag_image(
            &image,
            Some(TagImageOptionsBuilder::new().repo(&repo).tag(&tag).build()),
        )
        .await
        .expect("tag");
    let retagged = format!("{repo}:{tag}");
    app.env.retain(|(k, _)| k != "WEBSPLAT_TENANT_IMAGE");
    app.env
        .push(("WEBSPLAT_TENANT_IMAGE".to_owned(), retagged.clone()));
    app.restart().await;

    // (A keeper stopped mid-pass holds the warm lock until it expires: up to two minutes.)
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let listed = next_on_the_engine(&app).await;
        let rows: HashSet<String> = app
            .query_one("SELECT coalesce(string_agg(container_id, ','), '') FROM returning_runtimes WHERE state = 'created'")
            .await
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let bob_now = next_in_state(&app, &bob, "created").await;
        if !listed.contains(&orphan) && bob_now != bobs && listed == rows && rows.len() == 1 {
            let c = inspect(&bob_now).await;
            assert_eq!(
                c.config.and_then(|c| c.image).as_deref(),
                Some(retagged.as_str())
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart: engine {listed:?}, rows {rows:?}, orphan {orphan}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The containers made from the extra tag go before it.
    for id in next_on_the_engine(&app).await {
        let _ = docker()
            .remove_container(
                &id,
                Some(
                    bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .build(),
                ),
            )
            .await;
    }
    let _ = docker()
        .remove_image(
            &retagged,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}
