//! Sites leaving the workspace: an export shows its progress then its download, and
//! publishing shows its site.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_export_shows_its_progress_then_its_download_and_publishing_its_site() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Exported Bakery").await;
    click(&browser, "#tab-export").await;

    click(&browser, "#export-site-start").await;
    let link = browser.wait_for("#export-site-download", TIMEOUT).await;
    let href = browser.property(&link, "href").await.expect("href");
    let state = session
        .js("return { status: document.querySelector('#export-site-status').dataset.status, \
                      steps: [...document.querySelectorAll('#export-site-steps li')].map(li => [li.dataset.step, li.dataset.state]), \
                      busy: document.querySelector('#export-site-start').disabled, \
                      name: document.querySelector('#export-site-download').getAttribute('download') };")
        .await;
    assert_eq!(
        state,
        json!({
            "status": "succeeded",
            "steps": [["collect", "done"], ["render", "done"], ["zip", "done"]],
            "busy": false,
            "name": "exported-bakery.zip",
        })
    );
    // The link is the job's download, and it is the site as a zip.
    assert!(
        href.starts_with(&runtime.url("/api/v1/jobs/")) && href.ends_with("/artifact"),
        "{href}"
    );
    let zip = runtime
        .http
        .get(&href)
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).expect("a zip");
    assert_eq!(archive.len(), 1);
    assert!(archive.index_for_name("index.html").is_some());

    click(&browser, "#publish-start").await;
    let link = browser.wait_for("#published-url", TIMEOUT).await;
    let url = browser.property(&link, "href").await.expect("href");
    assert_eq!(url, runtime.url(&format!("/sites/{project}/")));
    let steps = session
        .js("return [...document.querySelectorAll('#publish-steps li')].map(li => li.dataset.step);")
        .await;
    assert_eq!(steps, json!(["collect", "render", "publish"]));
    let site = runtime
        .http
        .get(&url)
        .send()
        .await
        .expect("the published site");
    assert_eq!(site.status(), 200);
}
