//! End-to-end tests across processes: the `platform` binary as deployed, on real PostgreSQL
//! and Redis, signing a real headless Chromium in through the third-party
//! `oidc-provider-mock`'s own sign-in page, and through its dependencies' faults
//! (`faults`: PostgreSQL, Redis or the Docker Engine away for a while), and a tenant on a
//! real multi-node swarm probing its network (`swarm_network`). Run by
//! `scripts/test`, which starts the dependencies and sets the `WEBSPLAT_TEST_*` variables.

mod faults;
mod pools;
mod replicas;
mod swarm;
mod swarm_network;
mod workspaces;

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use support::{
    ChildGuard, OidcProviderMock, TestDb, browser_client, env_var, free_port, oidc_env,
    redis_prefix,
};
use websplat_test_support as support;
use websplat_test_support::webdriver::Browser;

/// Generous, for slow CI machines; every wait ends as soon as its condition holds.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The `platform` binary serving on a free port, killed when the test ends. Its output goes
/// to a file, removed at the end; if the test fails, the file is kept and its tail printed.
struct Platform {
    /// `http://localhost:<port>`, the public URL the browser uses.
    url: String,
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: ChildGuard,
}

impl Platform {
    async fn start(db: &TestDb, extra_env: Vec<(String, String)>) -> Self {
        let port = free_port();
        let mut env = vec![
            ("WEBSPLAT_DATABASE_URL".to_owned(), db.url.clone()),
            (
                "WEBSPLAT_REDIS_URL".to_owned(),
                env_var("WEBSPLAT_TEST_REDIS_URL"),
            ),
            ("WEBSPLAT_REDIS_KEY_PREFIX".to_owned(), redis_prefix()),
            ("WEBSPLAT_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            (
                "WEBSPLAT_PUBLIC_URL".to_owned(),
                format!("http://localhost:{port}"),
            ),
            // Containers only where a test asks (workspaces.rs), under a deployment label
            // of this test's own.
            (
                "WEBSPLAT_WORKSPACE_START_ON_SIGN_IN".to_owned(),
                "false".to_owned(),
            ),
            ("WEBSPLAT_DEPLOYMENT".to_owned(), support::deployment()),
            // The AI gateway's door on a port of its own per test.
            ("WEBSPLAT_GATEWAY_PORT".to_owned(), "0".to_owned()),
            (
                "WEBSPLAT_TENANT_IMAGE".to_owned(),
                support::tenant_image(platform::config::DEFAULT_TENANT_IMAGE),
            ),
        ];
        for (k, v) in extra_env {
            env.retain(|(key, _)| *key != k);
            env.push((k, v));
        }
        let log = temp_file("platform", "log");
        let child = Self::spawn(&env, &log);
        let mut platform = Platform {
            url: format!("http://localhost:{port}"),
            port,
            env,
            log,
            child,
        };
        platform.wait_until_ready().await;
        platform
    }

