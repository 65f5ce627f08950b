//! Published sites: a browser with no cookies at all sees the styled site on its own
//! origin, also after the owner's workspace stopped; its views reach the owner's
//! analytics; unpublish makes it 404; a name is its owner's alone.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use websplat_test_support::env_var;
use websplat_test_support::webdriver::Browser;

use super::preview::{PAGE, STYLES, bakery, sign_in_in_browser, wait_js};
use crate::helpers::{TestApp, body};
use crate::workspaces::helpers::{Person, app_with_workspaces, browser};

const WAIT: Duration = Duration::from_secs(30);

pub(super) async fn publish(
    app: &TestApp,
    person: &Person,
    name: &str,
    project: &str,
) -> reqwest::Response {
    person
        .client
        .put(app.url(&format!("/api/v1/sites/{name}")))
        .header("Origin", &app.base)
        .json(&json!({ "project": project }))
        .send()
        .await
        .expect("PUT a site")
}

/// Changes the project's `styles.css` in the workspace (the body's colour becomes green), as
/// the editor does: read its ETag, then PUT with `If-Match`.
pub(super) async fn turn_styles_green(person: &Person, origin: &str, project: &str) {
    let url = format!("{origin}/api/v1/projects/{project}/pages/styles.css");
    let etag = person
        .client
        .get(&url)
        .send()
        .await
        .expect("GET")
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("etag")
        .to_owned();
    let r = person
        .client
        .put(&url)
        .header("Origin", origin)
        .header("If-Match", etag)
        .header("content-type", "text/plain")
        .body("body { color: green; }\n")
        .send()
        .await
        .expect("PUT");
    assert!(r.status().is_success());
}

