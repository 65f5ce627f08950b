//! Staged uploads: large bodies streamed to the volume and back with the hash they were sent
//! with; the quota and the largest upload refuse a body, by its declared length or as it
//! arrives, and leave no file; so does a client that goes away or a runtime killed mid-way.

use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const MIB: u64 = 1 << 20;
const CHUNK: usize = 64 * 1024;

/// A body of `len` pseudo-random bytes, made chunk by chunk and never held whole.
fn generated(len: u64, seed: u64) -> impl Iterator<Item = Vec<u8>> {
    let mut state = seed | 1;
    let mut left = len;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let n = left.min(CHUNK as u64) as usize;
        let mut chunk = Vec::with_capacity(n + 8);
        while chunk.len() < n {
            // xorshift64: cheap, and no two chunks alike.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.extend_from_slice(&state.to_le_bytes());
        }
        chunk.truncate(n);
        left -= n as u64;
        Some(chunk)
    })
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// How a streamed body is framed: with its length up front, or chunked as it comes.
#[derive(Clone, Copy, Debug)]
enum Framing {
    Declared(u64),
    Chunked,
}

/// What a streamed upload sent and got back.
struct Sent {
    status: u16,
    body: Value,
    bytes: u64,
    sha256: String,
}

/// The status and JSON body of a complete HTTP/1.1 response in `raw`, once it is all there.
fn parse_response(raw: &[u8]) -> Option<(u16, Value)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let body = raw.get(end + 4..end + 4 + length)?;
    Some((status, serde_json::from_slice(body).unwrap_or(Value::Null)))
}

