//! Roles: what `me` lists, escalation refused with a clear message and audited, roles that
//! admins define (the defaults never come back over their changes), the first admin, and
//! grants from the command line reaching running replicas.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body, error_code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_lists_roles_access_level_and_what_the_pages_may_offer() {
    let app = TestApp::spawn().await;
    let me = app.signed_in("maria@example.com").await;
    assert_eq!(me["roles"], json!([]));
    assert_eq!(me["access_level"]["name"], "free");
    assert!(
        me["access_level"]["memory_mib"]
            .as_i64()
            .is_some_and(|m| m > 0)
    );
    assert_eq!(me["capabilities"], json!([]));

    app.grant(me["id"].as_str().expect("id"), "auditor").await;
    let me = body(app.get("/api/v1/me").await).await;
    assert_eq!(me["roles"], json!(["auditor"]));
    let caps: Vec<&str> = me["capabilities"]
        .as_array()
        .expect("capabilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "admin_console",
        "users.read",
        "roles.read",
        "access_levels.read",
        "audit.read",
    ] {
        assert!(caps.contains(&expected), "{expected} missing from {caps:?}");
    }
    for refused in [
        "users.write",
        "roles.write",
        "access_levels.write",
        "fleet.read",
        "metrics.read",
    ] {
        assert!(
            !caps.contains(&refused),
            "{refused} offered to an auditor: {caps:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_is_refused_with_a_clear_message_and_audited() {
    let app = TestApp::spawn().await;
    let (admin, _, admin_token) = app.user_with_role("root@example.com", Some("admin")).await;
    let (member, _, member_token) = app.user_with_role("eve@example.com", None).await;
    let (operator, _, operator_token) =
        app.user_with_role("op@example.com", Some("operator")).await;
    let member_id = member["id"].as_str().expect("id");
    let admin_id = admin["id"].as_str().expect("id");

    // A member makes themselves admin.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/admin"),
            &member_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 403);
    let message = body(r).await["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("your roles do not allow"), "{message}");
    // An operator hands out roles.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/operator"),
            &operator_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 403);
    let me = body(
        app.call(Method::GET, "/api/v1/me", &member_token, None)
            .await,
    )
    .await;
    assert_eq!(me["roles"], json!([]), "nothing was granted");

    // The only admin removes their own admin role, or disables themselves.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/users/{admin_id}/roles/admin"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 409);
    let message = body(r).await["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("last admin"), "{message}");
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{admin_id}/disable"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/roles", &admin_token, None)
            .await
            .status(),
        200,
        "still admin"
    );

    // Every attempt is in the audit log, with its actor and outcome.
    let denied = app.audit(&admin_token, "action=access.denied").await;
    let actors: Vec<&str> = denied
        .iter()
        .filter_map(|r| r["actor_id"].as_str())
        .collect();
    assert!(actors.contains(&member_id), "{denied:?}");
    assert!(
        actors.contains(&operator["id"].as_str().expect("id")),
        "{denied:?}"
    );
    assert!(
        denied
            .iter()
            .all(|r| r["outcome"] == "denied" && r["ip"] == "127.0.0.1")
    );
    let refused = app
        .audit(
            &admin_token,
            &format!("action=role.revoke&target=user:{admin_id}"),
        )
        .await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["outcome"], "failure");
    assert!(
        refused[0]["detail"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("last admin")
    );

    // Other refusals say what to do.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/member"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 409).await, "conflict");
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/wizard"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 404).await, "not_found");
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{member_id}/roles/Not%20A%20Role"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(error_code(r, 400).await, "validation_failed");
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/roles/admin",
            &admin_token,
            Some(json!({"permissions": []})),
        )
        .await;
    assert_eq!(
        error_code(r, 409).await,
        "conflict",
        "admin's permissions are fixed"
    );

    // With a second admin, the first may step down.
    app.grant(member_id, "admin").await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/users/{admin_id}/roles/admin"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = app
        .call(Method::GET, "/api/v1/admin/roles", &admin_token, None)
        .await;
    assert_eq!(r.status(), 403, "no longer admin, at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_define_roles_and_the_defaults_never_come_back_over_their_changes() {
    let mut app = TestApp::spawn().await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let (support, _, support_token) = app.user_with_role("help@example.com", None).await;
    let (_, _, operator) = app.user_with_role("op@example.com", Some("operator")).await;

    // A new role that may read users.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/roles/support",
            &admin,
            Some(json!({"description": "Helpdesk", "permissions": [
                {"object": "/api/v1/admin/users", "action": "GET", "scope": "any"},
                {"object": "/api/v1/admin/users/{id}", "action": "GET", "scope": "any"}
            ]})),
        )
        .await;
    assert_eq!(r.status(), 201);
    app.grant(support["id"].as_str().expect("id"), "support")
        .await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/users", &support_token, None)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/roles", &support_token, None)
            .await
            .status(),
        403
    );
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/roles/support",
            &admin,
            Some(json!({"permissions": [{"object": "no-slash", "action": "GET", "scope": "any"}]})),
        )
        .await;
    assert_eq!(error_code(r, 400).await, "validation_failed");

    // The operator role loses /metrics by an admin's hand; a restart does not give it back.
    let roles = body(
        app.call(Method::GET, "/api/v1/admin/roles", &admin, None)
            .await,
    )
    .await;
    let operator_role = roles["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["name"] == "operator")
        .expect("operator")
        .clone();
    let kept: Vec<Value> = operator_role["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter(|p| p["object"] != "/metrics")
        .cloned()
        .collect();
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/roles/operator",
            &admin,
            Some(json!({"description": operator_role["description"], "permissions": kept})),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.call(Method::GET, "/metrics", &operator, None)
            .await
            .status(),
        403
    );
    app.restart().await;
    assert_eq!(
        app.call(Method::GET, "/metrics", &operator, None)
            .await
            .status(),
        403,
        "not re-seeded"
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/fleet", &operator, None)
            .await
            .status(),
        200
    );

    // Deleting a role takes it from its holders; built-in roles stay.
    assert_eq!(
        app.call(Method::DELETE, "/api/v1/admin/roles/support", &admin, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/users", &support_token, None)
            .await
            .status(),
        403
    );
    let r = app
        .call(Method::DELETE, "/api/v1/admin/roles/auditor", &admin, None)
        .await;
    assert_eq!(error_code(r, 409).await, "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_admins_become_admin_at_their_first_sign_in_only() {
    let app = TestApp::spawn_with(vec![(
        "WEBSPLAT_BOOTSTRAP_ADMINS".to_owned(),
        "local:Boss@Example.com, corp:12345".to_owned(),
    )])
    .await;
    let boss = app.signed_in("boss@example.com").await;
    assert_eq!(boss["roles"], json!(["admin"]));
    assert!(
        boss["capabilities"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("roles.write")))
    );
    let mut app = app;
    app.switch_browser();
    let other = app.signed_in("someone@example.com").await;
    assert_eq!(other["roles"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_grants_by_email_and_running_replicas_apply_it() {
    let app = TestApp::spawn().await;
    let me = app.signed_in("ops@example.com").await;
    assert_eq!(app.get("/api/v1/admin/fleet").await.status(), 403);

    let config = platform::Config::from_sources(None, app.env.clone()).expect("config");
    let said = platform::admin::cli::change_role(&config, "OPS@example.com", "operator", true)
        .await
        .expect("grant");
    assert!(said.contains("now holds the role \"operator\""), "{said}");
    // The running server hears of it over Redis, without a request to it.
    let mut status = 0;
    for _ in 0..50 {
        status = app.get("/api/v1/admin/fleet").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200, "applied within a second");
    let fleet = body(app.get("/api/v1/admin/fleet").await).await;
    assert_eq!(fleet["users_total"], 1);
    assert_eq!(fleet["dependencies"]["postgresql"], "ok");

    let err = platform::admin::cli::change_role(&config, "nobody@example.com", "operator", true)
        .await
        .expect_err("unknown user");
    assert!(err.to_string().contains("no user has the e-mail"), "{err}");
    let err =
        platform::admin::cli::change_role(&config, me["id"].as_str().expect("id"), "admin", false)
            .await
            .expect_err("not held");
    assert!(err.to_string().contains("does not hold"), "{err}");
}
