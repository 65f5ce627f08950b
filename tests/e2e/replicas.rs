//! Two platform processes on one PostgreSQL and one Redis, as replicas behind a load
//! balancer: a policy change made through one is enforced by the other within a second;
//! signing out through one closes the workspace origin on the other at once, although each
//! holds routes and workspace sessions in its own memory.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Platform;
use crate::support::{TestDb, browser_client, redis_prefix};

const PASSWORD: &str = "correct horse battery staple";

/// Polls `url` with `token` until it answers `status`; returns how long that took.
async fn until_status(url: &str, token: &str, status: u16, limit: Duration) -> Duration {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let got = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16();
        if got == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{url} still answers {got}, not {status}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn register(platform: &Platform, email: &str) -> (Value, reqwest::Client, String) {
    let client = browser_client();
    let r = client
        .post(platform.url("/api/v1/auth/register"))
        .header("Origin", &platform.url)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 202, "register {email}");
    let r = client
        .post(platform.url("/api/v1/auth/login"))
        .header("Origin", &platform.url)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 200, "sign in {email}");
    let me: Value = r.json().await.expect("json");
    let r = client
        .post(platform.url("/api/v1/tokens"))
        .header("Origin", &platform.url)
        .json(&json!({"name": "replicas"}))
        .send()
        .await
        .expect("token");
    let token: Value = r.json().await.expect("json");
    (
        me["user"].clone(),
        client,
        token["token"].as_str().expect("token").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_granted_through_one_replica_is_enforced_by_the_other_within_a_second() {
    let db = TestDb::create().await;
    let shared = vec![("WEBSPLAT_REDIS_KEY_PREFIX".to_owned(), redis_prefix())];
    let one = Platform::start(&db, shared.clone()).await;
    let two = Platform::start(&db, shared).await;

    let (_, admin_browser, _) = register(&one, "chief@example.com").await;
    let said = one
        .cli(&["admin", "grant", "chief@example.com", "admin"])
        .await;
    assert!(said.contains("now holds the role"), "{said}");
    let (member, _, member_token) = register(&two, "pat@example.com").await;
    let fleet_on_two = two.url("/api/v1/admin/fleet");
    until_status(&fleet_on_two, &member_token, 403, Duration::from_secs(1)).await;

    // The admin (signed in on replica one) makes the member an operator there…
    let id = member["id"].as_str().expect("id");
    let r = admin_browser
        .put(one.url(&format!("/api/v1/admin/users/{id}/roles/operator")))
        .header("Origin", &one.url)
        .send()
        .await
        .expect("grant");
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
    // …and replica two lets the member in within a second, having served nothing between.
    let took = until_status(&fleet_on_two, &member_token, 200, Duration::from_secs(1)).await;
    eprintln!("replica two applied the grant after {took:?}");

    // The other way round: removed through two, refused by one.
    let admin_token = {
        let r = admin_browser
            .post(one.url("/api/v1/tokens"))
            .header("Origin", &one.url)
            .json(&json!({"name": "admin"}))
            .send()
            .await
            .expect("token");
        let v: Value = r.json().await.expect("json");
        v["token"].as_str().expect("token").to_owned()
    };
    let r = reqwest::Client::new()
        .delete(two.url(&format!("/api/v1/admin/users/{id}/roles/operator")))
        .bearer_auth(&admin_token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 204);
    until_status(
        &one.url("/metrics"),
        &member_token,
        403,
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_signing_one_user_in_at_once_start_one_container() {
    let db = TestDb::create().await;
    let shared = vec![
        ("WEBSPLAT_REDIS_KEY_PREFIX".to_owned(), redis_prefix()),
        (
            "WEBSPLAT_DEPLOYMENT".to_owned(),
            crate::support::deployment(),
        ),
        (
            "WEBSPLAT_WORKSPACE_START_ON_SIGN_IN".to_owned(),
            "true".to_owned(),
        ),
    ];
    let one = Platform::start(&db, shared.clone()).await;
    let two = Platform::start(&db, shared).await;
    let (_, first, _) = register(&one, "sam@example.com").await;
    crate::wait_for_workspace(&one, &first).await;

    // Two browsers sign in at the same moment, one on each replica.
    let (a, b) = (browser_client(), browser_client());
    let sign_in = |platform: &Platform, client: &reqwest::Client| {
        client
            .post(platform.url("/api/v1/auth/login"))
            .header("Origin", &platform.url)
            .json(&json!({"email": "sam@example.com", "password": PASSWORD}))
            .send()
    };
    let (ra, rb) = tokio::join!(sign_in(&one, &a), sign_in(&two, &b));
    assert_eq!(ra.expect("login").status(), 200);
    assert_eq!(rb.expect("login").status(), 200);
    crate::wait_for_workspace(&two, &b).await;
    // A straggling second spawn would show itself by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = crate::workspaces::containers(&one, false).len();
    assert_eq!(
        running, 1,
        "one container for one user, whichever replica spawned it"
    );
}

/// Both replicas serve Alice's workspace origin from their own memory once they have seen
/// it; signing out through one must end her workspace session on the other at once (the
/// next request, no waiting), and likewise a stop must not leave either relaying to a
/// container that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_through_one_replica_closes_the_workspace_on_the_other_at_once() {
    let db = TestDb::create().await;
    let shared = vec![
        ("WEBSPLAT_REDIS_KEY_PREFIX".to_owned(), redis_prefix()),
        (
            "WEBSPLAT_DEPLOYMENT".to_owned(),
            crate::support::deployment(),
        ),
    ];
    let one = Platform::start(&db, shared.clone()).await;
    let two = Platform::start(&db, shared).await;
    let http = crate::support::workspace_browser();
    crate::register(&one, &http, "alice@example.com", "Alice").await;
    let r = http
        .post(one.url("/api/v1/workspace/start"))
        .header("Origin", &one.url)
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 202);
    crate::wait_for_workspace(&one, &http).await;
    let handoff = crate::support::handoff_link(&http, one.url("/workspace/open")).await;
    let r = http.get(&handoff).send().await.expect("handoff");
    assert_eq!(r.status(), 303);
    let url = reqwest::Url::parse(&handoff).expect("url");
    let host = url.host_str().expect("host").to_owned();
    // The cookie is the host's (ports share cookies): both replicas' origins get it.
    let origins = [
        format!("http://{host}:{}", one.port),
        format!("http://{host}:{}", two.port),
    ];
    let notes = |origin: &str| {
        http.get(format!("{origin}/api/v1/notes"))
            .header("Accept", "application/json")
            .send()
    };
    for origin in &origins {
        for _ in 0..3 {
            let r = notes(origin).await.expect("notes");
            assert_eq!(r.status(), 200, "{origin} serves Alice's workspace");
        }
    }
    let r = http
        .post(one.url("/auth/logout"))
        .header("Origin", &one.url)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 204);
    for origin in origins.iter().rev() {
        let r = notes(origin).await.expect("notes");
        assert_eq!(
            r.status(),
            401,
            "{origin} still let a signed-out browser into the workspace"
        );
    }
}
