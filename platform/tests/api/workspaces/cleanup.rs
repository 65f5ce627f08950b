//! What is left behind: the reconciler removes orphan containers and ends ghost tenants;
//! deleting a user removes their containers and, once confirmed, their volume.

use std::collections::HashMap;

use bollard::query_parameters::InspectContainerOptions;

use crate::helpers::body;

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_removes_orphans_and_ends_ghosts() {
    let app = app_with_workspaces(&[("WEBSPLAT_TENANT_RECONCILE_INTERVAL", "1h")]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    // An orphan: a container of this deployment no tenant row knows.
    let orphan = docker()
        .create_container(
            Some(bollard::query_parameters::CreateContainerOptionsBuilder::new().build()),
            bollard::models::ContainerCreateBody {
                image: Some(crate::support::tenant_image(
                    platform::config::DEFAULT_TENANT_IMAGE,
                )),
                labels: Some(HashMap::from([
                    ("websplat.deployment".to_owned(), deployment(&app)),
                    (
                        "websplat.tenant".to_owned(),
                        uuid::Uuid::new_v4().to_string(),
                    ),
                ])),
                ..Default::default()
            },
        )
        .await
        .expect("create an orphan")
        .id;
    // A ghost: a row that says ready, whose container is gone.
    let bob = Person::sign_up(&app, "bob@example.com").await;
    bob.wait_for(&app, "ready").await;
    let bobs = containers(&app)
        .await
        .into_iter()
        .find(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l["websplat.user"] == bob.id)
        })
        .and_then(|c| c.id)
        .expect("bob's container");
    // Removed behind the platform's back, with its events unseen: stop the keeper first.
    app.sql(&format!(
        "UPDATE tenants SET container_id = 'gone-{bobs}' WHERE container_id = '{bobs}'"
    ))
    .await;
    docker()
        .remove_container(
            &bobs,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .expect("remove");

    let done = app.state.tenants.reconcile().await.expect("reconcile");
    assert_eq!(done.orphans_removed, 1, "{done:?}");
    assert_eq!(done.ghosts_ended, 1, "{done:?}");
    assert!(
        docker()
            .inspect_container(&orphan, None::<InspectContainerOptions>)
            .await
            .is_err()
    );
    let w = bob.workspace(&app).await;
    assert_eq!(w["state"], "failed", "{w}");
    // Alice's, which agrees, is untouched; a second run finds nothing to do.
    assert_eq!(alice.workspace(&app).await["state"], "ready");
    let again = app.state.tenants.reconcile().await.expect("reconcile");
    assert_eq!(again, platform::tenants::keeper::Reconciled::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_removes_their_containers_and_on_confirmation_their_volume() {
    let app = app_with_workspaces(&[]).await;
    let (_, _, admin) = app.user_with_role("admin@example.com", Some("admin")).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let volume = app
        .query_one(&format!(
            "SELECT volume FROM workspaces WHERE user_id = '{}'",
            alice.id
        ))
        .await;
    assert!(docker().inspect_volume(&volume).await.is_ok());
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/users/{}?delete_volume=true", alice.id),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let done = body(r).await;
    assert_eq!(done["volume_deleted"], true);
    assert!(containers_of(&app, &alice.id).await.is_empty());
    assert!(
        docker().inspect_volume(&volume).await.is_err(),
        "volume deleted"
    );
    assert_eq!(
        app.count(&format!("users WHERE id = '{}'", alice.id)).await,
        0
    );
    assert_eq!(
        alice
            .client
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .expect("me")
            .status(),
        401
    );
    let records = app.audit(&admin, "action=user.delete").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["detail"]["volume"], volume.as_str());

    // Without confirmation the volume stays.
    let bob = Person::sign_up(&app, "bob@example.com").await;
    bob.wait_for(&app, "ready").await;
    let volume = app
        .query_one(&format!(
            "SELECT volume FROM workspaces WHERE user_id = '{}'",
            bob.id
        ))
        .await;
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/users/{}", bob.id),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["volume_deleted"], false);
    assert!(containers_of(&app, &bob.id).await.is_empty());
    assert!(docker().inspect_volume(&volume).await.is_ok(), "kept");
    docker()
        .remove_volume(
            &volume,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .expect("clean up");
}