    fn spawn(env: &[(String, String)], log: &std::path::Path) -> ChildGuard {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the platform log");
        let child = Command::new(env!("CARGO_BIN_EXE_platform"))
            .arg("serve")
            .envs(env.iter().cloned())
            // Plain text in the log file.
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(
                log_file.try_clone().expect("clone the log file handle"),
            ))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start the platform binary");
        ChildGuard(child)
    }

    /// Stops the process and starts a new one with the same configuration: a deploy.
    async fn restart(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        self.child = Self::spawn(&self.env, &self.log);
        self.wait_until_ready().await;
    }

    async fn wait_until_ready(&mut self) {
        let port = self.port;
        let platform = self;
        // It migrates its database before it reports ready. A panic here prints its log.
        let ready = format!("http://127.0.0.1:{port}/readyz");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(&ready).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = platform.child.0.try_wait() {
                panic!("the platform binary exited before it was ready: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the platform binary did not answer 200 at {ready} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Runs the binary's command line (e.g. `admin grant …`) with the server's configuration;
    /// asserts it succeeded and returns what it printed.
    async fn cli(&self, args: &[&str]) -> String {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_platform"))
            .args(args)
            .envs(self.env.iter().cloned())
            .env("NO_COLOR", "1")
            .output()
            .await
            .expect("run the platform binary's command line");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "`platform {}` failed ({}):\n{stdout}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        if let Some((_, deployment)) = self.env.iter().find(|(k, _)| k == "WEBSPLAT_DEPLOYMENT") {
            support::remove_deployment(deployment);
        }
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of the platform's output ({}) ---\n{}",
                self.log.display(),
                tail(&self.log, 60)
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A fresh path in the temporary directory.
fn temp_file(what: &str, ext: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "websplat-e2e-{what}-{}.{ext}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// The last `lines` lines of a (small) file.
fn tail(path: &std::path::Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_through_the_providers_own_page_and_sees_the_dashboard() {
    let mock = OidcProviderMock::start(&[json!({
        "sub": "alice", "name": "Alice Liddell", "email": "alice@example.com"
    })])
    .await;
    let db = TestDb::create().await;
    let platform = Platform::start(&db, oidc_env("mock", &mock.issuer, "websplat-e2e")).await;
    let browser = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;

    // The sign-in page lists the provider (its script loads them from /auth/providers).
    browser.goto(&platform.url("/login")).await;
    let provider = browser
        .wait_for(r#"a.provider-button[data-provider="mock"]"#, TIMEOUT)
        .await;
    browser.click(&provider).await;

    // The provider's own page: type the subject into its form and submit it.
    let sub = browser.wait_for("input[name=sub]", TIMEOUT).await;
    let at_provider = browser.current_url().await;
    assert!(
        at_provider.starts_with(&mock.issuer),
        "the browser went to the provider at {}, not to {at_provider}",
        mock.issuer
    );
    browser.send_keys(&sub, "alice").await;
    // The first form's submit button ("Authorize"); the later forms hold other buttons.
    let authorize = browser.wait_for("form button[type=submit]", TIMEOUT).await;
    browser.click(&authorize).await;

    // Back at the platform, signed in: the dashboard shows who (its script fills it in).
    let dashboard = platform.url("/dashboard");
    browser
        .wait_for_url(&dashboard, TIMEOUT, |u| u.as_str() == dashboard)
        .await;
    browser
        .wait_for_text("#user-name", "Alice Liddell", TIMEOUT)
        .await;
    let email = browser.wait_for("#user-email", TIMEOUT).await;
    assert_eq!(
        browser.text(&email).await.expect("the e-mail's text"),
        "alice@example.com"
    );
    // Her roles and the access level new users get.
    browser
        .wait_for_text("#account-roles", "member", TIMEOUT)
        .await;
    let level = browser.wait_for("#account-level", TIMEOUT).await;
    let level = browser.text(&level).await.expect("the access level's text");
    assert!(
        level.starts_with("free — 0.5 CPU, 512 MiB memory"),
        "{level}"
    );

    // Signing out ends the session and goes to the sign-in page...
    let sign_out = browser.wait_for("#sign-out", TIMEOUT).await;
    browser.click(&sign_out).await;
    browser
        .wait_for_url("the sign-in page after signing out", TIMEOUT, |u| {
            u.path() == "/login"
        })
        .await;

    // ...and the dashboard now sends the browser back there: the session is gone.
    browser.goto(&dashboard).await;
    let back = browser
        .wait_for_url(
            "the sign-in page from the dashboard after signing out",
            TIMEOUT,
            |u| u.path() == "/login",
        )
        .await;
    assert_eq!(
        back.origin().ascii_serialization(),
        platform.url,
        "stays on the platform"
    );
    browser
        .wait_for(r#"a.provider-button[data-provider="mock"]"#, TIMEOUT)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_registers_a_local_account_and_stays_signed_in_across_a_restart() {
    let db = TestDb::create().await;
    let mut platform = Platform::start(&db, Vec::new()).await;
    let browser = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;

    // The first person creates an account on the sign-in page: no default account exists.
    browser.goto(&platform.url("/login")).await;
    // Shown once the sign-in options have loaded.
    let show = browser.wait_for_visible("#show-register", TIMEOUT).await;
    browser.click(&show).await;
    // The page's heading says what it is for now.
    browser
        .wait_for_text("#page-title", "Create an account", TIMEOUT)
        .await;
    for (css, value) in [
        ("#register-name", "Grace Hopper"),
        ("#register-email", "grace@example.com"),
        ("#register-password", "a ship in port is safe"),
        ("#register-confirm", "a ship in port is safe"),
    ] {
        let input = browser.wait_for(css, TIMEOUT).await;
        browser.send_keys(&input, value).await;
    }
    let create = browser.wait_for("#local-register", TIMEOUT).await;
    browser.click(&create).await;
    let dashboard = platform.url("/dashboard");
    browser
        .wait_for_url(&dashboard, TIMEOUT, |u| u.as_str() == dashboard)
        .await;
    browser
        .wait_for_text("#user-name", "Grace Hopper", TIMEOUT)
        .await;

    // The platform process is replaced; the browser's session lives on in Redis.
    platform.restart().await;
    browser.goto(&dashboard).await;
    browser
        .wait_for_text("#user-email", "grace@example.com", TIMEOUT)
        .await;
    assert_eq!(browser.current_url().await, dashboard, "still signed in");
}

/// The password of the local accounts the tests make.
const PASSWORD: &str = "correct horse battery staple";

/// Registers a local account through the API, as a script would; returns its user id.
async fn register(platform: &Platform, http: &reqwest::Client, email: &str, name: &str) -> String {
    let response = http
        .post(platform.url("/api/v1/auth/register"))
        .json(&json!({ "email": email, "password": PASSWORD, "display_name": name }))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 202, "register {email}");
    // Registration answers the same for every address; signing in makes the session.
    let response = http
        .post(platform.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("sign in");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("the sign-in's JSON");
    assert_eq!(status, 200, "sign in {email}: {body}");
    body["user"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no user id in {body}"))
        .to_owned()
}

/// Waits until the workspace of the client's user is ready (failing on `failed`).
async fn wait_for_workspace(platform: &Platform, client: &reqwest::Client) {
    let started = Instant::now();
    loop {
        let w: serde_json::Value = client
            .get(platform.url("/api/v1/workspace"))
            .send()
            .await
            .expect("workspace")
            .json()
            .await
            .expect("json");
        if w["state"] == "ready" {
            return;
        }
        assert!(
            w["state"] != "failed" && started.elapsed() < Duration::from_secs(90),
            "{w}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in on the sign-in page the browser is on, with a local account.
async fn sign_in_on_the_page(browser: &Browser, email: &str) {
    let email_input = browser.wait_for_visible("#signin-email", TIMEOUT).await;
    browser.send_keys(&email_input, email).await;
    let password = browser.wait_for_visible("#signin-password", TIMEOUT).await;
    browser.send_keys(&password, PASSWORD).await;
    let submit = browser.wait_for_visible("#local-signin", TIMEOUT).await;
    browser.click(&submit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_promotes_a_member_to_operator_in_the_console() {
    let db = TestDb::create().await;
    let platform = Platform::start(&db, Vec::new()).await;
    let admin_api = browser_client();
    let admin_id = register(&platform, &admin_api, "admin@example.com", "Ada Admin").await;
    let member_id = register(
        &platform,
        &browser_client(),
        "member@example.com",
        "Max Member",
    )
    .await;

    // The first admin is made on the server's command line: there is no built-in account.
    let said = platform
        .cli(&["admin", "grant", "admin@example.com", "admin"])
        .await;
    assert!(
        said.contains(&format!("user {admin_id} now holds the role \"admin\"")),
        "the command line says what it did: {said}"
    );

    // The member opens the console: first the sign-in page, then a refusal.
    let admin_page = platform.url("/admin");
    let member = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    member.goto(&admin_page).await;
    member
        .wait_for_url("the sign-in page, returning to /admin", TIMEOUT, |u| {
            u.path() == "/login" && u.query() == Some("return_to=%2Fadmin")
        })
        .await;
    sign_in_on_the_page(&member, "member@example.com").await;
    member
        .wait_for_url("/admin after signing in", TIMEOUT, |u| u.path() == "/admin")
        .await;
    member.wait_for("#error-message", TIMEOUT).await;
    assert!(
        member
            .find("#fleet")
            .await
            .expect("look for #fleet")
            .is_none(),
        "a member sees no console"
    );

    // The admin, in a browser of their own, opens the console's Users page, signs in on the
    // page and lands back on it.
    let users_page = platform.url("/admin/users");
    let admin = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    admin.goto(&users_page).await;
    admin
        .wait_for_url("the sign-in page", TIMEOUT, |u| u.path() == "/login")
        .await;
    sign_in_on_the_page(&admin, "admin@example.com").await;
    admin
        .wait_for_url("the Users page", TIMEOUT, |u| u.as_str() == users_page)
        .await;
    admin
        .wait_for_text("#users-status", "2 users found.", TIMEOUT)
        .await;
    // Each part of the console is a page of its own, reached from its menu: how people
    // sign in (read from the configuration) is on another.
    let methods = admin
        .wait_for_visible(r#"#admin-nav a[href="/admin/sign-in-methods"]"#, TIMEOUT)
        .await;
    admin.click(&methods).await;
    admin
        .wait_for_text("#providers-body td:nth-child(2)", "local", TIMEOUT)
        .await;
    assert!(
        !admin
            .displayed(&admin.wait_for("#users", TIMEOUT).await)
            .await
            .expect("displayed"),
        "the users are on their own page"
    );
    admin.goto(&users_page).await;
    admin
        .wait_for_text("#users-status", "2 users found.", TIMEOUT)
        .await;

    // They find the member and give them the operator role.
    let search = admin.wait_for_visible("#user-search", TIMEOUT).await;
    admin.send_keys(&search, "member@example.com").await;
    let submit = admin.wait_for_visible("#user-search-submit", TIMEOUT).await;
    admin.click(&submit).await;
    admin
        .wait_for_text("#users-status", "1 user found.", TIMEOUT)
        .await;
    let row = format!(r#"#users tr[data-user-id="{member_id}"]"#);
    assert!(
        admin
            .find(&format!(r#"#users tr[data-user-id="{admin_id}"]"#))
            .await
            .expect("look for the admin's row")
            .is_none(),
        "the search shows only the member"
    );
    // The role picker starts empty, its button disabled: no role is granted by default.
    let picker = admin
        .wait_for_visible(&format!("{row} select.role-select"), TIMEOUT)
        .await;
    assert_eq!(
        admin
            .property(&picker, "value")
            .await
            .expect("the picker's value"),
        ""
    );
    let add = admin
        .wait_for(&format!("{row} button.grant-role"), TIMEOUT)
        .await;
    assert_eq!(
        admin.property(&add, "disabled").await.expect("disabled"),
        "true"
    );
    let operator = admin
        .wait_for_visible(
            &format!(r#"{row} select.role-select option[value="operator"]"#),
            TIMEOUT,
        )
        .await;
    admin.scroll_into_view(&operator).await;
    admin.click(&operator).await;
    let select = admin
        .wait_for(&format!("{row} select.role-select"), TIMEOUT)
        .await;
    assert_eq!(
        admin
            .property(&select, "value")
            .await
            .expect("the select's value"),
        "operator"
    );
    let add = admin
        .wait_for_visible(&format!("{row} button.grant-role"), TIMEOUT)
        .await;
    assert_eq!(
        admin.text(&add).await.expect("the button's text"),
        "Add role"
    );
    admin.scroll_into_view(&add).await;
    admin.click(&add).await;
    admin
        .wait_for_visible(
            &format!(r#"{row} button.revoke-role[data-role="operator"]"#),
            TIMEOUT,
        )
        .await;

    // The member, still signed in, reloads the console: the operator's page, and no users.
    member.goto(&admin_page).await;
    member
        .wait_for_text("#fleet-users-total", "2", TIMEOUT)
        .await;
    member.wait_for_visible("#fleet", TIMEOUT).await;
    member
        .wait_for_text("#fleet-heading", "Fleet", TIMEOUT)
        .await;
    for section in ["#users", "#roles", "#access-levels", "#audit", "#providers"] {
        assert!(
            member
                .find(section)
                .await
                .expect("look for a section")
                .is_none(),
            "an operator has no {section} section"
        );
    }
    // The dashboard now links to the console.
    member.goto(&platform.url("/dashboard")).await;
    member.wait_for_visible("#admin-link", TIMEOUT).await;

    // The grant is in the audit log, made by the admin.
    let response = admin_api
        .get(platform.url(&format!(
            "/api/v1/admin/audit?action=role.grant&target=user:{member_id}"
        )))
        .send()
        .await
        .expect("GET the audit log");
    assert_eq!(response.status(), 200);
    let audit: serde_json::Value = response.json().await.expect("the audit log's JSON");
    let records = audit["records"].as_array().expect("records");
    assert_eq!(records.len(), 1, "one grant to the member: {audit}");
    let grant = &records[0];
    assert_eq!(grant["actor_id"], admin_id.as_str(), "{grant}");
    assert_eq!(grant["outcome"], "success", "{grant}");
    assert_eq!(grant["detail"]["role"], "operator", "{grant}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_deletes_a_member_in_an_in_page_dialog_that_keeps_their_data_by_default() {
    let db = TestDb::create().await;
    let platform = Platform::start(&db, Vec::new()).await;
    let admin_api = browser_client();
    register(&platform, &admin_api, "admin@example.com", "Ada Admin").await;
    let member_id = register(
        &platform,
        &browser_client(),
        "member@example.com",
        "Max Member",
    )
    .await;
    platform
        .cli(&["admin", "grant", "admin@example.com", "admin"])
        .await;
    let admin = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    admin.goto(&platform.url("/admin/users")).await;
    admin
        .wait_for_url("the sign-in page", TIMEOUT, |u| u.path() == "/login")
        .await;
    sign_in_on_the_page(&admin, "admin@example.com").await;
    let row = format!(r#"#users tr[data-user-id="{member_id}"]"#);
    let delete = admin
        .wait_for_visible(&format!("{row} button.delete-user"), TIMEOUT)
        .await;
    admin.scroll_into_view(&delete).await;
    admin.click(&delete).await;

    // The page's own dialog (not the browser's): what is lost, and the data kept unless
    // the box is ticked.
    admin
        .wait_for_text(
            "#confirm-dialog-title",
            "Delete member@example.com?",
            TIMEOUT,
        )
        .await;
    let keep = admin.wait_for("#confirm-dialog-check", TIMEOUT).await;
    assert_eq!(
        admin.property(&keep, "checked").await.expect("checked"),
        "false",
        "the data is kept by default"
    );
    let dialog = admin.wait_for("#confirm-dialog", TIMEOUT).await;
    let text = admin.text(&dialog).await.expect("the dialog's text");
    assert!(
        text.contains("cannot be restored") && text.contains("is kept"),
        "{text}"
    );
    let ok = admin.wait_for_visible("#confirm-dialog-ok", TIMEOUT).await;
    admin.click(&ok).await;
    admin
        .wait_for_url("still the console", TIMEOUT, |u| u.path() == "/admin/users")
        .await;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let gone = admin.find(&row).await.expect("look for the row").is_none();
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "the member's row stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = admin_api
        .get(platform.url(&format!(
            "/api/v1/admin/audit?action=user.delete&target=user:{member_id}"
        )))
        .send()
        .await
        .expect("GET the audit log");
    let audit: serde_json::Value = response.json().await.expect("the audit log's JSON");
    let record = &audit["records"][0];
    assert_eq!(record["outcome"], "success", "{audit}");
    assert_eq!(record["detail"]["volume_deleted"], false, "{audit}");
}
