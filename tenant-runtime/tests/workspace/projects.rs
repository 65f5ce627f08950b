//! Projects: created, listed, renamed and deleted; the storage quota refusing a write whole;
//! images and fonts stored as versioned assets, checked by their content.

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_are_created_listed_renamed_and_deleted() {
    let rt = Runtime::start().await;
    let project = rt.new_project("Bakery").await;
    let id = project["id"].as_str().expect("id").to_owned();
    assert_eq!(project["settings"]["title"], "Bakery");
    assert_eq!(
        project["files"][0]["path"], "index.html",
        "a new project starts with a page"
    );
    assert_eq!(project["head_version"], 1);
    assert_eq!(project["can_undo"], false);

    for i in 0..4 {
        rt.new_project(&format!("Site {i}")).await;
    }
    let page = body(rt.get("/api/v1/projects?page=2&per_page=2").await).await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["projects"].as_array().expect("list").len(), 2);

    let r = rt
        .http
        .patch(rt.url(&format!("/api/v1/projects/{id}")))
        .json(&json!({"name": "Corner Bakery", "settings": {"title": "Fresh bread", "keywords": ["bread", "cake"]}}))
        .send()
        .await
        .expect("patch");
    let updated = body(r).await;
    assert_eq!(updated["name"], "Corner Bakery");
    assert_eq!(updated["settings"]["keywords"], json!(["bread", "cake"]));
    assert_eq!(updated["head_version"], 2, "a settings change is a version");

    let r = rt
        .http
        .delete(rt.url(&format!("/api/v1/projects/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    error(rt.get(&format!("/api/v1/projects/{id}")).await, 404).await;
    assert_eq!(body(rt.get("/api/v1/projects").await).await["total"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_the_storage_quota_get_413_and_leave_nothing() {
    let rt = Runtime::start_with_quota("600K").await;
    let id = rt.new_project_id("Small plan").await;
    let usage = body(rt.get("/api/v1/usage").await).await;
    assert_eq!(usage["quota_bytes"], 600 * 1024);
    assert!(
        usage["used_bytes"].as_u64().is_some_and(|u| u > 0),
        "{usage}"
    );

    let mut tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    let mut refused = None;
    for i in 0..20 {
        // Different content each time, so every version costs room.
        let content = format!("<p>{i}</p>{}", format!("{i:04}").repeat(40_000));
        let r = rt.put_page(&id, "index.html", &content, Some(&tag)).await;
        if r.status() == 413 {
            refused = Some((i, error(r, 413).await));
            break;
        }
        assert_eq!(r.status(), 200);
        tag = etag(&r);
    }
    let (attempt, b) = refused.expect("the quota stops the writes");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("quota"),
        "{b}"
    );
    // The refused write left no version behind.
    assert_eq!(rt.head(&id).await, attempt + 1);
    let page = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await;
    assert_eq!(etag(&page), tag);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_and_fonts_are_versioned_assets_checked_by_content() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Assets").await;
    let png =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    let put = async |path: &str, bytes: Vec<u8>| {
        rt.http
            .put(rt.url(&format!("/api/v1/projects/{id}/assets/{path}")))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .expect("put")
    };
    assert_eq!(put("images/logo.png", png.clone()).await.status(), 201);
    let listed = body(rt.get(&format!("/api/v1/projects/{id}/assets")).await).await;
    assert_eq!(listed["assets"][0]["path"], "images/logo.png");
    assert_eq!(listed["head_version"], 2, "an asset is a version too");

    let r = rt
        .get(&format!("/api/v1/projects/{id}/assets/images/logo.png"))
        .await;
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), png);
    let r = rt.get(&format!("/preview/{id}/images/logo.png")).await;
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );

    // A file that is not what its name says, or not an asset at all.
    error(
        put("images/fake.png", b"<script>alert(1)</script>".to_vec()).await,
        415,
    )
    .await;
    error(put("fonts/font.woff2", png.clone()).await, 415).await;
    error(put("tool.exe", b"MZ".to_vec()).await, 400).await;
    assert_eq!(
        put("fonts/brand.woff2", b"wOF2\0\x01\0\0".to_vec())
            .await
            .status(),
        201
    );
    // Replacing needs If-Match, like pages.
    error(put("images/logo.png", png.clone()).await, 428).await;
    assert_eq!(rt.head(&id).await, 3);
}
