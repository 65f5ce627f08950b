//! Local accounts: registration, sign-in, the same answer for an unknown e-mail and a wrong
//! password, rate limits, and no password in clear anywhere.

use serde_json::json;

use crate::helpers::{Logs, PASSWORD, TestApp, body, error_code, sets_session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_sign_out_and_sign_in_again() {
    let app = TestApp::spawn().await;
    let r = app.register("Bob@Example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(sets_session(&r));
    let user = body(r).await["user"].clone();
    assert_eq!(user["email"], "bob@example.com");
    assert_eq!(user["display_name"], "Test User");
    assert_eq!(body(app.get("/api/v1/me").await).await["id"], user["id"]);

    assert_eq!(app.post("/auth/logout", &json!({})).await.status(), 204);
    assert_eq!(app.me_status().await, 401);

    let r = app.login("bob@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["user"]["id"], user["id"]);
    assert_eq!(app.me_status().await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_say_what_to_fix_and_store_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "password123456"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "display_name": "x".repeat(200)}),
            "display_name",
        ),
    ];
    for (request, field) in cases {
        let r = app.post("/api/v1/auth/register", &request).await;
        assert_eq!(r.status(), 400, "{request}");
        assert_eq!(body(r).await["error"]["field"], field, "{request}");
    }
    let r = app
        .post("/api/v1/auth/register", &json!({"email": "a@example.com"}))
        .await;
    assert_eq!(error_code(r, 400).await, "bad_request");
    let r = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    error_code(r, 400).await;
    assert_eq!(app.count("users").await, 0);

    app.register("dup@example.com", PASSWORD).await;
    let again = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": "DUP@example.com", "password": "another good passphrase"}),
        )
        .await;
    assert_eq!(again.status(), 202, "a taken address is not told apart");
    assert_eq!(app.count("users").await, 1);
    let r = app
        .login("dup@example.com", "another good passphrase")
        .await;
    assert_eq!(r.status(), 401, "the second password made nothing");
}

