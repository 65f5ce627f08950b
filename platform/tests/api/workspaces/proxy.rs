//! The proxy to a workspace streams: a large upload without holding it in memory, server-sent
//! events and WebSockets.

use std::time::Duration;

use serde_json::json;

use crate::helpers::body;

use super::helpers::*;

/// Peak resident memory of this process (the platform runs in it), in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_streams_a_large_upload_sse_and_websockets() {
    let app = app_with_workspaces(&[
        ("WEBSPLAT_PROXY_MAX_BODY_BYTES", "157286400"),
        ("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false"),
    ])
    .await;
    // A level whose uploads may be that large (the runtime holds staged uploads to it).
    let alice = alice_on_a_level(&app, "large-uploads", 1024, 1024, 128).await;
    let origin = alice.open(&app).await;
    // Warm up the connection pool and the runtime.
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);

    // 100 MB, generated as it is sent; the platform must not hold it.
    const SIZE: u64 = 100 * 1024 * 1024;
    const CHUNK: usize = 256 * 1024;
    let before = peak_rss();
    let chunks = (SIZE as usize).div_ceil(CHUNK);
    let stream = futures_util::stream::iter((0..chunks).map(|i| {
        let byte = (i % 251) as u8;
        Ok::<_, std::io::Error>(vec![byte; CHUNK])
    }));
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    for i in 0..chunks {
        sha2::Digest::update(&mut hasher, vec![(i % 251) as u8; CHUNK]);
    }
    let expected: String = sha2::Digest::finalize(hasher)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let r = alice
        .client
        .post(format!("{origin}/api/v1/uploads?name=big.bin"))
        .header("Origin", &origin)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", SIZE)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let stored = body(r).await;
    assert_eq!(stored["bytes"], SIZE);
    assert_eq!(
        stored["sha256"],
        expected.as_str(),
        "the bytes arrived intact"
    );
    let grew = peak_rss().saturating_sub(before);
    assert!(
        grew < 48 * 1024 * 1024,
        "the proxy held {} MiB of a 100 MiB upload",
        grew / (1024 * 1024)
    );
    // Over the proxy's limit: refused on the declared length, before a byte is relayed
    // (a raw request, so nothing but the proxy's answer can end it).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_, cookie) = alice.open_with_cookie(&app).await;
    let host = origin.trim_start_matches("http://").to_owned();
    let port: u16 = host
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let too_big = format!(
        "POST /api/v1/uploads HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nCookie: {cookie}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        200u64 * 1024 * 1024
    );
    socket
        .write_all(too_big.as_bytes())
        .await
        .expect("request head");
    let mut status = vec![0u8; 12];
    socket
        .read_exact(&mut status)
        .await
        .expect("an answer without the body");
    assert_eq!(&status, b"HTTP/1.1 413");
    drop(socket);

    // SSE: a job's progress streams through to its end.
    let r = alice
        .call(
            &origin,
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "Streams"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let project = body(r).await["id"].as_str().expect("project id").to_owned();
    let r = alice
        .call(
            &origin,
            reqwest::Method::POST,
            &format!("/api/v1/projects/{project}/exports"),
            Some(json!({"format": "site"})),
        )
        .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await["id"].as_str().expect("job id").to_owned();
    let r = alice
        .client
        .get(format!("{origin}/api/v1/jobs/{job}/events"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("events");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/event-stream")
    );
    let text = tokio::time::timeout(Duration::from_secs(60), r.text())
        .await
        .expect("the stream ends")
        .expect("text");
    assert!(text.contains("data: ") && text.contains(&job), "{text}");

    // WebSocket: upgraded through the proxy; a ping comes back as a pong.
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\nCookie: {cookie}\r\n\r\n"
    );
    socket
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).await.expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // A masked ping frame with the payload "hi".
    let mask = [1u8, 2, 3, 4];
    let payload: Vec<u8> = b"hi"
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let mut frame = vec![0x89, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend_from_slice(&payload);
    socket.write_all(&frame).await.expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut header = [0u8; 2];
            socket.read_exact(&mut header).await.expect("frame");
            let len = usize::from(header[1] & 0x7f);
            let len = match len {
                126 => {
                    let mut ext = [0u8; 2];
                    socket.read_exact(&mut ext).await.expect("len");
                    usize::from(u16::from_be_bytes(ext))
                }
                127 => panic!("no huge frames expected"),
                n => n,
            };
            let mut data = vec![0u8; len];
            socket.read_exact(&mut data).await.expect("payload");
            if header[0] & 0x0f == 0xA {
                return data;
            }
        }
    })
    .await
    .expect("a pong within 10 s");
    assert_eq!(pong, b"hi");
    // A WebSocket from another origin is refused (cross-site WebSocket hijacking).
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let handshake = handshake.replace(&format!("Origin: {origin}"), "Origin: http://evil.example");
    socket
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let mut answer = vec![0u8; 12];
    socket.read_exact(&mut answer).await.expect("answer");
    assert_eq!(&answer, b"HTTP/1.1 403");
}
