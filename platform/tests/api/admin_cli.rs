//! `platform admin disable|enable|delete`: the command line changes whole accounts through
//! the same functions as the admin API, with the same effects and the same audit records
//! (actor "command line").

use reqwest::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, body};
use platform::admin::cli::{AccountChange, change_account};

fn config(app: &TestApp) -> platform::Config {
    platform::Config::from_sources(None, app.env.clone()).expect("config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_disables_and_enables_an_account_as_the_api_does() {
    let app = TestApp::spawn().await;
    let (_, _, admin_token) = app.user_with_role("root@example.com", Some("admin")).await;
    let (user, user_client, user_token) = app.user_with_role("leaving@example.com", None).await;
    let id = user["id"].as_str().expect("id");
    let config = config(&app);

    let said = change_account(&config, "LEAVING@example.com", AccountChange::Disable)
        .await
        .expect("disable");
    assert!(
        said.contains("is disabled: 1 session(s) ended, 1 API token(s) revoked"),
        "{said}"
    );
    let r = user_client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 401, "the session is gone");
    let r = app.call(Method::GET, "/api/v1/me", &user_token, None).await;
    assert_eq!(r.status(), 401, "the token is revoked");
    let login = json!({"email": "leaving@example.com", "password": PASSWORD});
    let r = user_client
        .post(app.url("/api/v1/auth/login"))
        .header("Origin", &app.base)
        .json(&login)
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 403, "a disabled account cannot sign in");

    let said = change_account(&config, id, AccountChange::Enable)
        .await
        .expect("enable");
    assert!(said.contains("is enabled"), "{said}");
    let r = user_client
        .post(app.url("/api/v1/auth/login"))
        .header("Origin", &app.base)
        .json(&login)
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "enabled again");
    let r = app.call(Method::GET, "/api/v1/me", &user_token, None).await;
    assert_eq!(r.status(), 401, "the old token stays revoked");

    let records = app
        .audit(&admin_token, &format!("target=user:{id}&action=user.*"))
        .await;
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions, ["user.enable", "user.disable"]);
    assert!(
        records
            .iter()
            .all(|r| r["actor"] == "command line" && r["outcome"] == "success"),
        "{records:?}"
    );
    assert_eq!(records[1]["detail"]["sessions_ended"], 1);
    assert_eq!(records[1]["detail"]["tokens_revoked"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_deletes_an_account_but_never_the_last_admin() {
    let app = TestApp::spawn().await;
    let (admin, _, admin_token) = app.user_with_role("root@example.com", Some("admin")).await;
    let admin_id = admin["id"].as_str().expect("id");
    let (user, user_client, _) = app.user_with_role("gone@example.com", None).await;
    let id = user["id"].as_str().expect("id");
    let config = config(&app);

    let err = change_account(&config, admin_id, AccountChange::Disable)
        .await
        .expect_err("the last admin");
    assert!(err.to_string().contains("last admin"), "{err}");
    let err = change_account(
        &config,
        "root@example.com",
        AccountChange::Delete {
            delete_volume: false,
        },
    )
    .await
    .expect_err("the last admin");
    assert!(err.to_string().contains("last admin"), "{err}");
    assert_eq!(
        app.call(Method::GET, "/api/v1/admin/roles", &admin_token, None)
            .await
            .status(),
        200,
        "still admin"
    );

    let said = change_account(
        &config,
        id,
        AccountChange::Delete {
            delete_volume: false,
        },
    )
    .await
    .expect("delete");
    assert!(
        said.contains("is deleted (they had no workspace)"),
        "{said}"
    );
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/admin/users/{id}"),
            &admin_token,
            None,
        )
        .await;
    assert_eq!(r.status(), 404, "the account is gone");
    let r = user_client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 401, "their session is gone");
    let err = change_account(&config, "gone@example.com", AccountChange::Enable)
        .await
        .expect_err("no such user");
    assert!(err.to_string().contains("no user has the e-mail"), "{err}");

    let refused = app
        .audit(
            &admin_token,
            &format!("target=user:{admin_id}&action=user.*"),
        )
        .await;
    let refused: Vec<(&str, &str)> = refused
        .iter()
        .filter_map(|r| Some((r["action"].as_str()?, r["outcome"].as_str()?)))
        .collect();
    assert_eq!(
        refused,
        [("user.delete", "failure"), ("user.disable", "failure")]
    );
    let deleted = app
        .audit(
            &admin_token,
            &format!("target=user:{id}&action=user.delete"),
        )
        .await;
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["actor"], "command line");
    assert_eq!(deleted[0]["outcome"], "success");
    assert_eq!(
        body(
            app.call(
                Method::GET,
                &format!("/api/v1/admin/users/{admin_id}"),
                &admin_token,
                None
            )
            .await
        )
        .await["disabled_at"],
        serde_json::Value::Null
    );
}
