//! The WebSocket: pings answered and job progress carried, spoken by a minimal client so the
//! server's side of the protocol is what is tested.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// A minimal WebSocket client over TCP: enough to prove the server's side of the protocol.
struct Ws(tokio::net::TcpStream);

impl Ws {
    async fn connect(port: u16) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        tcp.write_all(
            format!("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").as_bytes(),
        )
        .await
        .expect("handshake");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            tcp.read_exact(&mut byte).await.expect("handshake answer");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        Ws(tcp)
    }

    async fn send_text(&mut self, text: &str) {
        use tokio::io::AsyncWriteExt;
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | text.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.0.write_all(&frame).await.expect("send");
    }

    /// The next frame: (opcode, payload).
    async fn frame(&mut self) -> (u8, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; 2];
        self.0.read_exact(&mut head).await.expect("frame");
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                self.0.read_exact(&mut n).await.expect("len");
                u16::from_be_bytes(n) as usize
            }
            127 => {
                let mut n = [0u8; 8];
                self.0.read_exact(&mut n).await.expect("len");
                u64::from_be_bytes(n) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.0.read_exact(&mut payload).await.expect("payload");
        (head[0] & 0x0f, payload)
    }

    /// The next text message, as JSON (pings from the server are skipped).
    async fn text(&mut self) -> Value {
        loop {
            let (opcode, payload) = tokio::time::timeout(Duration::from_secs(20), self.frame())
                .await
                .expect("a message in time");
            match opcode {
                0x1 => return serde_json::from_slice(&payload).expect("JSON text"),
                0x9 | 0xA => continue,
                other => panic!("unexpected opcode {other}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_answers_pings_and_carries_job_progress() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Live").await;
    let mut ws = Ws::connect(rt.port).await;
    // The server pings at once: a live connection keeps itself alive.
    let (opcode, _) = ws.frame().await;
    assert_eq!(opcode, 0x9, "a ping from the server");
    ws.send_text("ping").await;
    assert_eq!(ws.text().await, json!({"type": "pong"}));

    let job = body(
        rt.post(
            &format!("/api/v1/projects/{id}/generate"),
            &bakery_brief("autonomous"),
        )
        .await,
    )
    .await;
    let job_id = job["id"].as_str().expect("job").to_owned();
    let mut steps = Vec::new();
    loop {
        let message = ws.text().await;
        assert_eq!(message["type"], "job");
        if message["job"]["id"] != job_id.as_str() {
            continue;
        }
        if let Some(step) = message["job"]["step"]
            .as_str()
            .filter(|_| message["job"]["status"] == "running")
        {
            steps.push(step.to_owned());
        }
        if message["job"]["status"] == "succeeded" {
            break;
        }
    }
    assert_eq!(
        steps,
        ["plan", "content", "seo", "layout", "code", "review"]
    );

    // Indexing reports its progress there too, a step per document.
    let r = upload(&rt, vec![("live.txt", b"Live crumbs.".to_vec())]).await;
    let answer = body(r).await;
    let job_id = answer["job"]["id"].as_str().expect("job").to_owned();
    loop {
        let message = ws.text().await;
        if message["type"] != "job" || message["job"]["id"] != job_id.as_str() {
            continue;
        }
        if message["job"]["status"] == "succeeded" {
            assert_eq!(message["job"]["steps"][0]["label"], "live.txt");
            assert_eq!(message["job"]["steps"][0]["state"], "done");
            break;
        }
    }
}
