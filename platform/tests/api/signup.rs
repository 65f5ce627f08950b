//! Capacity taken by sign-ups (issue #15, point 6): an access level's cap on running
//! workspaces and its starts per user per hour, invitation-only registration, and e-mail
//! verification through a real SMTP server (aiosmtpd), with registration that does not tell
//! which addresses have accounts (point 11).

use reqwest::Method;
use serde_json::{Value, json};
use websplat_test_support::SmtpServer;

use crate::helpers::{PASSWORD, TestApp, body, sets_session};
use crate::lifecycle_rules::{User, memory_app, refusal};

/// Another person, in a browser of their own (cookie jar), registering as a page does.
async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    crate::support::browser_client()
        .post(app.url("/api/v1/auth/register"))
        .header("Origin", &app.base)
        .json(&body)
        .send()
        .await
        .expect("register")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_levels_cap_refuses_a_start_over_it_in_words() {
    let app = memory_app(&[]).await;
    // Seeded: free users may run 50 workspaces at once, the other levels no cap of their own.
    assert_eq!(
        app.query_one("SELECT max_running_workspaces::text FROM access_levels WHERE name = 'free'")
            .await,
        "50"
    );
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let level = body(
        app.call(
            Method::GET,
            "/api/v1/admin/access-levels/free",
            &admin,
            None,
        )
        .await,
    )
    .await;
    let mut changed = level.clone();
    for field in ["name", "created_at", "updated_at", "users"] {
        changed.as_object_mut().expect("object").remove(field);
    }
    changed["max_running_workspaces"] = json!(1);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/access-levels/free",
            &admin,
            Some(changed.clone()),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", body(r).await);
    changed["max_running_workspaces"] = json!(0);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/admin/access-levels/free",
            &admin,
            Some(changed),
        )
        .await;
    assert_eq!(refusal(r, 400).await["field"], "max_running_workspaces");

    let alice = User::new(&app, "alice").await;
    let bob = User::new(&app, "bob").await;
    alice.ready(&app).await;
    let refused = bob.start(&app).await;
    assert!(refused.headers().contains_key("retry-after"));
    let e = refusal(refused, 429).await;
    assert_eq!(e["code"], "at_capacity", "{e}");
    assert_eq!(
        e["message"],
        "Every workspace the free access level may run at once is in use (1 of 1). Please try again in a few minutes, or ask an administrator about another access level.",
    );
    // Another level is not held by free's cap.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/admin/users/{}/access-level", bob.id),
            &admin,
            Some(json!({"access_level": "standard"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    bob.ready(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_starts_their_workspace_only_so_often_and_a_sign_in_keeps_the_running_one() {
    let app = memory_app(&[("WEBSPLAT_RATE_LIMIT_WORKSPACE_STARTS", "2")]).await;
    let alice = User::new(&app, "alice").await;
    for _ in 0..2 {
        alice.ready(&app).await;
        assert_eq!(alice.stop(&app).await.status(), 202);
        alice.wait_for(&app, "stopped").await;
    }
    let refused = alice.start(&app).await;
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let e = refusal(refused, 429).await;
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "You have started your workspace 2 times in the last hour, as often as anyone may. Please try again in"
        ),
        "{e}"
    );
    assert_eq!(alice.workspace(&app).await["state"], "stopped");

    // A sign-in over the limit does not replace the workspace that runs: Bob keeps his.
    let app = memory_app(&[
        ("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "true"),
        ("WEBSPLAT_RATE_LIMIT_WORKSPACE_STARTS", "1"),
    ])
    .await;
    let r = app.register("bob@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    const READY: &str =
        "SELECT id::text FROM tenants WHERE state = 'ready' ORDER BY requested_at DESC LIMIT 1";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let first = loop {
        let id = app.query_one(READY).await;
        if !id.is_empty() {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert_eq!(app.login("bob@example.com", PASSWORD).await.status(), 200);
    assert_eq!(
        app.query_one(READY).await,
        first,
        "the running workspace stays"
    );
    assert_eq!(app.count("tenants").await, 1, "no second start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_only_registration_takes_one_valid_unused_code() {
    let app = TestApp::spawn_with(vec![(
        "WEBSPLAT_REGISTRATION_INVITATION_ONLY".into(),
        "true".into(),
    )])
    .await;
    let providers = body(app.get("/auth/providers").await).await;
    let local = providers
        .as_array()
        .and_then(|l| l.iter().find(|p| p["id"] == "local").cloned())
        .expect("local");
    assert_eq!(local["invitation_required"], true, "{local}");

    // Without a code: said beside the field; nothing is made.
    let r = register(
        &app,
        json!({"email": "root@example.com", "password": PASSWORD}),
    )
    .await;
    let e = refusal(r, 400).await;
    assert_eq!(e["field"], "invitation", "{e}");
    assert_eq!(app.count("users").await, 0);

    // The first admin comes in with an invitation made on the command line.
    let said = platform::admin::cli::invite(&app.state.config, None, Some(1), None)
        .await
        .expect("platform admin invite");
    let code = said
        .split_whitespace()
        .find(|w| w.starts_with("inv_"))
        .expect("a code")
        .to_owned();
    assert!(said.contains("/login?invitation=inv_"), "{said}");
    let r = register(
        &app,
        json!({"email": "root@example.com", "password": PASSWORD, "invitation": code}),
    )
    .await;
    assert_eq!(r.status(), 202);
    // Used up: nobody else comes in with it.
    let r = register(
        &app,
        json!({"email": "eve@example.com", "password": PASSWORD, "invitation": code}),
    )
    .await;
    assert_eq!(refusal(r, 400).await["field"], "invitation");
    let root = app.login("root@example.com", PASSWORD).await;
    assert_eq!(root.status(), 200);
    let root_id = body(root).await["user"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.grant(&root_id, "admin").await;
    let r = app
        .post("/api/v1/tokens", &json!({"name": "invitations"}))
        .await;
    let admin = body(r).await["token"].as_str().expect("token").to_owned();

    // An admin's invitation for one address: only that address registers with it.
    let r = app
        .call(
            Method::POST,
            "/api/v1/admin/invitations",
            &admin,
            Some(json!({"email": "Ada@Example.com", "note": "Ada, the new designer"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let made = body(r).await;
    assert_eq!(made["email"], "ada@example.com", "{made}");
    assert_eq!(made["state"], "unused", "{made}");
    let code = made["code"].as_str().expect("code").to_owned();
    assert!(
        made["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/login?invitation={code}#register"))),
        "{made}"
    );
    let r = register(
        &app,
        json!({"email": "eve@example.com", "password": PASSWORD, "invitation": code}),
    )
    .await;
    assert_eq!(refusal(r, 400).await["field"], "invitation");
    let r = register(
        &app,
        json!({"email": "ada@example.com", "password": PASSWORD, "invitation": code}),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert_eq!(app.count("users").await, 2);

    // Listed as used, by Ada; a used one cannot be withdrawn, an unused one can.
    let list = body(
        app.call(Method::GET, "/api/v1/admin/invitations", &admin, None)
            .await,
    )
    .await;
    assert_eq!(list["invitation_only"], true);
    let ada = list["invitations"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["id"] == made["id"]).cloned())
        .expect("listed");
    assert_eq!(ada["state"], "used", "{ada}");
    assert_eq!(ada["used_by_email"], "ada@example.com", "{ada}");
    assert!(
        !list.to_string().contains(&code),
        "a code is never shown again"
    );
    let r = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/admin/invitations/{}",
                made["id"].as_str().expect("id")
            ),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status(), 409);
    let r = app
        .call(
            Method::POST,
            "/api/v1/admin/invitations",
            &admin,
            Some(json!({"expires_in_days": 2})),
        )
        .await;
    let spare = body(r).await;
    let r = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/admin/invitations/{}",
                spare["id"].as_str().expect("id")
            ),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = register(
        &app,
        json!({"email": "zed@example.com", "password": PASSWORD, "invitation": spare["code"]}),
    )
    .await;
    assert_eq!(refusal(r, 400).await["field"], "invitation", "withdrawn");
    let records = app.audit(&admin, "action=invitation.*").await;
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(actions.contains(&"invitation.create"), "{actions:?}");
    assert!(actions.contains(&"invitation.revoke"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_smtp_a_new_account_confirms_its_address_and_a_taken_one_is_not_told_apart() {
    let smtp = SmtpServer::start().await;
    let env = smtp
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let app = TestApp::spawn_with(env).await;

    // A new address: "check your mail", no session; the account cannot sign in yet.
    let r = register(
        &app,
        json!({"email": "nora@example.com", "password": PASSWORD, "display_name": "Nora"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert!(!sets_session(&r));
    let new = body(r).await;
    assert_eq!(new["next"], "check_email", "{new}");
    let r = app.login("nora@example.com", PASSWORD).await;
    let e = refusal(r, 403).await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("confirm your e-mail address first")),
        "{e}"
    );

    // The link in the mail confirms it, once.
    let mail = smtp
        .wait_for("nora@example.com", "Confirm your e-mail address")
        .await;
    let link = mail.link().expect("a link in the mail");
    assert!(
        link.starts_with(&app.url("/auth/verify-email?token=")),
        "{link}"
    );
    let r = app.client.get(&link).send().await.expect("follow the link");
    assert_eq!(r.status(), 303);
    assert_eq!(crate::support::location(&r), "/login?verified=1");
    assert_eq!(app.login("nora@example.com", PASSWORD).await.status(), 200);
    assert_eq!(
        body(app.get("/api/v1/me").await).await["email_verified"],
        true
    );
    let again = app.client.get(&link).send().await.expect("the link again");
    assert_eq!(again.status(), 303);
    assert!(
        crate::support::location(&again).starts_with("/login?error="),
        "single use"
    );

    // A taken address: the same answer (but for the address it names), no session, no
    // second account; its owner is told by mail.
    let r = register(
        &app,
        json!({"email": "nora@example.com", "password": "someone else's passphrase"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert!(!sets_session(&r));
    let taken = body(r).await;
    assert_eq!(taken["next"], new["next"]);
    assert_eq!(
        taken["message"], new["message"],
        "the same words for a taken address"
    );
    let notice = smtp
        .wait_for("nora@example.com", "Someone tried to create")
        .await;
    assert!(!notice.raw.contains("someone else"), "never the password");
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("local_credentials").await, 1);
}

/// In Chromium: an admin makes an invitation on the console's Invitations page; its link
/// opens the registration with the code filled in, and the person lands on the dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_made_in_the_console_brings_a_person_in_through_its_link() {
    use std::time::Duration;
    use websplat_test_support::env_var;
    use websplat_test_support::webdriver::Browser;
    const WAIT: Duration = Duration::from_secs(30);

    let app = TestApp::spawn_with(vec![(
        "WEBSPLAT_REGISTRATION_INVITATION_ONLY".into(),
        "true".into(),
    )])
    .await;
    let said = platform::admin::cli::invite(&app.state.config, None, None, None)
        .await
        .expect("platform admin invite");
    let code = said
        .split_whitespace()
        .find(|w| w.starts_with("inv_"))
        .expect("a code");
    let r = register(
        &app,
        json!({"email": "root@example.com", "password": PASSWORD, "invitation": code}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let r = app.login("root@example.com", PASSWORD).await;
    let id = body(r).await["user"]["id"].as_str().expect("id").to_owned();
    app.grant(&id, "admin").await;

    let browser = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    crate::sites::preview::sign_in_in_browser(&app, &browser, "root@example.com").await;
    browser.goto(&app.url("/admin/invitations")).await;
    let email = browser.wait_for_visible("#invitation-email", WAIT).await;
    browser.send_keys(&email, "ada@example.com").await;
    let note = browser.wait_for_visible("#invitation-note", WAIT).await;
    browser.send_keys(&note, "Ada, our new designer").await;
    let make = browser.wait_for_visible("#invitation-create", WAIT).await;
    browser.click(&make).await;
    let shown = browser.wait_for_visible("#invitation-url", WAIT).await;
    let link = browser.text(&shown).await.expect("the link");
    assert!(link.contains("/login?invitation=inv_"), "{link}");
    browser
        .wait_for_visible("#invitations-body tr[data-state=\"unused\"]", WAIT)
        .await;
    let shot = std::env::temp_dir().join("websplat-admin-invitations.png");
    std::fs::write(&shot, browser.screenshot().await).expect("screenshot");
    eprintln!("screenshot: {}", shot.display());

    // Ada opens the link in her browser (the admin signs out first: one browser here).
    let sign_out = browser.wait_for_visible("#sign-out", WAIT).await;
    browser.click(&sign_out).await;
    browser
        .wait_for_url("the sign-in page", WAIT, |u| u.path() == "/login")
        .await;
    browser.goto(&link).await;
    browser
        .wait_for_text("#page-title", "Create an account", WAIT)
        .await;
    let filled = browser
        .property(
            &browser.wait_for_visible("#register-invitation", WAIT).await,
            "value",
        )
        .await
        .expect("the code field");
    assert!(filled.starts_with("inv_"), "{filled}");
    for (css, value) in [
        ("#register-name", "Ada Lovelace"),
        ("#register-email", "ada@example.com"),
        ("#register-password", "an analytical engine"),
        ("#register-confirm", "an analytical engine"),
    ] {
        let input = browser.wait_for_visible(css, WAIT).await;
        browser.send_keys(&input, value).await;
    }
    let create = browser.wait_for_visible("#local-register", WAIT).await;
    browser.click(&create).await;
    browser
        .wait_for_url("the dashboard", WAIT, |u| u.path() == "/dashboard")
        .await;
    browser
        .wait_for_text("#user-name", "Ada Lovelace", WAIT)
        .await;
    assert_eq!(
        app.query_one(
            "SELECT (used_at IS NOT NULL)::text FROM invitations WHERE email = 'ada@example.com'"
        )
        .await,
        "true"
    );
}
