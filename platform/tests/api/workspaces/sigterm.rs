//! The engine's stop path: `docker stop` asks the runtime to stop (SIGTERM), and the runtime
//! gives what is in flight a moment, closes its database and exits by itself — long before
//! the engine would kill it — with the workspace's data intact.

use std::collections::HashMap;

use bollard::query_parameters::{EventsOptionsBuilder, StopContainerOptions};
use futures_util::StreamExt;

use super::helpers::*;
use crate::helpers::body;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_stop_ends_a_runtime_with_a_stream_open_by_itself_and_its_data_is_intact() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    assert_eq!(
        alice.post(&app, "/api/v1/workspace/start").await.status(),
        202
    );
    alice.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    alice.write_note(&origin, "kept through a stop").await;
    let id = containers_of(&app, &alice.id).await[0]
        .id
        .clone()
        .expect("id");

    // The engine's own record of how it ended (the platform removes the container soon
    // after it dies, so the exit code is read from the engine's event).
    let since = (chrono::Utc::now().timestamp() - 1).to_string();
    let filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        ("container".to_owned(), vec![id.clone()]),
        ("event".to_owned(), vec!["die".to_owned()]),
    ]);
    let mut deaths = docker().events(Some(
        EventsOptionsBuilder::new()
            .since(&since)
            .filters(&filters)
            .build(),
    ));
    // A request that never ends by itself is in flight: the workspace's job stream, open
    // through the proxy as the workspace's page keeps it.
    let stream = alice
        .client
        .get(format!("{origin}/api/v1/jobs/events"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("open the job stream");
    assert_eq!(stream.status(), 200);
    // With ten seconds' grace, a runtime that waited for that stream (or ignored SIGTERM)
    // would be killed by the engine (exit code 137); ours gives requests in flight two
    // seconds, closes its database and exits by itself.
    docker()
        .stop_container(
            &id,
            Some(StopContainerOptions {
                t: Some(10),
                ..Default::default()
            }),
        )
        .await
        .expect("docker stop");
    drop(stream);
    let death = deaths
        .next()
        .await
        .expect("a die event")
        .expect("the event stream");
    let attributes = death.actor.and_then(|a| a.attributes).unwrap_or_default();
    assert_eq!(
        attributes.get("exitCode").map(String::as_str),
        Some("0"),
        "the runtime exited by itself on SIGTERM: {attributes:?}"
    );

    // The platform saw it go (and dropped its route: its address may already be another
    // tenant's)…
    let w = alice.wait_for(&app, "failed").await;
    assert_eq!(
        w["reason"],
        "it stopped unexpectedly while running (exit code 0)"
    );
    // …and its data is intact: the next runtime (started by the next request) finds the note.
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);
    let notes = body(r).await;
    assert!(notes.to_string().contains("kept through a stop"), "{notes}");
}
