//! Abuse of the way into a workspace, tried as an attacker would: a handoff link minted by
//! one person and opened in another's browser (login CSRF), cross-site writes that carry no
//! `Origin`, and floods of workspace openings.

use super::helpers::*;

/// Mallory mints a link into her own workspace and gets Alice to open it: were it
/// redeemed, Alice would then type her work into Mallory's workspace. The code is bound
/// to the browser that asked for it, so Alice's browser gets no session there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_link_works_only_in_the_browser_that_asked_for_it() {
    let app = app_with_workspaces(&[]).await;
    let mallory = Person::sign_up(&app, "alice.smith@example.org").await;
    let alice = Person::sign_up(&app, "alice.smith@example.com").await;
    let link = mallory.handoff_link(&app).await;

    let r = alice
        .client
        .get(&link)
        .header("Accept", "text/html")
        .send()
        .await
        .expect("handoff");
    assert_eq!(r.status(), 400, "a planted link is refused");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        !cookies.iter().any(|c| c.starts_with("websplat_ws=")),
        "no workspace session for Alice in Mallory's workspace: {cookies:?}"
    );
    let page = r.text().await.unwrap_or_default();
    assert!(
        page.contains("was not opened in this browser"),
        "the page says why: {page}"
    );

    // The code was spent by the refusal: Mallory cannot use it either, but her own browser
    // still opens her workspace the normal way.
    let r = mallory.client.get(&link).send().await.expect("again");
    assert_eq!(r.status(), 400);
    let origin = mallory.open(&app).await;
    assert!(origin.starts_with("http://alice-smith"), "{origin}");
}

/// A write that a browser sent from another site is refused even when it carries no
/// `Origin`: the browser's `Sec-Fetch-Site` says where it came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_write_without_an_origin_is_refused() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    alice.write_note(&origin, "mine").await;
    for site in ["cross-site", "same-site"] {
        let r = alice
            .client
            .post(format!("{origin}/api/v1/notes"))
            .header("Sec-Fetch-Site", site)
            .header("Accept", "application/json")
            .json(&serde_json::json!({ "text": "planted" }))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 403, "{site}");
        let text = r.text().await.unwrap_or_default();
        assert!(text.contains("cross-origin requests"), "{text}");
    }
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    let notes = r.text().await.unwrap_or_default();
    assert!(!notes.contains("planted"), "nothing was written: {notes}");
}

/// Opening a workspace and redeeming codes are limited: each opening mints a code and may
/// start a container, each redemption costs the session store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_workspace_and_redeeming_codes_are_rate_limited() {
    let app = app_with_workspaces(&[("WEBSPLAT_RATE_LIMIT_WORKSPACE_OPENS", "3")]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = alice
            .client
            .get(app.url(&format!("/workspace/open?bind={}", "ab".repeat(32))))
            .send()
            .await
            .expect("open");
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            let text = r.text().await.unwrap_or_default();
            assert!(text.contains("rate_limited"), "{text}");
        }
    }
    assert_eq!(statuses, [303, 303, 303, 429]);

    let origin = alice.workspace(&app).await["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = alice
            .client
            .get(format!("{origin}/_websplat/handoff?code=guess{i}"))
            .header("Accept", "application/json")
            .send()
            .await
            .expect("redeem");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [400, 400, 400, 429]);
}

/// Signing out on the platform deletes the workspace sessions it made, at once (not when
/// each is next used), and a session ended from another device takes them along too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_deletes_the_workspace_sessions_it_made() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.open(&app).await;
    alice.open(&app).await;
    assert_eq!(ws_sessions(&app).await, 2);
    alice.sign_out(&app).await;
    assert_eq!(
        ws_sessions(&app).await,
        0,
        "no workspace session outlives sign-out"
    );
}

/// How many workspace sessions this test's platform keeps in Redis.
async fn ws_sessions(app: &crate::helpers::TestApp) -> usize {
    let pattern = app.state.kv.key("ws-session:*");
    app.state
        .kv
        .run(async move |c| {
            redis::cmd("KEYS")
                .arg(&pattern)
                .query_async::<Vec<String>>(c)
                .await
        })
        .await
        .expect("keys")
        .len()
}

/// Opening a workspace that is already up changes nothing, so it must not queue behind the
/// admission lock that starts serialise on (held here as a long admission would hold it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_running_workspace_does_not_wait_for_the_admission_lock() {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let mut conn = app.db.connect().await;
    let (held, release) = tokio::sync::oneshot::channel::<()>();
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn(async move {
        conn.transaction::<_, diesel::result::Error, _>(async |c| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(72010002)")
                .execute(c)
                .await?;
            let _ = done.send(());
            let _ = release.await;
            Ok(())
        })
        .await
        .expect("the lock");
    });
    finished.await.expect("lock held");
    let opened = tokio::time::timeout(std::time::Duration::from_secs(20), alice.open(&app)).await;
    let _ = held.send(());
    holder.await.expect("holder");
    assert!(
        opened.is_ok(),
        "opening a running workspace waited for the admission lock"
    );
}

/// Progress streams share the replica's one Redis subscription instead of opening a Redis
/// connection each, and one user holds only a few open at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_share_one_subscription_and_are_capped_per_user() {
    let app = crate::helpers::TestApp::spawn().await;
    let r = app
        .register("alice@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(r.status(), 200);
    let mut open = Vec::new();
    for _ in 0..4 {
        let r = app.get("/api/v1/workspace/events").await;
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    let me = crate::helpers::body(app.get("/api/v1/me").await).await;
    let user = platform::users::UserId(
        me["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("my id"),
    );
    let channel = app.state.tenants.routing.channel(user);
    let subscribers: Vec<(String, i64)> = app
        .state
        .kv
        .run(async move |c| {
            redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(c)
                .await
        })
        .await
        .expect("numsub");
    assert!(
        subscribers.iter().all(|(_, n)| *n <= 1),
        "one Redis subscription per replica, not per stream: {subscribers:?}"
    );
    let r = app.get("/api/v1/workspace/events").await;
    assert_eq!(r.status(), 429, "a fifth stream is refused");
    let text = r.text().await.unwrap_or_default();
    assert!(text.contains("progress streams open"), "{text}");
    // A closed tab gives its place back once the platform notices (at the next heartbeat
    // it fails to write, every 15 s).
    drop(open.pop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let r = app.get("/api/v1/workspace/events").await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 429);
        assert!(
            std::time::Instant::now() < deadline,
            "a closed stream never gave its place back"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
