//! Limits: refusals in words, idle workspaces stopped, the access level sizing the container
//! and its quota, the concurrent spawn limit (a queue), and a runtime out of memory failed in words and
//! brought back with its data.

use bollard::query_parameters::InspectContainerOptions;
use serde_json::json;

use crate::helpers::body;

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_with_a_sentence_and_idle_workspaces_stop() {
    let app = app_with_workspaces(&[
        ("WEBSPLAT_MAX_RUNNING_TENANTS", "1"),
        ("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false"),
    ])
    .await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    let r = alice.post(&app, "/api/v1/workspace/start").await;
    assert_eq!(r.status(), 202);
    alice.wait_for(&app, "ready").await;
    let r = bob.post(&app, "/api/v1/workspace/start").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let e = body(r).await;
    assert_eq!(e["error"]["code"], "at_capacity");
    assert!(
        e["error"]["message"]
            .as_str()
            .expect("message")
            .contains("try again in a few minutes"),
        "{e}"
    );
    // Through the origin, Bob reads the same sentence on a page.
    let origin = bob.open(&app).await;
    let r = bob
        .client
        .get(format!("{origin}/"))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 429);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("try again in a few minutes")
    );

    // Idle: Alice's last traffic and start an hour ago, past the free level's timeout.
    app.sql(&format!(
        "UPDATE tenants SET ready_at = now() - interval '2 hours' WHERE user_id = '{}'",
        alice.id
    ))
    .await;
    let stopped = app.state.tenants.reap_idle().await.expect("reap");
    assert_eq!(stopped, 1);
    let w = alice.wait_for(&app, "stopped").await;
    assert!(
        w["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("idle for")),
        "{w}"
    );
    assert!(running(&containers(&app).await).is_empty());
    // Now there is room for Bob.
    let r = bob.post(&app, "/api/v1/workspace/start").await;
    assert_eq!(r.status(), 202);
    bob.wait_for(&app, "ready").await;
    // Explicit stop from the API.
    let r = bob.post(&app, "/api/v1/workspace/stop").await;
    assert_eq!(r.status(), 202);
    bob.wait_for(&app, "stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_level_sizes_the_container_and_its_quota_refusals_reach_the_browser() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    let alice = alice_on_a_level(&app, "tiny", 256, 16, 32).await;
    let c = docker()
        .inspect_container(
            containers_of(&app, &alice.id).await[0]
                .id
                .as_deref()
                .expect("id"),
            None::<InspectContainerOptions>,
        )
        .await
        .expect("inspect");
    let host = c.host_config.expect("host config");
    assert_eq!(host.memory, Some(256 * 1024 * 1024));
    assert_eq!(host.nano_cpus, Some(250_000_000));
    assert_eq!(
        c.config.and_then(|c| c.labels).expect("labels")["websplat.pool"],
        "default"
    );

    // 20 MiB into a 16 MiB workspace: the runtime's 413 reaches the browser, in words.
    let origin = alice.open(&app).await;
    let r = alice
        .client
        .post(format!("{origin}/api/v1/uploads"))
        .header("Origin", &origin)
        .header("Content-Type", "application/octet-stream")
        .body(vec![7u8; 20 * 1024 * 1024])
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 413);
    let e = body(r).await;
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("quota") || m.contains("storage")),
        "{e}"
    );
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/uploads", None)
        .await;
    assert_eq!(body(r).await["items"], json!([]), "nothing kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_levels_largest_upload_reaches_the_runtime_for_staged_uploads_too() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    let alice = alice_on_a_level(&app, "small-uploads", 128, 64, 2).await;
    let origin = alice.open(&app).await;
    // 3 MiB fits the 64 MiB workspace but not the level's 2 MiB uploads (not the 1 GiB
    // default): refused for what it is, with nothing kept.
    let r = alice
        .client
        .post(format!("{origin}/api/v1/uploads"))
        .header("Origin", &origin)
        .header("Content-Type", "application/octet-stream")
        .body(vec![7u8; 3 * 1024 * 1024])
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 413);
    let e = body(r).await;
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 2.0 MiB")),
        "{e}"
    );
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/uploads", None)
        .await;
    assert_eq!(body(r).await["items"], json!([]), "nothing kept");
    // Within it, an upload is stored.
    let r = alice
        .client
        .post(format!("{origin}/api/v1/uploads"))
        .header("Origin", &origin)
        .header("Content-Type", "application/octet-stream")
        .body(vec![7u8; 1024 * 1024])
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_beyond_the_concurrent_limit_wait_their_turn() {
    let app = app_with_workspaces(&[
        ("WEBSPLAT_MAX_CONCURRENT_SPAWNS", "1"),
        ("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false"),
    ])
    .await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    let (a, b) = tokio::join!(
        alice.post(&app, "/api/v1/workspace/start"),
        bob.post(&app, "/api/v1/workspace/start")
    );
    // Both are accepted: one starts, the other waits its turn in the queue and starts by
    // itself once the first is up.
    let (mut starting, mut queued) = (Vec::new(), Vec::new());
    for (person, r) in [(&alice, a), (&bob, b)] {
        assert_eq!(r.status(), 202);
        let w = body(r).await;
        if w["state"] == "queued" {
            assert_eq!(w["ahead"], 0, "{w}");
            queued.push(person);
        } else {
            starting.push(person);
        }
    }
    assert_eq!(
        (starting.len(), queued.len()),
        (1, 1),
        "one starts, one waits"
    );
    starting[0].wait_for(&app, "ready").await;
    queued[0].wait_for(&app, "ready").await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_pool_queue_wait_seconds_count{pool="default"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_out_of_memory_fails_in_words_and_comes_back_with_its_data() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    // The least memory a level with 8 MiB uploads may have.
    let alice = alice_on_a_level(&app, "lean", 64, 1024, 8).await;
    let origin = alice.open(&app).await;
    alice.write_note(&origin, "written before the fall").await;
    let before = containers_of(&app, &alice.id).await[0]
        .id
        .clone()
        .expect("id");

    // The host squeezes the container below what its level promised (as an operator's
    // `docker update` or a kernel under pressure may), then an upload the level allows
    // needs more than is left: the kernel kills the runtime.
    docker()
        .update_container(
            &before,
            bollard::models::ContainerUpdateBody {
                memory: Some(20 * 1024 * 1024),
                memory_swap: Some(20 * 1024 * 1024),
                ..Default::default()
            },
        )
        .await
        .expect("docker update");
    let boundary = "websplat-oom-test";
    let mut form = Vec::new();
    for n in 0..4 {
        form.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; \
                 filename=\"part-{n}.txt\"\r\nContent-Type: text/plain\r\n\r\n"
            )
            .into_bytes(),
        );
        form.extend(std::iter::repeat_n(b'a', 8 * 1024 * 1024 - 1024));
        form.extend(b"\r\n");
    }
    form.extend(format!("--{boundary}--\r\n").into_bytes());
    let sent = alice
        .client
        .post(format!("{origin}/api/v1/documents"))
        .header("Origin", &origin)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await;
    if let Ok(r) = &sent {
        assert!(
            r.status().is_server_error(),
            "the upload cannot succeed: {r:?}"
        );
    }

    let failed = alice.wait_for(&app, "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ran out of memory")),
        "{failed}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_tenant_failures_total{reason="oom"} 1"#),
        "{metrics}"
    );

    // The next request starts a new container, with the level's memory and the note.
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["items"][0]["text"], "written before the fall");
    let after = containers_of(&app, &alice.id).await;
    assert_eq!(after.len(), 1, "the dead one was removed: {after:?}");
    let now = after[0].id.as_deref().expect("id");
    assert_ne!(now, before);
    let c = docker()
        .inspect_container(now, None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    assert_eq!(c.host_config.and_then(|h| h.memory), Some(64 * 1024 * 1024));
}
