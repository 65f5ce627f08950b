//! With a tenant secret, only requests the platform signed are answered (the WebSocket
//! upgrade too); a short secret or an owner that is not a UUID stops the runtime at start.

use reqwest::Method;
use serde_json::json;
use tenant_runtime::trust::HEADER as IDENTITY;

use crate::helpers::*;

/// The status line a WebSocket upgrade of `/ws` gets, with `identity` if given.
async fn upgrade_status(port: u16, identity: Option<&str>) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let identity = identity
        .map(|v| format!("{IDENTITY}: {v}\r\n"))
        .unwrap_or_default();
    tcp.write_all(
        format!("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{identity}\r\n").as_bytes(),
    )
    .await
    .expect("handshake");
    let mut line = String::new();
    BufReader::new(tcp)
        .read_line(&mut line)
        .await
        .expect("status line");
    line.trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_tenant_secret_only_requests_the_platform_signed_are_answered() {
    let tenant = Tenant::new();
    let rt = Runtime::start_for(&tenant).await;

    // Unsigned: refused before anything reads it, so nothing is written.
    let r = rt
        .http
        .post(rt.url("/api/v1/notes"))
        .json(&json!({"text": "not from the platform"}))
        .send()
        .await
        .expect("post");
    let refused = error(r, 401).await;
    assert_eq!(refused["error"]["code"], "unauthenticated");
    assert_eq!(
        refused["error"]["message"],
        "this workspace only answers requests relayed by the WebSplat platform"
    );
    for path in [
        "/healthz",
        "/",
        "/static/app.js",
        "/api/v1/whoami",
        "/api/v1/notes",
        "/api/v1/openapi.json",
        "/no/such/thing",
    ] {
        let r = rt.http.get(rt.url(path)).send().await.expect("get");
        assert_eq!(r.status(), 401, "GET {path} unsigned");
    }
    assert!(
        upgrade_status(rt.port, None)
            .await
            .starts_with("HTTP/1.1 401"),
        "an unsigned WebSocket upgrade"
    );

    // Signed, but not right: another secret, another user, too old or too new, another
    // request, a mangled header.
    let now = chrono::Utc::now().timestamp();
    let impostor = Tenant {
        user: tenant.user,
        ..Tenant::new()
    };
    let path = "/api/v1/notes";
    for (what, method, identity) in [
        (
            "another secret",
            Method::GET,
            impostor.identity("GET", path),
        ),
        (
            "another user",
            Method::GET,
            tenant.identity_at(uuid::Uuid::new_v4(), now, "GET", path),
        ),
        (
            "a stale time",
            Method::GET,
            tenant.identity_at(tenant.user, now - 301, "GET", path),
        ),
        (
            "a future time",
            Method::GET,
            tenant.identity_at(tenant.user, now + 301, "GET", path),
        ),
        ("another method", Method::POST, tenant.identity("GET", path)),
        (
            "another query",
            Method::GET,
            tenant.identity("GET", "/api/v1/notes?limit=1"),
        ),
        (
            "an uppercase signature",
            Method::GET,
            tenant.identity("GET", path).to_uppercase(),
        ),
        ("garbage", Method::GET, "v1;user=me".to_owned()),
    ] {
        let r = rt
            .http
            .request(method, rt.url(path))
            .header(IDENTITY, identity)
            .json(&json!({"text": "not from the platform"}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401, "{what}");
    }

    // Signed for the owner: answered, and the owner is known.
    assert_eq!(rt.get("/healthz").await.status(), 200);
    let r = rt.get("/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(rt.get("/static/app.js").await.status(), 200);
    assert_eq!(
        body(rt.get("/api/v1/whoami").await).await,
        json!({"user": tenant.user.to_string(), "tenant_secret_required": true})
    );
    assert_eq!(
        body(rt.get("/api/v1/notes").await).await,
        json!({"items": []}),
        "no refused request wrote anything"
    );
    let r = rt.post("/api/v1/notes", &json!({"text": "relayed"})).await;
    assert_eq!(r.status(), 201);
    let items = body(rt.get("/api/v1/notes?limit=10").await).await["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(items[0]["text"], "relayed", "{items}");
    let status = upgrade_status(rt.port, Some(&tenant.identity("GET", "/ws"))).await;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
}

#[test]
fn a_short_secret_or_an_owner_that_is_not_a_uuid_stops_the_runtime_at_start() {
    let short = "x".repeat(31);
    let user = uuid::Uuid::new_v4().to_string();
    let (code, stderr) = refused_start(&[
        ("WEBSPLAT_TENANT_SECRET", &short),
        ("WEBSPLAT_TENANT_USER", &user),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("WEBSPLAT_TENANT_SECRET") && stderr.contains("32"),
        "{stderr}"
    );
    assert!(!stderr.contains(&short), "the secret is never shown");

    let long = "s".repeat(40);
    let (code, stderr) = refused_start(&[
        ("WEBSPLAT_TENANT_SECRET", &long),
        ("WEBSPLAT_TENANT_USER", "alice"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("WEBSPLAT_TENANT_USER") && stderr.contains("not a UUID"),
        "{stderr}"
    );
}