async fn views(person: &Person, origin: &str, project: &str) -> Value {
    let r = person
        .call(
            origin,
            Method::GET,
            &format!("/api/v1/projects/{project}/analytics?source=site"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    body(r).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_site_is_public_styled_counted_independent_of_the_workspace_and_goes_away() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    let project = bakery(&alice, &origin).await;

    let r = publish(&app, &alice, "Corner-Bakery", &project).await;
    assert_eq!(r.status(), 200);
    let site = body(r).await;
    let port = app.base.rsplit(':').next().expect("port");
    let url = format!("http://corner-bakery.sites.localhost:{port}/");
    assert_eq!(site["url"], url.as_str(), "{site}");
    assert_eq!(site["name"], "corner-bakery");
    assert!(site["bytes"].as_i64().is_some_and(|b| b > 0), "{site}");

    // A browser with no cookies at all sees the styled site, with its image.
    let visitor = Browser::start_as_visitor(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    visitor.goto(&url).await;
    visitor.wait_for_text("h1", "Corner Bakery", WAIT).await;
    let font = wait_js(
        &visitor,
        "the stylesheet",
        "const f = getComputedStyle(document.body).fontFamily; return f.includes('Bakery Serif Test') ? f : null;",
    )
    .await;
    assert!(
        font.as_str().is_some_and(|f| f.contains("monospace")),
        "{font}"
    );
    let width = wait_js(
        &visitor,
        "the image",
        "const i = document.getElementById('loaf'); return i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : null;",
    )
    .await;
    assert_eq!(width, json!(3));
    assert!(visitor.cookies().await.is_empty(), "a site sets no cookie");

    // Its view reached the owner's analytics, as a view of the published site.
    let deadline = Instant::now() + WAIT;
    loop {
        let summary = views(&alice, &origin, &project).await;
        if summary["views"] == 1 {
            assert_eq!(summary["pages"][0]["name"], "index.html", "{summary}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the view was not counted: {summary}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // What a program sees: the page as written (plus the beacon), a strict policy, an ETag
    // that revalidates, no cookie.
    let stranger = browser();
    let r = stranger.get(&url).send().await.expect("GET the site");
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(headers.get("set-cookie").is_none());
    let etag = headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_owned();
    let html = r.text().await.expect("text");
    assert!(
        html.starts_with(PAGE.trim_end_matches("</body></html>\n")),
        "{html}"
    );
    assert!(html.contains("/_websplat/beacon.js"), "{html}");
    let r = stranger
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
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
    // Only reading.
    let r = stranger.post(&url).send().await.expect("POST");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);

    // The owner's workspace stops: the site still answers, and the browser still shows it.
    let r = alice.post(&app, "/api/v1/workspace/stop").await;
    assert_eq!(r.status(), 202);
    alice.wait_for(&app, "stopped").await;
    let r = stranger.get(&url).send().await.expect("GET the site");
    assert_eq!(r.status(), 200);
    visitor.goto(&format!("{url}index.html")).await;
    visitor.wait_for_text("h1", "Corner Bakery", WAIT).await;
    wait_js(
        &visitor,
        "the stylesheet, after the workspace stopped",
        "return getComputedStyle(document.body).fontFamily.includes('Bakery Serif Test') ? true : null;",
    )
    .await;

    // Taken down: 404, a page for the browser and JSON for a program.
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
    assert_eq!(body(r).await["error"]["code"], "not_found");
    visitor.goto(&url).await;
    visitor.wait_for_text("h1", "Not found", WAIT).await;
    let listed = body(
        alice
            .client
            .get(app.url("/api/v1/sites"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(listed["sites"], json!([]), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_name_is_its_owners_alone_and_replaced_only_by_them() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    alice.wait_for(&app, "ready").await;
    bob.wait_for(&app, "ready").await;
    let alice_origin = alice.open(&app).await;
    let bob_origin = bob.open(&app).await;
    let alice_project = bakery(&alice, &alice_origin).await;
    let bob_project = bakery(&bob, &bob_origin).await;
    assert_eq!(
        publish(&app, &alice, "bakery", &alice_project)
            .await
            .status(),
        200
    );

    // Bob cannot publish over it, nor under Alice's workspace name, nor a reserved one.
    let r = publish(&app, &bob, "bakery", &bob_project).await;
    assert_eq!(r.status(), 409);
    let message = body(r).await["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.starts_with("The name \"bakery\" is taken"),
        "{message}"
    );
    let alice_slug = alice_origin
        .trim_start_matches("http://")
        .split('.')
        .next()
        .expect("slug")
        .to_owned();
    assert_eq!(
        publish(&app, &bob, &alice_slug, &bob_project)
            .await
            .status(),
        409
    );
    let r = publish(&app, &bob, "admin", &bob_project).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["field"], "name");
    let r = bob
        .client
        .delete(app.url("/api/v1/sites/bakery"))
        .header("Origin", &app.base)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 404, "Bob cannot take Alice's site down");

    // Alice republishes a changed page: the new build replaces the old one whole.
    turn_styles_green(&alice, &alice_origin, &alice_project).await;
    assert_eq!(
        publish(&app, &alice, "bakery", &alice_project)
            .await
            .status(),
        200
    );
    let port = app.base.rsplit(':').next().expect("port");
    let css = browser()
        .get(format!("http://bakery.sites.localhost:{port}/styles.css"))
        .send()
        .await
        .expect("GET");
    assert_eq!(css.text().await.expect("css"), "body { color: green; }\n");

    // Bob publishes under a name of his own from his workspace's page (same origin, its
    // own cookie; the platform answers it, not the tenant), and sees only his site.
    let r = bob
        .call(
            &bob_origin,
            Method::PUT,
            "/_websplat/sites/bobs-bakery",
            Some(json!({ "project": bob_project })),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        body(r).await["url"],
        format!("http://bobs-bakery.sites.localhost:{port}/").as_str()
    );
    let r = bob
        .call(
            &bob_origin,
            Method::PUT,
            "/_websplat/sites/bakery",
            Some(json!({ "project": bob_project })),
        )
        .await;
    assert_eq!(r.status(), 409, "the same rules from the workspace page");
    let r = bob
        .call(&bob_origin, Method::GET, "/_websplat/sites", None)
        .await;
    assert_eq!(r.status(), 200);
    let mine = body(r).await;
    let names: Vec<&str> = mine["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["bobs-bakery"]);

    // His dashboard lists the published address, as a link.
    let browser = Browser::start(
        &env_var("WEBSPLAT_TEST_CHROMEDRIVER"),
        &env_var("WEBSPLAT_TEST_CHROMIUM"),
    )
    .await;
    sign_in_in_browser(&app, &browser, "bob@example.com").await;
    let link = browser
        .wait_for(
            r#"#sites-list li[data-site="bobs-bakery"] a.site-url"#,
            WAIT,
        )
        .await;
    assert_eq!(
        browser.property(&link, "href").await.expect("href"),
        format!("http://bobs-bakery.sites.localhost:{port}/")
    );
    let workspace = browser.wait_for("#workspace-url", WAIT).await;
    assert!(
        browser
            .property(&workspace, "href")
            .await
            .expect("href")
            .ends_with("/workspace/open"),
        "the workspace address is a link that opens it"
    );

    // It lists his projects too (asked of his running workspace), each with where it is
    // published, and the recent activity.
    let project_row = format!(r#"#projects-list li[data-project="{bob_project}"]"#);
    browser
        .wait_for_text(&format!("{project_row} .project-name"), "Bakery", WAIT)
        .await;
    let link = browser
        .wait_for(&format!("{project_row} a.site-url"), WAIT)
        .await;
    assert_eq!(
        browser.property(&link, "href").await.expect("href"),
        format!("http://bobs-bakery.sites.localhost:{port}/")
    );
    let activity = browser
        .text(&browser.wait_for("#activity-list", WAIT).await)
        .await
        .expect("the activity");
    assert!(
        activity.contains("Published “Bakery” at http://bobs-bakery.sites.localhost")
            && activity.contains("Edited “Bakery”"),
        "{activity}"
    );
    // Its tile shows the site's own first picture (the 3×2 loaf), not only initials.
    browser
        .wait_for(&format!("{project_row} .project-tile.has-thumb"), WAIT)
        .await;
    let width = crate::sites::preview::wait_js(
        &browser,
        "the thumbnail",
        &format!(
            "const i = document.querySelector('{project_row} img.project-thumb'); \
             return i && i.complete && i.naturalWidth ? i.naturalWidth : null;"
        ),
    )
    .await;
    assert_eq!(width, 3, "the loaf's width");
    let shot = std::env::temp_dir().join("websplat-dashboard-projects.png");
    std::fs::write(&shot, browser.screenshot().await).expect("screenshot");
    eprintln!("screenshot: {}", shot.display());

    // Stopped, the workspace cannot be asked: the dashboard shows the last list it told.
    assert_eq!(bob.post(&app, "/api/v1/workspace/stop").await.status(), 202);
    bob.wait_for(&app, "stopped").await;
    browser.goto(&app.url("/dashboard")).await;
    browser
        .wait_for_text(&format!("{project_row} .project-name"), "Bakery", WAIT)
        .await;
    let source = browser
        .text(&browser.wait_for("#projects-source", WAIT).await)
        .await
        .expect("the source");
    assert!(
        source.starts_with("As your workspace last told us"),
        "{source}"
    );
}
