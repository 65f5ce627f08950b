//! Published sites kept in an S3-compatible bucket (moto's server, a real S3 wire format):
//! a publish uploads a build under its own prefix, anyone without a cookie reads it, a new
//! publish switches to a new prefix and the old one goes, an unpublish empties the bucket.

use std::time::{Duration, Instant};

use serde_json::Value;
use websplat_test_support::S3Server;

use super::preview::{STYLES, bakery};
use super::published::{publish, turn_styles_green};
use crate::helpers::body;
use crate::workspaces::helpers::{Person, app_with_workspaces, browser};

/// The build prefixes (`builds/{id}/`) in the bucket.
async fn prefixes(s3: &S3Server) -> Vec<String> {
    let mut builds: Vec<String> = s3
        .keys("builds/")
        .await
        .iter()
        .filter_map(|k| k.split('/').nth(1).map(str::to_owned))
        .collect();
    builds.dedup();
    builds
}

async fn wait_for_prefixes(s3: &S3Server, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let builds = prefixes(s3).await;
        if builds.len() == count {
            return builds;
        }
        assert!(
            Instant::now() < deadline,
            "the bucket holds builds {builds:?}, not {count}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_in_a_bucket_is_served_replaced_whole_and_removed() {
    let s3 = S3Server::start("websplat-sites").await;
    let mut env: Vec<(&str, String)> = s3.env();
    env.push(("WEBSPLAT_SITES_RETIRE_AFTER", "1s".to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = app_with_workspaces(&env).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    let project = bakery(&alice, &origin).await;

    let r = publish(&app, &alice, "corner-bakery", &project).await;
    assert_eq!(r.status(), 200);
    let site: Value = body(r).await;
    let first = wait_for_prefixes(&s3, 1).await;
    let keys = s3.keys(&format!("builds/{}/", first[0])).await;
    for file in ["index.html", "styles.css", "images/loaf.png"] {
        let key = format!("builds/{}/{file}", first[0]);
        assert!(keys.contains(&key), "{key} is not in {keys:?}");
    }
    let data_dir = app
        .env
        .iter()
        .find(|(k, _)| k == "WEBSPLAT_DATA_DIR")
        .map(|(_, v)| std::path::PathBuf::from(v));
    if let Some(dir) = data_dir {
        assert!(!dir.join("sites/builds").exists(), "nothing on disk");
    }

    // Anyone, with no cookie at all, reads it from the bucket.
    let url = site["url"].as_str().expect("url").to_owned();
    let stranger = browser();
    let page = stranger.get(&url).send().await.expect("GET the site");
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("set-cookie").is_none());
    let html = page.text().await.expect("html");
    assert!(html.contains("<h1>Corner Bakery</h1>"), "{html}");
    let css = stranger
        .get(format!("{url}styles.css"))
        .send()
        .await
        .expect("GET the stylesheet");
    assert_eq!(
        css.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(css.text().await.expect("css"), STYLES);
    let missing = stranger
        .get(format!("{url}nothing-here.html"))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);

    // A new publish is a new prefix; the site switches to it whole and the old one goes.
    turn_styles_green(&alice, &origin, &project).await;
    assert_eq!(
        publish(&app, &alice, "corner-bakery", &project)
            .await
            .status(),
        200
    );
    let css = stranger
        .get(format!("{url}styles.css"))
        .send()
        .await
        .expect("GET the stylesheet");
    assert_eq!(css.text().await.expect("css"), "body { color: green; }\n");
    let second = wait_for_prefixes(&s3, 1).await;
    assert_ne!(first, second, "the old build was retired");

    // Unpublished: 404, and the bucket is empty.
    let r = alice
        .client
        .delete(app.url("/api/v1/sites/corner-bakery"))
        .header("Origin", &app.base)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 204);
    let r = stranger
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    wait_for_prefixes(&s3, 0).await;

    // Operators see the bucket's requests.
    let metrics = app.metrics().await;
    for line in [
        r#"websplat_sites_bucket_request_duration_seconds_count{op="put",outcome="ok"}"#,
        r#"websplat_sites_bucket_request_duration_seconds_count{op="get",outcome="ok"}"#,
        r#"websplat_sites_bucket_request_duration_seconds_count{op="delete",outcome="ok"}"#,
    ] {
        assert!(metrics.contains(line), "{line} is not in the metrics");
    }
}
