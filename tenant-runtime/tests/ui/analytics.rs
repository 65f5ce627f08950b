//! Analytics: the published site's views per day, with its pages and referrers, in a chart.

use serde_json::{Value, json};

use crate::helpers::*;

/// A browser's User-Agent: the beacon skips robots, automated browsers included.
const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

#[tokio::test]
async fn analytics_show_the_published_site_views_per_day_with_pages_and_referrers() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Counted Bakery").await;

    let r = runtime
        .http
        .post(runtime.url(&format!("/api/v1/projects/{project}/publish")))
        .send()
        .await
        .expect("publish");
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.expect("the publish job");
    let job = wait_for_job(&runtime, job["id"].as_str().expect("a job")).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let beacon = runtime.url(&format!(
        "/a.gif?p={project}&path=index.html&s=site&r=https%3A%2F%2Ffriend.example%2F"
    ));
    for _ in 0..3 {
        let r = runtime
            .http
            .get(&beacon)
            .header("user-agent", BROWSER_UA)
            .send()
            .await
            .expect("beacon");
        assert_eq!(r.status(), 200);
    }
    // A robot's view is not counted.
    let r = runtime
        .http
        .get(&beacon)
        .header(
            "user-agent",
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
        )
        .send()
        .await
        .expect("beacon");
    assert_eq!(r.status(), 200);
    let today = chrono::Utc::now().date_naive().to_string();

    click(&browser, "#tab-analytics").await;
    browser
        .wait_for("#analytics-views[data-value=\"3\"]", TIMEOUT)
        .await;
    let read = "const today = arguments[0]; \
        const g = document.querySelector(`#analytics-chart .chart-day[data-day=\"${today}\"]`); \
        const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr:not(.empty-row)`)] \
          .map(r => [r.cells[0].textContent, r.cells[1].textContent]); \
        return { views: document.querySelector('#analytics-views').textContent, \
                 visitors: document.querySelector('#analytics-visitors').textContent, \
                 days: document.querySelectorAll('#analytics-chart .chart-day').length, \
                 zero: [...document.querySelectorAll('#analytics-chart rect.bar')].filter(b => b.dataset.views === '0').length, \
                 today: g && { views: g.querySelector('rect.bar').dataset.views, \
                               visitors: g.querySelector('circle.point').dataset.visitors, \
                               height: Number(g.querySelector('rect.bar').getAttribute('height')), \
                               tooltip: g.querySelector('title').textContent }, \
                 label: document.querySelector('#analytics-chart').getAttribute('aria-labelledby') \
                   .split(' ').map(id => document.getElementById(id).textContent).join(' | '), \
                 pages: rows('analytics-pages'), referrers: rows('analytics-referrers'), \
                 privacy: document.querySelector('#analytics-privacy').textContent, \
                 nav: [document.querySelector('.app-nav a[data-nav=analytics]').getAttribute('aria-current'), \
                       document.querySelector('.app-nav a[data-nav=analytics]').getAttribute('href')] };";
    let shown = session.execute(read, vec![json!(today)]).await;
    assert_eq!(shown["views"], json!("3"), "{shown}");
    assert_eq!(
        shown["visitors"],
        json!("1"),
        "one browser on one day: {shown}"
    );
    assert_eq!(shown["days"], json!(30), "30 days by default: {shown}");
    assert_eq!(shown["zero"], json!(29), "{shown}");
    assert_eq!(shown["today"]["views"], json!("3"), "{shown}");
    assert_eq!(shown["today"]["visitors"], json!("1"), "{shown}");
    assert!(
        shown["today"]["height"].as_f64().is_some_and(|h| h > 0.0),
        "{shown}"
    );
    assert!(
        shown["today"]["tooltip"]
            .as_str()
            .is_some_and(|t| t.contains("3 views, 1 visitor")),
        "{shown}"
    );
    assert!(
        shown["label"]
            .as_str()
            .is_some_and(|l| l.contains("Views and visitors per day") && l.contains("3 views")),
        "the chart has an accessible name and description: {shown}"
    );
    assert_eq!(shown["pages"], json!([["index.html", "3"]]), "{shown}");
    assert_eq!(
        shown["referrers"],
        json!([["friend.example", "3"]]),
        "{shown}"
    );
    assert!(
        shown["privacy"]
            .as_str()
            .is_some_and(|t| t.contains("without cookies")),
        "{shown}"
    );
    assert_eq!(
        shown["nav"],
        json!(["page", format!("#/projects/{project}/analytics")]),
        "{shown}"
    );

    // Seven days: seven bars, the same total.
    click(&browser, "#analytics-range-7-label").await;
    browser
        .wait_for(
            "#analytics-content[data-days=\"7\"]:not([aria-busy])",
            TIMEOUT,
        )
        .await;
    let shown = session.execute(read, vec![json!(today)]).await;
    assert_eq!(shown["days"], json!(7), "{shown}");
    assert_eq!(shown["views"], json!("3"), "{shown}");
    assert_eq!(shown["today"]["views"], json!("3"), "{shown}");

    // Previews: none counted (the browser under test is an automated one).
    click(&browser, "#analytics-source-preview-label").await;
    browser
        .wait_for(
            "#analytics-content[data-source=preview]:not([aria-busy])",
            TIMEOUT,
        )
        .await;
    let shown = session.execute(read, vec![json!(today)]).await;
    assert_eq!(shown["views"], json!("0"), "{shown}");
    assert_eq!(shown["today"]["views"], json!("0"), "{shown}");
    assert_eq!(shown["referrers"], json!([]), "{shown}");
    browser
        .wait_for("#analytics-hint:not([hidden])", TIMEOUT)
        .await;
}
