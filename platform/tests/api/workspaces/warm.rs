//! Warm runtimes for first sign-ins, on the real engine: runtimes started ahead and left
//! unclaimed are taken by first sign-ins (no container made on their path), each bound to
//! its own user only; an unclaimed runtime answers nothing but a valid claim, and only once;
//! the pool refills itself.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use super::helpers::*;
use crate::helpers::{TestApp, body};

/// The ready warm runtimes: (id, container id, address).
async fn ready_warm(app: &TestApp) -> Vec<(String, String, String)> {
    let rows = app
        .query_one(
            "SELECT string_agg(id::text || ' ' || container_id || ' ' || address, ',' ORDER BY created_at) \
             FROM warm_runtimes WHERE state = 'ready'",
        )
        .await;
    rows.split(',')
        .filter(|r| !r.is_empty())
        .map(|r| {
            let mut parts = r.split(' ').map(str::to_owned);
            (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            )
        })
        .collect()
}

/// Waits until `n` warm runtimes are ready, none of them in `not`; returns them.
async fn until_warm(
    app: &TestApp,
    n: usize,
    not: &HashSet<String>,
) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let warm = ready_warm(app).await;
        if warm.len() == n && warm.iter().all(|(_, c, _)| !not.contains(c)) {
            return warm;
        }
        assert!(
            Instant::now() < deadline,
            "never {n} warm runtimes: {warm:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sign_ins_claim_warm_runtimes_bound_to_them_alone_and_the_pool_refills() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    let (_, _, operator) = app.user_with_role("op@example.com", Some("operator")).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/pools/default",
            &operator,
            Some(json!({"warm_new": 3})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let warm = until_warm(&app, 3, &HashSet::new()).await;
    let warm_containers: HashSet<String> = warm.iter().map(|(_, c, _)| c.clone()).collect();

    // Three first sign-ins at once: each gets one of them, already running.
    let people = [
        Person::sign_up(&app, "ann@example.com").await,
        Person::sign_up(&app, "ben@example.com").await,
        Person::sign_up(&app, "cat@example.com").await,
    ];
    let (a, b, c) = tokio::join!(
        people[0].post(&app, "/api/v1/workspace/start"),
        people[1].post(&app, "/api/v1/workspace/start"),
        people[2].post(&app, "/api/v1/workspace/start")
    );
    for r in [a, b, c] {
        assert_eq!(r.status(), 202);
    }
    let mut claimed = HashSet::new();
    for person in &people {
        person.wait_for(&app, "ready").await;
        let container = app
            .query_one(&format!(
                "SELECT container_id FROM tenants WHERE user_id = '{}'",
                person.id
            ))
            .await;
        assert!(
            warm_containers.contains(&container),
            "{} got a container made on their path",
            person.email
        );
        claimed.insert(container);
        let origin = person.open(&app).await;
        let r = person
            .call(&origin, Method::GET, "/api/v1/whoami", None)
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(body(r).await["user"], person.id, "bound to its user only");
        person.write_note(&origin, "mine").await;
    }
    assert_eq!(claimed.len(), 3, "three sign-ins, three runtimes");

    // The pool refills itself, with new runtimes.
    let fresh = until_warm(&app, 3, &claimed).await;
    let (warm_id, _, address) = fresh[0].clone();

    // An unclaimed runtime answers nothing: not unsigned, not signed with another key…
    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 401);
    let someone = uuid::Uuid::new_v4();
    let forged = websplat_contract::identity::sign(
        b"not the claim key, but long enough",
        someone,
        chrono::Utc::now().timestamp(),
        "POST",
        "/_websplat/claim",
    );
    let r = http
        .post(format!("http://{address}/_websplat/claim"))
        .header("x-websplat-identity", &forged)
        .send()
        .await
        .expect("claim");
    assert_eq!(r.status(), 401, "a claim the platform did not sign");
    // …but one valid claim, once.
    let key = app
        .state
        .tenants
        .keys
        .claim_key(warm_id.parse().expect("uuid"));
    let claim = || {
        websplat_contract::identity::sign(
            secrecy::ExposeSecret::expose_secret(&key).as_bytes(),
            someone,
            chrono::Utc::now().timestamp(),
            "POST",
            "/_websplat/claim",
        )
    };
    let r = http
        .post(format!("http://{address}/_websplat/claim"))
        .header("x-websplat-identity", claim())
        .send()
        .await
        .expect("claim");
    assert_eq!(r.status(), 204);
    let r = http
        .post(format!("http://{address}/_websplat/claim"))
        .header("x-websplat-identity", claim())
        .send()
        .await
        .expect("claim again");
    assert_eq!(r.status(), 409, "a runtime is claimed once");
}

/// The ids of this test's warm containers the engine lists.
async fn warm_on_the_engine(app: &TestApp) -> HashSet<String> {
    containers(app)
        .await
        .into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l.contains_key("websplat.warm"))
        })
        .filter_map(|c| c.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_runtimes_are_remade_when_they_expire_or_their_access_level_changes() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/pools/default",
            &admin,
            Some(json!({"warm_new": 2})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let first = until_warm(&app, 2, &HashSet::new()).await;
    let first_containers: HashSet<String> = first.iter().map(|(_, c, _)| c.clone()).collect();

    // One passes its time to live: it goes (from the engine too) and another is made.
    app.sql(&format!(
        "UPDATE warm_runtimes SET expires_at = now() WHERE id = '{}'",
        first[0].0
    ))
    .await;
    let expired: HashSet<String> = HashSet::from([first[0].1.clone()]);
    let second = until_warm(&app, 2, &expired).await;
    assert!(!second.iter().any(|(_, c, _)| *c == first[0].1));
    let deadline = Instant::now() + Duration::from_secs(30);
    while warm_on_the_engine(&app).await.contains(&first[0].1) {
        assert!(
            Instant::now() < deadline,
            "the expired runtime is still on the engine"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The access level new users get is given more memory: every warm runtime is remade.
    give_free_640_mib(&app, &admin).await;
    let before: HashSet<String> = second
        .iter()
        .map(|(_, c, _)| c.clone())
        .chain(first_containers)
        .collect();
    let third = until_warm(&app, 2, &before).await;
    for (_, container, _) in &third {
        let c = docker()
            .inspect_container(
                container,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .expect("inspect");
        assert_eq!(
            c.host_config.and_then(|h| h.memory),
            Some(640 * 1024 * 1024),
            "made with the level's new memory"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = warm_on_the_engine(&app).await;
        let made: HashSet<String> = third.iter().map(|(_, c, _)| c.clone()).collect();
        if listed == made {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stale warm runtimes left: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
