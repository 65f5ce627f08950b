//! One user starving the proxy, tried as an attacker would: requests and WebSockets held
//! open, floods of requests to a workspace origin or from one address, an upload that
//! trickles forever; and a route whose runtime refuses it (401), which must never reach
//! the browser as a raw 401.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::helpers::*;

/// The port and `host:port` of a workspace origin.
fn host_port(origin: &str) -> (String, u16) {
    let host = origin.trim_start_matches("http://").to_owned();
    let port = host
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    (host, port)
}

/// Reads a response head off a raw socket.
async fn head_of(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read_exact(&mut byte).await.is_err() {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_string()
}

/// An upload whose head is sent and whose body never comes: a request in progress.
async fn upload_held_open(origin: &str, cookie: &str) -> TcpStream {
    let (host, port) = host_port(origin);
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/uploads?name=slow.bin HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nCookie: {cookie}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\nfirst bytes"
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket
}

/// A WebSocket handshake; returns the socket and the answer's head.
async fn websocket(origin: &str, cookie: &str) -> (TcpStream, String) {
    let (host, port) = host_port(origin);
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\nCookie: {cookie}\r\nAccept: application/json\r\n\r\n"
    );
    socket
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let head = head_of(&mut socket).await;
    (socket, head)
}

async fn get(person: &Person, origin: &str, path: &str) -> reqwest::Response {
    person
        .client
        .get(format!("{origin}{path}"))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("request")
}

/// Polls until `path` answers 200 (what a user retrying sees), within `limit`.
async fn until_ok(person: &Person, origin: &str, path: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let status = get(person, origin, path).await.status();
        if status == 200 {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{path} still answers {status} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Requests held open (uploads that never finish) and WebSockets take a workspace's places
/// on the proxy, up to its caps: beyond them, 429 in words with `Retry-After`, and the
/// places come back when the connections go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_holds_only_so_many_requests_and_websockets_at_once() {
    let app = app_with_workspaces(&[
        ("WEBSPLAT_PROXY_MAX_REQUESTS_PER_WORKSPACE", "2"),
        ("WEBSPLAT_PROXY_MAX_WEBSOCKETS_PER_WORKSPACE", "1"),
    ])
    .await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let (origin, cookie) = alice.open_with_cookie(&app).await;
    until_ok(&alice, &origin, "/api/v1/notes", Duration::from_secs(60)).await;

    let first = upload_held_open(&origin, &cookie).await;
    let _second = upload_held_open(&origin, &cookie).await;
    // The uploads are in progress once the proxy has taken them: poll for the refusal.
    let started = Instant::now();
    let refused = loop {
        let r = get(&alice, &origin, "/api/v1/notes").await;
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a third request in progress was let through"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused.headers().contains_key("retry-after"));
    let text = refused.text().await.unwrap_or_default();
    assert!(text.contains("2 requests in progress"), "{text}");
    // One upload gone: its place comes back.
    drop(first);
    until_ok(&alice, &origin, "/api/v1/notes", Duration::from_secs(10)).await;

    let (ws, head) = websocket(&origin, &cookie).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_, head) = websocket(&origin, &cookie).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    drop(ws);
    let started = Instant::now();
    loop {
        let (_ws, head) = websocket(&origin, &cookie).await;
        if head.starts_with("HTTP/1.1 101") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a closed WebSocket never gave its place back: {head}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A workspace takes so many requests a minute, and one address so many on all workspace
/// origins (signed in or not, whatever `X-Forwarded-For` it writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_origins_are_rate_limited_per_workspace_and_per_address() {
    let app = app_with_workspaces(&[
        ("WEBSPLAT_PROXY_REQUESTS_PER_MINUTE", "5"),
        ("WEBSPLAT_PROXY_REQUESTS_PER_MINUTE_PER_IP", "12"),
    ])
    .await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    // The handoff's two requests count against the address, not the workspace.
    let origin = alice.open(&app).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            get(&alice, &origin, "/api/v1/notes")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    let r = get(&alice, &origin, "/api/v1/notes").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let text = r.text().await.unwrap_or_default();
    assert!(text.contains("more than 5 a minute"), "{text}");

    // Nine requests from this address so far; three more anywhere, then none.
    let stranger = browser();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = stranger
            .get(origin.replace("alice", &format!("nobody{i}")) + "/api/v1/notes")
            .header("Accept", "application/json")
            .header("X-Forwarded-For", format!("10.0.0.{i}"))
            .send()
            .await
            .expect("request");
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let text = r.text().await.unwrap_or_default();
            assert!(text.contains("from your address"), "{text}");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
}

/// An upload that keeps sending a little, never going quiet long enough for the idle
/// timeout, is cut at the overall deadline with 408 in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_trickles_past_the_deadline_is_cut_with_408() {
    let app = app_with_workspaces(&[("WEBSPLAT_PROXY_BODY_DEADLINE", "2s")]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let (origin, cookie) = alice.open_with_cookie(&app).await;
    until_ok(&alice, &origin, "/api/v1/notes", Duration::from_secs(60)).await;
    let socket = upload_held_open(&origin, &cookie).await;
    let (mut read, mut write) = socket.into_split();
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(&[7u8; 512]).await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), read.read(&mut answer))
        .await
        .expect("the proxy answers within 30 s (it cut the upload)")
        .expect("read");
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "cut after {waited:?}"
    );
    // The body may follow the head in a later read.
    let mut rest = vec![0u8; 4096];
    let more = tokio::time::timeout(Duration::from_secs(5), read.read(&mut rest))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    let all = answer + String::from_utf8_lossy(&rest[..more]).as_ref();
    assert!(
        all.contains("did not arrive whole within 2 seconds"),
        "{all}"
    );
}

