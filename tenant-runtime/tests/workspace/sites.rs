//! Sites leaving the workspace: a project exported as a zip and as Markdown, and published,
//! by background jobs that list their steps.

use serde_json::json;

use crate::helpers::*;

fn unzip(bytes: &[u8]) -> Vec<(String, String)> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).expect("entry");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("text");
        files.push((file.name().expect("a UTF-8 name").to_string(), text));
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_exports_as_zip_and_markdown_and_publishes() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Corner Bakery").await;
    rt.put_page(
        &id,
        "about.html",
        "<html><body><h1>About us</h1><p>We bake.</p></body></html>",
        None,
    )
    .await;

    // An export is a job: 202, its steps, then a download named in its result.
    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/exports"),
            &json!({"format": "site"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await;
    assert_eq!(job["kind"], "export_site");
    assert_eq!(step_names(&job), ["collect", "render", "zip"]);
    let done = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        done["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "done"),
        "{done}"
    );
    let artifact = done["result"]["artifact"]
        .as_str()
        .expect("a download")
        .to_owned();
    assert_eq!(
        artifact,
        format!("/api/v1/jobs/{}/artifact", done["id"].as_str().expect("id"))
    );
    let r = rt.get(&artifact).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
        Some("attachment; filename=\"corner-bakery.zip\"")
    );
    let files = unzip(&r.bytes().await.expect("zip"));
    assert_eq!(
        files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["about.html", "index.html"]
    );
    assert!(files[1].1.contains("New site"));
    // The synchronous download (for scripts) gives the same files.
    let r = rt.get(&format!("/api/v1/projects/{id}/export.zip")).await;
    assert_eq!(unzip(&r.bytes().await.expect("zip")), files);

    let job = body(
        rt.post(
            &format!("/api/v1/projects/{id}/exports"),
            &json!({"format": "markdown"}),
        )
        .await,
    )
    .await;
    let done = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    assert_eq!(done["result"]["file_name"], "corner-bakery-markdown.zip");
    let md = unzip(
        &rt.get(done["result"]["artifact"].as_str().expect("a download"))
            .await
            .bytes()
            .await
            .expect("zip"),
    );
    assert_eq!(md[0].0, "about.md");
    assert!(
        md[0].1.contains("# About us") && md[0].1.contains("We bake."),
        "{}",
        md[0].1
    );
    assert_eq!(
        unzip(
            &rt.get(&format!("/api/v1/projects/{id}/export/markdown.zip"))
                .await
                .bytes()
                .await
                .expect("zip")
        ),
        md
    );

    // A newer export of the project replaces the older one's file.
    let again = body(
        rt.post(
            &format!("/api/v1/projects/{id}/exports"),
            &json!({"format": "site"}),
        )
        .await,
    )
    .await;
    let again = wait_for_job(&rt, again["id"].as_str().expect("id")).await;
    assert_eq!(rt.get(&artifact).await.status(), 410, "replaced");
    assert_eq!(
        rt.get(again["result"]["artifact"].as_str().expect("a download"))
            .await
            .status(),
        200
    );
    // Bad requests are refused; only exports make files.
    error(
        rt.post(
            &format!("/api/v1/projects/{id}/exports"),
            &json!({"format": "pdf"}),
        )
        .await,
        400,
    )
    .await;
    error(
        rt.post(
            &format!("/api/v1/projects/{}/exports", uuid::Uuid::new_v4()),
            &json!({}),
        )
        .await,
        404,
    )
    .await;

    error(rt.get(&format!("/sites/{id}/")).await, 404).await;
    let r = rt
        .post(&format!("/api/v1/projects/{id}/publish"), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await;
    assert_eq!(step_names(&job), ["collect", "render", "publish"]);
    let published = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    assert_eq!(published["result"]["url"], format!("/sites/{id}/"));
    error(
        rt.get(&format!(
            "/api/v1/jobs/{}/artifact",
            published["id"].as_str().expect("id")
        ))
        .await,
        404,
    )
    .await;
    let site = rt.get(&format!("/sites/{id}/")).await;
    assert_eq!(
        site.headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok()),
        Some("sandbox allow-scripts allow-forms allow-popups")
    );
    assert!(site.text().await.expect("site").contains("New site"));

    // Edits reach visitors only when published again.
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    rt.put_page(&id, "index.html", "<h1>Open on Sundays</h1>", Some(&tag))
        .await;
    assert!(
        rt.get(&format!("/sites/{id}/index.html"))
            .await
            .text()
            .await
            .expect("site")
            .contains("New site")
    );
    publish(&rt, &id).await;
    assert!(
        rt.get(&format!("/sites/{id}/index.html"))
            .await
            .text()
            .await
            .expect("site")
            .contains("Open on Sundays")
    );

    // Nothing outside the published build can be reached through it.
    let r = rt
        .get(&format!("/sites/{id}/..%2F..%2Fworkspace.sqlite3"))
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
}
