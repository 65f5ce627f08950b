//! Sign-in with external providers: the real `oidc-provider-mock`, crafted ID tokens from a
//! local provider, and GitHub's wire format. Every refusal is a 4xx with no session and no
//! new user row.

use reqwest::Response;
use serde_json::json;

use crate::forge::{self, Forge, Signing};
use crate::github::{self, FakeGithub};
use crate::helpers::{TestApp, body, error_code, sets_session};
use crate::support::{
    OidcProviderMock, answer_at_mock, browser_client, location, oidc_env, query_param,
    sign_in_at_mock,
};

async fn with_mock() -> (TestApp, OidcProviderMock) {
    let mock = OidcProviderMock::start(&[json!({
        "sub": "alice", "name": "Alice Liddell", "email": "alice@example.com", "email_verified": true
    })])
    .await;
    let app = TestApp::spawn_with(oidc_env("mock", &mock.issuer, "websplat-test")).await;
    (app, mock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_creates_one_user_and_identity_and_reuses_them() {
    let (app, _mock) = with_mock().await;

    let providers = body(app.get("/auth/providers").await).await;
    assert!(
        providers
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p["id"] == "mock" && p["kind"] == "oidc" && p["display_name"] == "mock SSO"),
        "{providers}"
    );

    let callback = sign_in_at_mock(
        &app.client,
        &app.url("/auth/login/mock?return_to=/dashboard?tab=tokens"),
        "alice",
    )
    .await;
    assert_eq!(
        callback.status(),
        303,
        "{}",
        callback.text().await.unwrap_or_default()
    );
    assert_eq!(location(&callback), "/dashboard?tab=tokens");
    assert!(sets_session(&callback));
    let me = body(app.get("/api/v1/me").await).await;
    assert_eq!(me["display_name"], "Alice Liddell");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["identities"][0]["provider"], "mock");
    assert_eq!(
        (app.count("users").await, app.count("identities").await),
        (1, 1)
    );

    // A second sign-in, from another browser, is the same account.
    let other = browser_client();
    let again = sign_in_at_mock(&other, &app.url("/auth/login/mock"), "alice").await;
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), "/dashboard");
    let me_again = body(other.get(app.url("/api/v1/me")).send().await.expect("me")).await;
    assert_eq!(me_again["id"], me["id"]);
    assert_eq!(
        (app.count("users").await, app.count("identities").await),
        (1, 1)
    );

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_sign_ins_total{outcome="success",provider="mock"} 2"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_at_the_provider_is_a_4xx_without_session() {
    let (app, _mock) = with_mock().await;
    let callback_url = answer_at_mock(
        &app.client,
        &app.url("/auth/login/mock"),
        &[("action", "deny")],
    )
    .await;
    assert_eq!(
        query_param(&callback_url, "error").as_deref(),
        Some("access_denied")
    );
    let callback = app
        .client
        .get(&callback_url)
        .send()
        .await
        .expect("callback");
    assert!(!sets_session(&callback));
    let code = error_code(callback, 400).await;
    assert_eq!(code, "provider_error");

    // A person's browser gets a page saying why, with the way back.
    let page = app
        .client
        .get(&callback_url)
        .header("Accept", "text/html")
        .send()
        .await
        .expect("callback");
    assert_eq!(page.status(), 400);
    assert!(!sets_session(&page));
    let html = page.text().await.expect("html");
    assert!(
        html.contains("the provider refused the sign-in: access_denied"),
        "{html}"
    );
    assert!(html.contains(r#"href="/login""#), "{html}");

    // What the provider says is shown as text, never as markup.
    let page = app
        .client
        .get(app.url("/auth/callback/mock"))
        .query(&[
            ("error", "access_denied"),
            ("error_description", "<script>alert(1)</script>"),
        ])
        .header("Accept", "text/html")
        .send()
        .await
        .expect("callback");
    let html = page.text().await.expect("html");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>alert"),
        "{html}"
    );

    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.me_status().await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_wrong_and_replayed_state_are_refused() {
    let (app, _mock) = with_mock().await;

    let missing = app.get("/auth/callback/mock?code=abc").await;
    assert!(!sets_session(&missing));
    error_code(missing, 400).await;

    let _ = app.get("/auth/login/mock").await;
    let wrong = app
        .get("/auth/callback/mock?code=abc&state=not-the-state")
        .await;
    error_code(wrong, 400).await;

    // A full sign-in, then the provider's redirect replayed.
    let callback_url = answer_at_mock(
        &app.client,
        &app.url("/auth/login/mock"),
        &[("sub", "alice")],
    )
    .await;
    assert_eq!(
        app.client
            .get(&callback_url)
            .send()
            .await
            .expect("first")
            .status(),
        303
    );
    let fresh = browser_client();
    let replayed = fresh.get(&callback_url).send().await.expect("replay");
    assert!(!sets_session(&replayed));
    error_code(replayed, 400).await;
    let replayed_same_browser = app.client.get(&callback_url).send().await.expect("replay");
    error_code(replayed_same_browser, 400).await;
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_in_another_browser_is_refused() {
    let (app, _mock) = with_mock().await;
    let callback_url = answer_at_mock(
        &app.client,
        &app.url("/auth/login/mock"),
        &[("sub", "alice")],
    )
    .await;
    // An attacker's browser holds no login cookie from this flow (login CSRF).
    let attacker = browser_client();
    let r = attacker.get(&callback_url).send().await.expect("callback");
    assert!(!sets_session(&r));
    error_code(r, 400).await;
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_off_site_is_refused() {
    let (app, _mock) = with_mock().await;
    for bad in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "evil.example",
    ] {
        let r = app
            .client
            .get(app.url("/auth/login/mock"))
            .query(&[("return_to", bad)])
            .send()
            .await
            .expect("login");
        assert_eq!(error_code(r, 400).await, "validation_failed", "{bad}");
    }
    let unknown = app.get("/auth/login/nope").await;
    error_code(unknown, 404).await;
}

/// Starts a sign-in with the forge; returns (state, nonce).
async fn start_forge(app: &TestApp) -> (String, String) {
    let r = app.get("/auth/login/forge").await;
    assert_eq!(r.status(), 302);
    let to = location(&r);
    assert_eq!(
        query_param(&to, "code_challenge_method").as_deref(),
        Some("S256")
    );
    (
        query_param(&to, "state").expect("state"),
        query_param(&to, "nonce").expect("nonce"),
    )
}

async fn callback(app: &TestApp, state: &str) -> Response {
    app.client
        .get(app.url("/auth/callback/forge"))
        .query(&[("code", "forged-code"), ("state", state)])
        .send()
        .await
        .expect("callback")
}

async fn with_forge() -> (TestApp, Forge) {
    let forge = Forge::start().await;
    let app = TestApp::spawn_with(oidc_env("forge", &forge.issuer, forge::CLIENT_ID)).await;
    (app, forge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_crafted_token_signs_in() {
    // Proves the forge itself is right, so the refusals below are the platform's doing.
    let (app, forge) = with_forge().await;
    let (state, nonce) = start_forge(&app).await;
    forge.serve_token(&forge.claims(&nonce), Signing::Key("a"));
    let r = callback(&app, &state).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        body(app.get("/api/v1/me").await).await["display_name"],
        "Forge User"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_id_tokens_are_refused_without_session_or_user() {
    let (app, forge) = with_forge().await;
    let now = chrono::Utc::now().timestamp();
    type Mutate = fn(&mut serde_json::Value, i64);
    let keep: Mutate = |_, _| {};
    let cases: [(&str, Mutate, Signing, &str); 10] = [
        ("bad signature", keep, Signing::Tampered, "signature"),
        ("alg none", keep, Signing::None, "not signed"),
        (
            "HS256 with the client secret",
            keep,
            Signing::Hs256,
            "algorithm",
        ),
        ("unpublished key", keep, Signing::Key("b"), "key"),
        (
            "expired",
            |c, now| {
                c["exp"] = (now - 60).into();
                c["iat"] = (now - 400).into();
            },
            Signing::Key("a"),
            "expired",
        ),
        (
            "wrong iss",
            |c, _| c["iss"] = "http://127.0.0.1:1".into(),
            Signing::Key("a"),
            "issuer",
        ),
        (
            "wrong aud",
            |c, _| c["aud"] = "someone-else".into(),
            Signing::Key("a"),
            "another client",
        ),
        (
            "several audiences without azp",
            |c, _| {
                c["aud"] = json!([forge::CLIENT_ID, "someone-else"]);
            },
            Signing::Key("a"),
            "another client",
        ),
        (
            "wrong nonce",
            |c, _| c["nonce"] = "not-the-nonce".into(),
            Signing::Key("a"),
            "nonce",
        ),
        (
            "iat in the future",
            |c, now| {
                c["iat"] = (now + 3600).into();
                c["exp"] = (now + 7200).into();
            },
            Signing::Key("a"),
            "future",
        ),
    ];
    for (name, mutate, signing, says) in cases {
        let (state, nonce) = start_forge(&app).await;
        let mut claims = forge.claims(&nonce);
        mutate(&mut claims, now);
        forge.serve_token(&claims, signing);
        let r = callback(&app, &state).await;
        assert!(!sets_session(&r), "{name}: a session was set");
        let status = r.status().as_u16();
        let b = body(r).await;
        assert_eq!(status, 400, "{name}: {b}");
        let message = b["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(says),
            "{name}: the message {message:?} should mention {says:?}"
        );
        assert_eq!(app.me_status().await, 401, "{name}");
    }
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("identities").await, 0);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_sign_ins_total{outcome="failure",provider="forge"} 10"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_is_fetched_again() {
    let (app, forge) = with_forge().await;
    let (state, nonce) = start_forge(&app).await;
    forge.serve_token(&forge.claims(&nonce), Signing::Key("a"));
    assert_eq!(callback(&app, &state).await.status(), 303);

    // The provider rotates to key b; the platform still holds a's JWKS.
    forge.publish(&["b"]);
    let (state, nonce) = start_forge(&app).await;
    forge.serve_token(&forge.claims(&nonce), Signing::Key("b"));
    let r = callback(&app, &state).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_mix_up_is_refused() {
    let forge = Forge::start().await;
    let mock = OidcProviderMock::start(&[]).await;
    let mut env = oidc_env("forge", &forge.issuer, forge::CLIENT_ID);
    env.extend(oidc_env("mock", &mock.issuer, "websplat-test"));
    let app = TestApp::spawn_with(env).await;

    // A sign-in started with the mock, answered at the forge's callback.
    let to_mock = app.get("/auth/login/mock").await;
    let state = query_param(&location(&to_mock), "state").expect("state");
    let (_, nonce) = (
        "",
        query_param(&location(&to_mock), "nonce").expect("nonce"),
    );
    forge.serve_token(&forge.claims(&nonce), Signing::Key("a"));
    let r = callback(&app, &state).await;
    assert!(!sets_session(&r));
    let b = body(r).await;
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("another provider"),
        "{b}"
    );

    // An answer naming another issuer (RFC 9207 `iss`) is refused too.
    let (state, nonce) = start_forge(&app).await;
    forge.serve_token(&forge.claims(&nonce), Signing::Key("a"));
    let r = app
        .client
        .get(app.url("/auth/callback/forge"))
        .query(&[
            ("code", "c"),
            ("state", state.as_str()),
            ("iss", mock.issuer.as_str()),
        ])
        .send()
        .await
        .expect("callback");
    error_code(r, 400).await;
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_sign_in_uses_the_api_user_and_primary_email() {
    let gh = FakeGithub::start().await;
    let app = TestApp::spawn_with(gh.env()).await;
    let providers = body(app.get("/auth/providers").await).await;
    assert!(
        providers
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p["id"] == "github" && p["kind"] == "github")
    );

    let r = app.get("/auth/login/github?return_to=/dashboard").await;
    assert_eq!(r.status(), 302);
    let to = location(&r);
    assert!(
        to.starts_with(&format!("{}/login/oauth/authorize?", gh.base)),
        "{to}"
    );
    assert_eq!(
        query_param(&to, "client_id").as_deref(),
        Some(github::CLIENT_ID)
    );
    assert_eq!(
        query_param(&to, "redirect_uri"),
        Some(app.url("/auth/callback/github"))
    );
    let state = query_param(&to, "state").expect("state");

    // GitHub redirects back with a code.
    let cb = app
        .client
        .get(app.url("/auth/callback/github"))
        .query(&[("code", github::CODE), ("state", state.as_str())])
        .send()
        .await
        .expect("callback");
    assert_eq!(cb.status(), 303, "{}", cb.text().await.unwrap_or_default());
    let me = body(app.get("/api/v1/me").await).await;
    assert_eq!(me["display_name"], "The Octocat");
    assert_eq!(me["email"], "octocat@example.com");
    assert_eq!(me["identities"][0]["provider"], "github");
    let requests = gh.token_requests.lock().expect("requests").clone();
    assert!(
        requests[0].iter().any(|(k, _)| k == "code_verifier"),
        "PKCE verifier sent: {requests:?}"
    );

    // A bad code is a refusal, not a crash.
    let r = app.get("/auth/login/github").await;
    let state = query_param(&location(&r), "state").expect("state");
    let bad = app
        .client
        .get(app.url("/auth/callback/github"))
        .query(&[("code", "wrong"), ("state", state.as_str())])
        .send()
        .await
        .expect("callback");
    error_code(bad, 400).await;
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_identity_with_a_known_email_gets_its_own_account() {
    let (app, _mock) = with_mock().await;
    app.signed_in("alice@example.com").await;
    let other = browser_client();
    let r = sign_in_at_mock(&other, &app.url("/auth/login/mock"), "alice").await;
    assert_eq!(r.status(), 303);
    // Same e-mail, different (provider, subject): never merged by e-mail alone.
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_client_follows_no_redirects() {
    let forge = Forge::start().await;
    // A "provider" whose discovery document redirects to a real one elsewhere.
    let target = format!("{}/.well-known/openid-configuration", forge.issuer);
    let hop = crate::helpers::LocalServer::start(move |cfg| {
        let target = target.clone();
        cfg.route(
            "/.well-known/openid-configuration",
            actix_web::web::get().to(move || {
                let target = target.clone();
                async move {
                    actix_web::HttpResponse::Found()
                        .insert_header(("Location", target))
                        .finish()
                }
            }),
        );
    });
    let app = TestApp::spawn_with(oidc_env("hop", &hop.base, forge::CLIENT_ID)).await;
    let r = app.get("/auth/login/hop").await;
    assert_eq!(error_code(r, 503).await, "unavailable");
    assert_eq!(app.count("users").await, 0);
}
