//! Pages: optimistic concurrency (a stale edit gets 409 and loses nothing), every change a
//! version with undo, redo, diff and restore, the sandboxed preview, hostile input refused
//! with nothing written, and the last committed version surviving a SIGKILL mid-write.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_edit_gets_409_with_the_current_page_and_loses_nothing() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Tabs").await;

    // Two tabs load the page.
    let loaded = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await;
    assert_eq!(
        loaded
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/html; charset=utf-8")
    );
    let tag = etag(&loaded);

    // Tab one saves.
    let saved = rt
        .put_page(&id, "index.html", "<h1>Tab one</h1>", Some(&tag))
        .await;
    assert_eq!(saved.status(), 200);
    let new_tag = etag(&saved);
    assert_ne!(new_tag, tag);

    // Tab two saves from its stale copy: refused, with what tab one wrote.
    let stale = rt
        .put_page(&id, "index.html", "<h1>Tab two</h1>", Some(&tag))
        .await;
    assert_eq!(etag(&stale), new_tag);
    let b = error(stale, 409).await;
    assert_eq!(b["error"]["code"], "stale_version");
    assert_eq!(b["current"]["content"], "<h1>Tab one</h1>");

    // Without If-Match an existing page is not overwritten either.
    let blind = rt.put_page(&id, "index.html", "<h1>Blind</h1>", None).await;
    assert_eq!(
        error(blind, 428).await["error"]["code"],
        "precondition_required"
    );

    let now = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await;
    assert_eq!(now.text().await.expect("page"), "<h1>Tab one</h1>");
    assert_eq!(rt.head(&id).await, 2);

    // A new page needs no precondition; deleting one does.
    assert_eq!(
        rt.put_page(&id, "about.html", "<p>About</p>", None)
            .await
            .status(),
        201
    );
    let r = rt
        .http
        .delete(rt.url(&format!("/api/v1/projects/{id}/pages/about.html")))
        .send()
        .await
        .expect("delete");
    error(r, 428).await;
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/about.html"))
            .await,
    );
    let r = rt
        .http
        .delete(rt.url(&format!("/api/v1/projects/{id}/pages/about.html")))
        .header("if-match", tag)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    error(
        rt.get(&format!("/api/v1/projects/{id}/pages/about.html"))
            .await,
        404,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_a_version_with_undo_redo_diff_and_restore() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("History").await;
    let mut tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    for text in ["first", "second", "third"] {
        let r = rt
            .put_page(&id, "index.html", &format!("<p>{text}</p>\n"), Some(&tag))
            .await;
        tag = etag(&r);
    }
    assert_eq!(rt.head(&id).await, 4);
    let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
    assert_eq!(history["head"], 4);
    assert_eq!(history["versions"].as_array().expect("versions").len(), 4);
    assert_eq!(history["versions"][0]["message"], "edited index.html");

    let diff = body(
        rt.get(&format!("/api/v1/projects/{id}/diff?from=2&to=4"))
            .await,
    )
    .await;
    assert_eq!(diff["files"][0]["change"], "modified");
    let text = diff["files"][0]["diff"].as_str().expect("diff");
    assert!(
        text.contains("-<p>first</p>") && text.contains("+<p>third</p>"),
        "{text}"
    );

    let page = async |rt: &Runtime| {
        rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await
            .text()
            .await
            .expect("page")
    };
    let undone = body(
        rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(undone["head_version"], 3);
    assert_eq!(undone["can_redo"], true);
    assert_eq!(page(&rt).await, "<p>second</p>\n");
    rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
        .await;
    assert_eq!(page(&rt).await, "<p>first</p>\n");
    let redone = body(
        rt.post(&format!("/api/v1/projects/{id}/redo"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(redone["head_version"], 3);
    assert_eq!(page(&rt).await, "<p>second</p>\n");

    // Restoring the original commits a copy of it; no version is lost.
    let restored = body(
        rt.post(
            &format!("/api/v1/projects/{id}/versions/1/restore"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(restored["head_version"], 5);
    assert_eq!(
        restored["can_redo"], false,
        "a new change ends the redo chain"
    );
    assert!(page(&rt).await.contains("New site"));
    let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
    assert_eq!(history["versions"].as_array().expect("versions").len(), 5);
    assert_eq!(history["versions"][0]["message"], "restored version 1");

    // Undo all the way to the start, then no further.
    for _ in 0..4 {
        rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
            .await;
    }
    let b = error(
        rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
            .await,
        409,
    )
    .await;
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing to undo"),
        "{b}"
    );
    error(
        rt.post(
            &format!("/api/v1/projects/{id}/versions/99/restore"),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_is_sandboxed() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Preview").await;
    let r = rt.get(&format!("/preview/{id}/")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok()),
        Some("sandbox allow-scripts")
    );
    assert!(r.text().await.expect("page").contains("New site"));
}

/// A page or an SVG read raw is data for the editor's `fetch`, never a live document on
/// the workspace origin: a preview that navigates there must not run as the workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_pages_and_assets_are_sandboxed_attachments() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Raw").await;
    let svg =
        r#"<svg xmlns="http://www.w3.org/2000/svg"><script>fetch('/api/v1/notes')</script></svg>"#;
    let r = rt
        .http
        .put(rt.url(&format!("/api/v1/projects/{id}/assets/images/x.svg")))
        .header("content-type", "image/svg+xml")
        .body(svg)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 201);
    for path in ["pages/index.html", "assets/images/x.svg"] {
        let r = rt.get(&format!("/api/v1/projects/{id}/{path}")).await;
        assert_eq!(r.status(), 200, "{path}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("content-security-policy").as_deref(),
            Some("sandbox"),
            "{path}"
        );
        assert_eq!(
            header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            header("content-disposition").as_deref(),
            Some("attachment"),
            "{path}"
        );
        assert!(
            header("etag").is_some(),
            "the editor still gets its ETag: {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_a_4xx_and_writes_nothing() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Fortress").await;
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );

    for path in [
        "..%2Fescape.html",
        ".env.html",
        "a%20b.html",
        "dir/.hidden.html",
        "logo.png",
        "x..%2F..%2Fy.html",
    ] {
        let r = rt.put_page(&id, path, "<p>x</p>", None).await;
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
    }
    // Not UTF-8.
    let r = rt
        .http
        .put(rt.url(&format!("/api/v1/projects/{id}/pages/index.html")))
        .header("content-type", "text/html")
        .header("if-match", &tag)
        .body(vec![0xff, 0xfe, 0x00, 0x3c])
        .send()
        .await
        .expect("put");
    error(r, 400).await;
    // Not text.
    let r = rt
        .http
        .put(rt.url(&format!("/api/v1/projects/{id}/pages/index.html")))
        .header("content-type", "image/png")
        .header("if-match", &tag)
        .body("<p>x</p>")
        .send()
        .await
        .expect("put");
    error(r, 415).await;
    // Too large.
    let huge = "x".repeat(3 * 1024 * 1024);
    error(rt.put_page(&id, "index.html", &huge, Some(&tag)).await, 413).await;
    // Malformed and unexpected JSON.
    let r = rt
        .http
        .post(rt.url("/api/v1/projects"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("post");
    error(r, 400).await;
    error(
        rt.post(
            "/api/v1/projects",
            &json!({"name": "x", "owner": "someone"}),
        )
        .await,
        400,
    )
    .await;
    error(rt.post("/api/v1/projects", &json!({"name": ""})).await, 400).await;
    let b = error(
        rt.post(
            "/api/v1/projects",
            &json!({"name": "x", "settings": {"theme": "neon"}}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(b["error"]["field"], "settings.theme");
    error(rt.get("/api/v1/projects?per_page=100000").await, 400).await;
    error(rt.get("/api/v1/projects/not-a-uuid").await, 404).await;

    assert_eq!(rt.head(&id).await, 1, "nothing was written");
    assert_eq!(body(rt.get("/api/v1/projects").await).await["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_write_leaves_the_last_committed_version_intact() {
    let mut rt = Runtime::start().await;
    let id = rt.new_project_id("Durable").await;
    let mut tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );

    // A writer saves continuously; the process is killed while it does.
    let writer = {
        let (http, base, id, mut tag) = (rt.http.clone(), rt.base.clone(), id.clone(), tag.clone());
        tokio::spawn(async move {
            let mut acknowledged: Option<(i64, String)> = None;
            for i in 0.. {
                let content = format!("<p>save {i}</p>{}", "padding ".repeat(2000));
                let sent = http
                    .put(format!("{base}/api/v1/projects/{id}/pages/index.html"))
                    .header("content-type", "text/html")
                    .header("if-match", &tag)
                    .body(content.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::OK => {
                        tag = etag(&r);
                        let v = body(r).await["head_version"].as_i64().expect("version");
                        acknowledged = Some((v, content));
                    }
                    _ => return acknowledged,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    rt.kill_and_restart().await;
    let (acked_version, acked_content) = writer
        .await
        .expect("writer")
        .expect("some saves were acknowledged");

    // The database opens; every acknowledged save is there, and head is a whole version.
    let head = rt.head(&id).await;
    assert!(
        head >= acked_version,
        "head {head} lost the acknowledged version {acked_version}"
    );
    let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
    assert_eq!(
        history["versions"].as_array().expect("versions").len() as i64,
        head
    );
    let page = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await;
    tag = etag(&page);
    let content = page.text().await.expect("page");
    if head == acked_version {
        assert_eq!(content, acked_content);
    } else {
        assert!(
            content.starts_with("<p>save "),
            "{}",
            &content[..40.min(content.len())]
        );
    }
    // And work goes on.
    assert_eq!(
        rt.put_page(&id, "index.html", "<p>after</p>", Some(&tag))
            .await
            .status(),
        200
    );
}