/// POSTs `chunks` to `path` over a plain connection, written as they come (reqwest here
/// only sends bodies it holds whole). It stops writing as soon as an answer arrives, as a
/// client does when a server refuses a body early.
async fn stream_upload(
    rt: &Runtime,
    path: &str,
    content_type: Option<&str>,
    framing: Framing,
    chunks: impl Iterator<Item = Vec<u8>>,
) -> Sent {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", rt.port))
        .await
        .expect("connect");
    let (mut rx, mut tx) = tcp.into_split();
    let reader = tokio::spawn(async move {
        let mut raw = Vec::new();
        let mut buf = vec![0; 16 * 1024];
        loop {
            if let Some(answer) = parse_response(&raw) {
                return Some(answer);
            }
            match rx.read(&mut buf).await {
                Ok(0) | Err(_) => return parse_response(&raw),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    });
    let content_type = content_type
        .map(|t| format!("Content-Type: {t}\r\n"))
        .unwrap_or_default();
    let length = match framing {
        Framing::Declared(n) => format!("Content-Length: {n}\r\n"),
        Framing::Chunked => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{content_type}{length}Connection: close\r\n\r\n",
        rt.port
    );
    let (mut hasher, mut bytes) = (Sha256::new(), 0u64);
    let mut open = tx.write_all(head.as_bytes()).await.is_ok();
    for chunk in chunks {
        if !open || reader.is_finished() {
            break;
        }
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
        open = match framing {
            Framing::Declared(_) => tx.write_all(&chunk).await,
            Framing::Chunked => {
                async {
                    tx.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await?;
                    tx.write_all(&chunk).await?;
                    tx.write_all(b"\r\n").await
                }
                .await
            }
        }
        .is_ok();
    }
    if open && matches!(framing, Framing::Chunked) {
        let _ = tx.write_all(b"0\r\n\r\n").await;
    }
    let (status, body) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("an answer within a minute")
        .expect("the reader")
        .expect("a complete HTTP response");
    Sent {
        status,
        body,
        bytes,
        sha256: hex(hasher.finalize()),
    }
}

/// The files in the workspace's `uploads/` directory, partial ones included.
fn stored_files(rt: &Runtime) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(rt.data.join("uploads"))
        .expect("the uploads directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits until `uploads/` holds what `done` wants (an interrupted upload is cleaned up
/// when the runtime notices).
async fn until_stored(rt: &Runtime, what: &str, done: impl Fn(&[String]) -> bool) {
    let started = Instant::now();
    while !done(&stored_files(rt)) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {:?}",
            stored_files(rt)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts a streamed upload of `len` declared bytes, sends `sent` of them and returns the
/// connection once its partial file is on disk.
async fn start_abandoned_upload(rt: &Runtime, len: u64, sent: u64) -> tokio::net::TcpStream {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", rt.port))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/uploads?name=half.bin HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {len}\r\n\r\n",
        rt.port
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    for chunk in generated(sent, 7) {
        tcp.write_all(&chunk).await.expect("part of the body");
    }
    tcp.flush().await.expect("flush");
    until_stored(rt, "the upload is being written", |files| {
        files.iter().any(|f| f.ends_with(".partial"))
    })
    .await;
    tcp
}

fn listed_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_streams_to_the_volume_and_back_unchanged() {
    let rt = Runtime::start().await;
    assert_eq!(
        body(rt.get("/api/v1/uploads").await).await,
        json!({"items": []})
    );
    let before = body(rt.get("/api/v1/usage").await).await["used_bytes"]
        .as_u64()
        .expect("used");

    let len = 30 * MIB + 12_345;
    let name: String =
        url::form_urlencoded::byte_serialize("café archive (1).tar".as_bytes()).collect();
    let sent = stream_upload(
        &rt,
        &format!("/api/v1/uploads?name={name}"),
        Some("application/x-tar"),
        Framing::Chunked,
        generated(len, 42),
    )
    .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let big = sent.body;
    assert_eq!(big["bytes"], sent.bytes);
    assert_eq!(sent.bytes, len);
    assert_eq!(big["sha256"], sent.sha256.as_str());
    assert_eq!(big["content_type"], "application/x-tar");
    assert_eq!(big["name"], "café archive (1).tar");
    assert!(
        chrono::DateTime::parse_from_rfc3339(big["created_at"].as_str().expect("a time")).is_ok(),
        "{big}"
    );
    let big_id = big["id"].as_str().expect("id").to_owned();
    assert!(uuid::Uuid::parse_str(&big_id).is_ok(), "{big}");
    assert_eq!(stored_files(&rt), vec![big_id.clone()]);
    let after = body(rt.get("/api/v1/usage").await).await["used_bytes"]
        .as_u64()
        .expect("used");
    assert!(after >= before + len, "{before} -> {after}");

    // Downloaded chunk by chunk, it hashes the same.
    let mut r = rt.get(&format!("/api/v1/uploads/{big_id}")).await;
    assert_eq!(r.status(), 200);
    let header = |r: &Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header(&r, "content-length"), len.to_string());
    assert_eq!(header(&r, "content-type"), "application/x-tar");
    assert_eq!(
        header(&r, "content-disposition"),
        "attachment; filename=\"caf_ archive (1).tar\"; filename*=UTF-8''caf%C3%A9%20archive%20%281%29.tar"
    );
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    let (mut hasher, mut received) = (Sha256::new(), 0u64);
    while let Some(chunk) = r.chunk().await.expect("a chunk") {
        received += chunk.len() as u64;
        hasher.update(&chunk);
    }
    assert_eq!(received, len);
    assert_eq!(hex(hasher.finalize()), sent.sha256);

    // A small one, with its length declared, no name and no type.
    let r = rt
        .request(Method::POST, "/api/v1/uploads")
        .body(b"hello, staged world".to_vec())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_owned();
    let small = body(r).await;
    let small_id = small["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/api/v1/uploads/{small_id}"));
    assert_eq!(small["bytes"], 19);
    assert_eq!(
        small["sha256"],
        hex(Sha256::digest(b"hello, staged world")).as_str()
    );
    assert_eq!(small["content_type"], "application/octet-stream");
    assert_eq!(small["name"], Value::Null);
    let r = rt.get(&location).await;
    assert_eq!(header(&r, "content-disposition"), "attachment");
    assert_eq!(
        r.bytes().await.expect("body").as_ref(),
        b"hello, staged world"
    );

    // Listed newest first, with the fields the upload answered with.
    let list = body(rt.get("/api/v1/uploads").await).await;
    assert_eq!(listed_ids(&list), vec![small_id.clone(), big_id.clone()]);
    assert_eq!(list["items"][0], small);
    assert_eq!(list["items"][1], big);

    // Deleted, it is gone from the API, the list and the disk.
    assert_eq!(
        rt.delete(&format!("/api/v1/uploads/{big_id}"))
            .await
            .status(),
        204
    );
    error(rt.get(&format!("/api/v1/uploads/{big_id}")).await, 404).await;
    error(rt.delete(&format!("/api/v1/uploads/{big_id}")).await, 404).await;
    assert_eq!(
        listed_ids(&body(rt.get("/api/v1/uploads").await).await),
        vec![small_id.clone()]
    );
    assert_eq!(stored_files(&rt), vec![small_id]);
    for missing in [
        "abc".to_owned(),
        "1".to_owned(),
        uuid::Uuid::new_v4().to_string(),
        "..%2Fworkspace.sqlite3".to_owned(),
    ] {
        let r = rt.get(&format!("/api/v1/uploads/{missing}")).await;
        assert_eq!(
            error(r, 404).await["error"]["code"],
            "not_found",
            "{missing}"
        );
        error(rt.delete(&format!("/api/v1/uploads/{missing}")).await, 404).await;
    }
}

fn message(b: &Value) -> String {
    b["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn upload_of(rt: &Runtime, len: u64, framing: Framing) -> Sent {
    stream_upload(rt, "/api/v1/uploads", None, framing, generated(len, len)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_quota_get_413_and_leave_nothing() {
    let rt = Runtime::start_with_quota("2M").await;

    // Refused by the declared length before the body is read, or as it arrives.
    for framing in [Framing::Declared(5 * MIB / 2), Framing::Chunked] {
        let sent = upload_of(&rt, 5 * MIB / 2, framing).await;
        assert_eq!(sent.status, 413, "{framing:?}: {}", sent.body);
        assert_eq!(sent.body["error"]["code"], "too_large");
        assert!(message(&sent.body).contains("quota"), "{}", sent.body);
        assert_eq!(stored_files(&rt), Vec::<String>::new(), "{framing:?}");
    }
    assert_eq!(
        body(rt.get("/api/v1/uploads").await).await,
        json!({"items": []})
    );

    // What fits is stored and counted; then the next one no longer fits.
    let sent = upload_of(&rt, MIB, Framing::Declared(MIB)).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let kept = sent.body["id"].as_str().expect("id").to_owned();
    let usage = body(rt.get("/api/v1/usage").await).await;
    assert!(
        usage["used_bytes"].as_u64().is_some_and(|u| u > MIB),
        "{usage}"
    );
    for framing in [Framing::Declared(MIB + 1), Framing::Chunked] {
        let sent = upload_of(&rt, MIB + 1, framing).await;
        assert_eq!(sent.status, 413, "{framing:?}: {}", sent.body);
        assert!(message(&sent.body).contains("quota"), "{}", sent.body);
        assert_eq!(stored_files(&rt), vec![kept.clone()], "{framing:?}");
    }
    // Deleting makes room again.
    assert_eq!(
        rt.delete(&format!("/api/v1/uploads/{kept}")).await.status(),
        204
    );
    assert_eq!(upload_of(&rt, MIB + 1, Framing::Chunked).await.status, 201);
}

/// One upload of `len` bytes on its own connection, its head and first half sent; the rest
/// is sent by [`finish_upload`]. Half of them declare their length, half are chunked.
async fn half_an_upload(
    rt: &Runtime,
    len: u64,
    framing: Framing,
) -> (tokio::net::TcpStream, Vec<Vec<u8>>) {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", rt.port))
        .await
        .expect("connect");
    let length = match framing {
        Framing::Declared(n) => format!("Content-Length: {n}\r\n"),
        Framing::Chunked => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    let head = format!(
        "POST /api/v1/uploads HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{length}Connection: close\r\n\r\n",
        rt.port
    );
    let framed: Vec<Vec<u8>> = generated(len, len ^ 0x5a5a)
        .map(|chunk| match framing {
            Framing::Declared(_) => chunk,
            Framing::Chunked => {
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(&chunk);
                frame.extend_from_slice(b"\r\n");
                frame
            }
        })
        .chain(matches!(framing, Framing::Chunked).then(|| b"0\r\n\r\n".to_vec()))
        .collect();
    let (first, rest) = framed.split_at(framed.len() / 2);
    // A refused upload may be answered and closed while its body is still being sent.
    let _ = tcp.write_all(head.as_bytes()).await;
    for frame in first {
        if tcp.write_all(frame).await.is_err() {
            break;
        }
    }
    (tcp, rest.to_vec())
}

/// Sends the rest of an upload begun by [`half_an_upload`] and reads its answer.
async fn finish_upload(mut tcp: tokio::net::TcpStream, rest: Vec<Vec<u8>>) -> (u16, Value) {
    for frame in &rest {
        if tcp.write_all(frame).await.is_err() {
            break;
        }
    }
    let mut raw = Vec::new();
    let mut buf = vec![0; 16 * 1024];
    let read = async {
        loop {
            if let Some(answer) = parse_response(&raw) {
                return answer;
            }
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return parse_response(&raw).expect("a complete answer"),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("an answer within a minute")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_side_by_side_never_pass_the_quota_together() {
    let rt = Runtime::start_with_quota("4M").await;
    // Ten uploads of 700 KiB (7 MiB asked of a 4 MiB quota), every one under way before
    // any is finished: each alone would fit.
    let len = 700 * 1024;
    let mut begun = Vec::new();
    for i in 0..10 {
        let framing = if i % 2 == 0 {
            Framing::Declared(len)
        } else {
            Framing::Chunked
        };
        begun.push(half_an_upload(&rt, len, framing).await);
    }
    let answers = futures_util::future::join_all(
        begun
            .into_iter()
            .map(|(tcp, rest)| finish_upload(tcp, rest)),
    )
    .await;
    let stored: Vec<String> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, b)| b["id"].as_str().expect("id").to_owned())
        .collect();
    for (status, b) in &answers {
        assert!([201, 413].contains(status), "{status}: {b}");
        if *status == 413 {
            assert!(message(b).contains("storage quota"), "{b}");
        } else {
            assert_eq!(b["bytes"], len, "{b}");
        }
    }
    assert!(!stored.is_empty(), "some fit: {answers:?}");
    assert!(stored.len() < 10, "not all fit: {answers:?}");
    // The quota holds: what the workspace holds never passed it, and nothing half-written
    // is left beside what was stored.
    let usage = body(rt.get("/api/v1/usage").await).await;
    assert!(
        usage["used_bytes"].as_u64().expect("used")
            <= usage["quota_bytes"].as_u64().expect("quota"),
        "{usage} after {} uploads of {len} bytes",
        stored.len()
    );
    let mut expected = stored.clone();
    expected.sort();
    assert_eq!(stored_files(&rt), expected);
    let mut listed = listed_ids(&body(rt.get("/api/v1/uploads").await).await);
    listed.sort();
    assert_eq!(listed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_largest_upload_get_413_and_leave_nothing() {
    let rt = Runtime::start_with(Settings {
        max_staged_upload: Some("1M".to_owned()),
        ..Settings::default()
    })
    .await;
    for framing in [Framing::Declared(MIB + 1), Framing::Chunked] {
        let sent = upload_of(&rt, MIB + 1, framing).await;
        assert_eq!(sent.status, 413, "{framing:?}: {}", sent.body);
        assert!(
            message(&sent.body).contains("at most 1.0 MiB"),
            "{}",
            sent.body
        );
        assert_eq!(stored_files(&rt), Vec::<String>::new(), "{framing:?}");
    }
    let sent = upload_of(&rt, MIB, Framing::Chunked).await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(sent.body["bytes"], MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_are_refused_before_anything_is_stored() {
    let rt = Runtime::start().await;
    for bad in ["", ".", "..", "a%2Fb", "a%5Cb", "tab%09name", "nul%00"] {
        let r = rt
            .request(Method::POST, &format!("/api/v1/uploads?name={bad}"))
            .body("content")
            .send()
            .await
            .expect("post");
        let b = error(r, 400).await;
        assert_eq!(b["error"]["field"], "name", "{bad:?}: {b}");
    }
    let long = "x".repeat(256);
    let r = rt
        .request(Method::POST, &format!("/api/v1/uploads?name={long}"))
        .body("content")
        .send()
        .await
        .expect("post");
    assert_eq!(error(r, 400).await["error"]["field"], "name");
    let r = rt
        .request(Method::POST, "/api/v1/uploads?title=x")
        .body("content")
        .send()
        .await
        .expect("post");
    error(r, 400).await;
    assert_eq!(stored_files(&rt), Vec::<String>::new());
    assert_eq!(
        body(rt.get("/api/v1/uploads").await).await,
        json!({"items": []})
    );

    // The longest name there may be.
    let longest = "é".repeat(255);
    let encoded: String = url::form_urlencoded::byte_serialize(longest.as_bytes()).collect();
    let r = rt
        .request(Method::POST, &format!("/api/v1/uploads?name={encoded}"))
        .body("content")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
    assert_eq!(body(r).await["name"], longest.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_short_leaves_nothing_even_when_the_runtime_is_killed() {
    let mut rt = Runtime::start().await;
    // The client goes away mid-body.
    let tcp = start_abandoned_upload(&rt, 8 * MIB, 2 * MIB).await;
    drop(tcp);
    until_stored(&rt, "the abandoned upload is removed", |files| {
        files.is_empty()
    })
    .await;

    // The runtime is killed mid-body: the next start sweeps the partial file.
    let _tcp = start_abandoned_upload(&rt, 8 * MIB, 2 * MIB).await;
    rt.kill_and_restart().await;
    assert_eq!(stored_files(&rt), Vec::<String>::new());
    assert_eq!(
        body(rt.get("/api/v1/uploads").await).await,
        json!({"items": []})
    );
}

#[test]
fn a_largest_upload_that_is_no_size_stops_the_runtime_at_start() {
    let (code, stderr) = refused_start(&[("WEBSPLAT_RUNTIME_MAX_STAGED_UPLOAD", "lots")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("WEBSPLAT_RUNTIME_MAX_STAGED_UPLOAD") && stderr.contains("not a size"),
        "{stderr}"
    );
}