/// Issue #15: registration answers a taken address exactly as a new one (status, body,
/// no session either way), so it cannot be used to learn who has an account; the owner's
/// account is untouched and the audit log (admins only) says what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_answers_the_same_for_a_new_and_a_taken_address() {
    let app = TestApp::spawn().await;
    app.register("owner@example.com", PASSWORD).await;
    app.post("/auth/logout", &json!({})).await;

    let attempt = |email: &'static str| {
        let client = crate::support::browser_client();
        let url = app.url("/api/v1/auth/register");
        let origin = app.base.clone();
        async move {
            client
                .post(url)
                .header("Origin", origin)
                .json(&json!({"email": email, "password": "a different passphrase here", "display_name": "Mallory"}))
                .send()
                .await
                .expect("register")
        }
    };
    let taken = attempt("owner@example.com").await;
    let new = attempt("newcomer@example.com").await;
    assert!(
        !sets_session(&taken) && !sets_session(&new),
        "no session either way"
    );
    let (taken_status, new_status) = (taken.status(), new.status());
    let (taken_body, new_body) = (body(taken).await, body(new).await);
    assert_eq!(taken_status, 202);
    assert_eq!(new_status, 202);
    assert_eq!(taken_body, new_body, "the same words for both");
    assert_eq!(new_body["next"], "sign_in", "{new_body}");

    // The owner still signs in with their own password; the newcomer with theirs.
    assert_eq!(app.login("owner@example.com", PASSWORD).await.status(), 200);
    assert_eq!(
        app.login("owner@example.com", "a different passphrase here")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.login("newcomer@example.com", "a different passphrase here")
            .await
            .status(),
        200
    );
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.register("carol@example.com", PASSWORD).await;
    app.post("/auth/logout", &json!({})).await;

    let wrong = app
        .login("carol@example.com", "not the right password")
        .await;
    assert!(!sets_session(&wrong));
    let (wrong_status, wrong_body) = (wrong.status(), body(wrong).await);
    let unknown = app
        .login("nobody@example.com", "not the right password")
        .await;
    let (unknown_status, unknown_body) = (unknown.status(), body(unknown).await);
    assert_eq!(wrong_status, 401);
    assert_eq!(unknown_status, 401);
    assert_eq!(wrong_body["error"]["code"], unknown_body["error"]["code"]);
    assert_eq!(
        wrong_body["error"]["message"],
        unknown_body["error"]["message"]
    );
    assert_eq!(app.me_status().await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_rate_limited_per_account_and_per_ip() {
    let app = TestApp::spawn_with(vec![
        ("WEBSPLAT_RATE_LIMIT_PER_ACCOUNT".into(), "3".into()),
        ("WEBSPLAT_RATE_LIMIT_PER_IP".into(), "8".into()),
        ("WEBSPLAT_RATE_LIMIT_WINDOW".into(), "10m".into()),
    ])
    .await;
    // Registering signs in once (as the sign-in page does): one of the account's 3.
    app.register("dave@example.com", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(
            app.login("dave@example.com", "wrong password here")
                .await
                .status(),
            401
        );
    }
    let limited = app.login("dave@example.com", PASSWORD).await;
    assert_eq!(
        limited.status(),
        429,
        "even the right password waits out the window"
    );
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(limited, 429).await, "rate_limited");

    // Other accounts from the same address count towards the per-IP limit (8 hits).
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(
            app.login(&format!("user{i}@example.com"), "wrong password here")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 429]);
    // Read in the process: a scraper signing in from this address would be held up too.
    let metrics = {
        use prometheus::Encoder;
        let mut text = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&app.state.metrics.registry().gather(), &mut text)
            .expect("encode");
        String::from_utf8(text).expect("UTF-8")
    };
    assert!(
        metrics.contains(r#"websplat_sign_ins_total{outcome="rate_limited",provider="local"}"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_appears_in_the_database_or_the_logs() {
    let logs = Logs::capture();
    let app = TestApp::spawn().await;
    let secret = "zebra-unicorn-waffle-9137";
    assert_eq!(app.register("erin@example.com", secret).await.status(), 200);
    app.post("/auth/logout", &json!({})).await;
    assert_eq!(app.login("erin@example.com", secret).await.status(), 200);
    assert_eq!(
        app.login("erin@example.com", "zebra-unicorn-waffle-0000")
            .await
            .status(),
        401
    );

    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Dump {
        #[diesel(sql_type = diesel::sql_types::Text)]
        t: String,
    }
    let mut conn = app.db.connect().await;
    let rows: Vec<Dump> = diesel::sql_query(
        "SELECT row_to_json(c)::text AS t FROM local_credentials c UNION ALL SELECT row_to_json(u)::text FROM users u UNION ALL SELECT row_to_json(i)::text FROM identities i",
    )
    .load(&mut conn)
    .await
    .expect("dump");
    let dump: String = rows.into_iter().map(|r| r.t).collect();
    assert!(dump.contains("$argon2id$"), "{dump}");
    assert!(!dump.contains(secret) && !dump.contains("zebra"), "{dump}");
    let text = logs.text();
    assert!(
        text.contains("sign-in succeeded"),
        "the capture works: {text}"
    );
    assert!(!text.contains("zebra"), "a password reached the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_can_be_closed() {
    let app = TestApp::spawn_with(vec![(
        "WEBSPLAT_REGISTRATION_ENABLED".into(),
        "false".into(),
    )])
    .await;
    let r = app.register("frank@example.com", PASSWORD).await;
    assert_eq!(error_code(r, 403).await, "forbidden");
    let providers = body(app.get("/auth/providers").await).await;
    let local = providers
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["id"] == "local")
        .cloned()
        .expect("local");
    assert_eq!(local["registration_open"], false);
    assert_eq!(app.count("users").await, 0);
}

/// A sign-in attempt from `address` as a proxy in front of the platform relays it: the
/// client's own `X-Forwarded-For` (which it may have made up) with the address the proxy
/// saw appended.
async fn login_via_proxy(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded_for: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/v1/auth/login"))
        .header("Origin", &app.base)
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
}

/// Behind one trusted proxy the client is the rightmost hop, not the leftmost one the
/// client writes itself; IPv6 addresses count by their /64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_is_the_rightmost_hop_the_trusted_proxy_added() {
    let app = TestApp::spawn_with(vec![
        ("WEBSPLAT_TRUST_FORWARDED_FOR".into(), "true".into()),
        ("WEBSPLAT_RATE_LIMIT_PER_IP".into(), "3".into()),
        ("WEBSPLAT_RATE_LIMIT_WINDOW".into(), "10m".into()),
    ])
    .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let chain = format!("198.51.100.{i}, 203.0.113.9");
        let r = login_via_proxy(
            &app,
            &format!("n{i}@example.com"),
            "wrong password here",
            &chain,
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429],
        "a made-up first hop does not help"
    );
    let mut statuses = Vec::new();
    for i in 0..4 {
        let chain = format!("2001:db8:7:9::{}", i + 1);
        let r = login_via_proxy(
            &app,
            &format!("v{i}@example.com"),
            "wrong password here",
            &chain,
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429], "one /64 is one client");
}

/// Failures from one address cannot lock the account's owner out from another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_elsewhere_do_not_lock_the_owner_out() {
    let app = TestApp::spawn_with(vec![
        ("WEBSPLAT_TRUST_FORWARDED_FOR".into(), "true".into()),
        ("WEBSPLAT_RATE_LIMIT_PER_ACCOUNT".into(), "3".into()),
        ("WEBSPLAT_RATE_LIMIT_WINDOW".into(), "10m".into()),
    ])
    .await;
    app.register("dave@example.com", PASSWORD).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = login_via_proxy(
            &app,
            "dave@example.com",
            "guess guess guess",
            "203.0.113.66",
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429], "the guesser is held up");
    let r = login_via_proxy(&app, "dave@example.com", PASSWORD, "192.0.2.5").await;
    assert_eq!(r.status(), 200, "Dave still signs in from his own address");
}