/// Alice's route points at an address another runtime (Bob's) answers on now, as after a
/// container was replaced and its address reused: that runtime refuses the signature (401).
/// Alice sees neither that 401 nor anything of Bob's: the route is dropped and her
/// workspace replaced on the same volume, her note still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_its_runtime_refuses_is_replaced_not_shown_as_a_401() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    alice.wait_for(&app, "ready").await;
    bob.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    alice.write_note(&origin, "kept across the move").await;
    let bob_origin = bob.open(&app).await;
    bob.write_note(&bob_origin, "bob's own").await;

    let routing = &app.state.tenants.routing;
    let slug_of = |origin: &str| {
        let host = origin.trim_start_matches("http://");
        platform::tenants::Slug::parse(host.split('.').next().expect("label")).expect("slug")
    };
    let (alice_slug, bob_slug) = (slug_of(&origin), slug_of(&bob_origin));
    let mut stale = routing
        .route(&alice_slug)
        .await
        .expect("redis")
        .expect("alice's route");
    let old_tenant = stale.tenant;
    stale.address = routing
        .route(&bob_slug)
        .await
        .expect("redis")
        .expect("bob's route")
        .address;
    routing.put_route(&alice_slug, &stale).await.expect("put");

    let r = get(&alice, &origin, "/api/v1/notes").await;
    let status = r.status();
    let retry_after = r.headers().contains_key("retry-after");
    let text = r.text().await.unwrap_or_default();
    assert_ne!(
        status, 401,
        "the runtime's refusal reached the browser: {text}"
    );
    assert!(!text.contains("bob's own"), "{text}");
    assert_eq!(status, 503, "{text}");
    assert!(retry_after, "told when to come back");
    assert!(text.contains("workspace"), "{text}");

    // Retrying as the page does: a new runtime on the same volume answers.
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap_or_default();
    assert!(text.contains("kept across the move"), "{text}");
    assert!(!text.contains("bob's own"), "{text}");
    let now = routing
        .route(&alice_slug)
        .await
        .expect("redis")
        .expect("a new route");
    assert_ne!(now.tenant, old_tenant, "a new tenant serves Alice");
    // Bob's workspace is untouched.
    let r = get(&bob, &bob_origin, "/api/v1/notes").await;
    assert_eq!(r.status(), 200);
}

/// A route this replica held went out of date without a word reaching it (the tenant was
/// replaced; the announcement lost): the runtime's 401 makes the proxy read the route
/// again and retry the request once, so the user sees only their answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_held_out_of_date_is_read_again_and_the_request_retried() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    alice.write_note(&origin, "still mine").await;
    let routing = &app.state.tenants.routing;
    let host = origin.trim_start_matches("http://");
    let slug =
        platform::tenants::Slug::parse(host.split('.').next().expect("label")).expect("slug");
    let good = routing.route(&slug).await.expect("redis").expect("route");
    let mut bad = good.clone();
    // Another tenant's id: the runtime refuses what is signed with the secret derived from it.
    bad.tenant = platform::tenants::TenantId(uuid::Uuid::new_v4());
    // Redis gets the bad route behind the cache's back; the cache reads it; then Redis gets
    // the good one back, again without a word.
    let raw = |route: &platform::tenants::routing::Route| {
        let key = app.state.kv.key(&format!("tenant-route:{slug}"));
        let body = serde_json::to_string(route).expect("json");
        let kv = app.state.kv.clone();
        async move {
            kv.run(async move |c| {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&body)
                    .query_async::<()>(c)
                    .await
            })
            .await
            .expect("set")
        }
    };
    raw(&bad).await;
    routing.fresh_route(&slug).await.expect("forget");
    let held = routing.lookup(None, &slug).await.expect("lookup").route;
    assert_eq!(held.map(|r| r.tenant), Some(bad.tenant));
    raw(&good).await;

    let r = get(&alice, &origin, "/api/v1/notes").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap_or_default();
    assert!(text.contains("still mine"), "{text}");
    let now = routing.route(&slug).await.expect("redis").expect("route");
    assert_eq!(now.tenant, good.tenant, "the same tenant still serves");
}
