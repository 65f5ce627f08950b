//! Secrets at rest (issue #15, point 9): a tenant's secret is derived from the platform's
//! key, never kept in Redis; its route holds none and expires with it (renewed while it
//! runs, gone when it stops); the test Redis itself asks for a password.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::helpers::TestApp;

use super::helpers::*;

/// Every string value under this test's Redis prefix, with its key and time to live.
async fn redis_strings(app: &TestApp) -> Vec<(String, String, i64)> {
    let pattern = format!("{}*", app.state.kv.key(""));
    let keys: Vec<String> = app
        .state
        .kv
        .run(async move |c| redis::cmd("KEYS").arg(&pattern).query_async(c).await)
        .await
        .expect("keys");
    let mut out = Vec::new();
    for key in keys {
        let k = key.clone();
        let (kind, ttl): (String, i64) = app
            .state
            .kv
            .run(async move |c| {
                redis::pipe()
                    .cmd("TYPE")
                    .arg(&k)
                    .cmd("TTL")
                    .arg(&k)
                    .query_async(c)
                    .await
            })
            .await
            .expect("type");
        if kind != "string" {
            continue;
        }
        let k = key.clone();
        let value: Option<String> = app
            .state
            .kv
            .run(async move |c| redis::cmd("GET").arg(&k).query_async(c).await)
            .await
            .expect("get");
        out.push((key, value.unwrap_or_default(), ttl));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_no_tenant_secret_and_a_route_lives_no_longer_than_its_tenant() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let r = alice.post(&app, "/api/v1/workspace/start").await;
    assert_eq!(r.status(), 202);
    let ready = alice.wait_for(&app, "ready").await;
    // The workspace answers through the proxy, signed with the derived secret.
    let origin = alice.open(&app).await;
    alice
        .write_note(&origin, "signed with a derived secret")
        .await;

    let tenant = platform::tenants::TenantId(
        ready["tenant"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("tenant"),
    );
    let user = platform::users::UserId(alice.id.parse().expect("user id"));
    let secret = app.state.tenants.keys.secret(tenant, user);
    let claim_key = app.state.tenants.keys.claim_key(tenant.0);
    let strings = redis_strings(&app).await;
    for (key, value, _) in &strings {
        assert!(
            !value.contains(secret.expose_secret()) && !value.contains(claim_key.expose_secret()),
            "{key} holds the tenant's secret"
        );
        assert!(!key.contains("warm-claim"), "{key}: a claim key in Redis");
    }
    let (route_key, route, ttl) = strings
        .iter()
        .find(|(k, _, _)| k.contains("tenant-route:"))
        .expect("a route");
    assert!(!route.contains("secret"), "{route}");
    assert!(
        (1..=900).contains(ttl),
        "the route expires unless renewed: {ttl}"
    );

    // While the tenant runs, the reaper's renewal gives its route its full life again.
    let k = route_key.clone();
    app.state
        .kv
        .run(async move |c| {
            redis::cmd("EXPIRE")
                .arg(&k)
                .arg(5)
                .query_async::<()>(c)
                .await
        })
        .await
        .expect("expire");
    assert_eq!(app.state.tenants.renew_routes().await.expect("renew"), 1);
    let k = route_key.clone();
    let ttl: i64 = app
        .state
        .kv
        .run(async move |c| redis::cmd("TTL").arg(&k).query_async(c).await)
        .await
        .expect("ttl");
    assert!(ttl > 800, "renewed: {ttl}");

    // Stopped, the route is gone, and nothing renews it.
    let r = alice.post(&app, "/api/v1/workspace/stop").await;
    assert_eq!(r.status(), 202);
    alice.wait_for(&app, "stopped").await;
    assert_eq!(app.state.tenants.renew_routes().await.expect("renew"), 0);
    assert!(
        !redis_strings(&app)
            .await
            .iter()
            .any(|(k, _, _)| k.contains("tenant-route:")),
        "a route outlived its tenant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_redis_refuses_a_client_without_its_password() {
    let url = crate::support::env_var("WEBSPLAT_TEST_REDIS_URL");
    let parsed = url::Url::parse(&url).expect("a Redis URL");
    assert!(
        parsed.password().is_some_and(|p| p.len() >= 16),
        "scripts/test gives the test Redis a password"
    );
    let anonymous = format!(
        "redis://{}:{}/",
        parsed.host_str().expect("host"),
        parsed.port().expect("port")
    );
    let client = redis::Client::open(anonymous).expect("client");
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("GET")
            .arg("anything")
            .query_async::<Option<String>>(&mut conn)
            .await
    })
    .await
    .expect("an answer");
    let refused = answer.expect_err("no password, no data");
    assert!(
        refused.to_string().contains("NOAUTH"),
        "refused for want of the password: {refused}"
    );
}
