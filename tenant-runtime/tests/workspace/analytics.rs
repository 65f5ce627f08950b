//! What the workspace measures: the SEO report of a project's pages, and page views counted
//! without cookies and rolled up.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seo_report_scores_pages_and_rises_when_they_improve() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;
    let before = body(rt.get(&format!("/api/v1/projects/{id}/seo")).await).await;
    let codes: Vec<&str> = before["pages"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"description_missing") && codes.contains(&"thin_content"),
        "{codes:?}"
    );

    // The sitemap needs the site's address first.
    let b = error(
        rt.get(&format!("/api/v1/projects/{id}/sitemap.xml")).await,
        400,
    )
    .await;
    assert_eq!(b["error"]["field"], "settings.site_url");
    rt.http
        .patch(rt.url(&format!("/api/v1/projects/{id}")))
        .json(&json!({"settings": {"title": "Bakery", "keywords": ["sourdough"], "site_url": "https://bakery.example"}}))
        .send()
        .await
        .expect("patch");

    let filler =
        "Our bakers start early every morning and use local flour, water and salt. ".repeat(30);
    let better = format!(
        r#"<!doctype html><html lang="en"><head><title>Sourdough bread in Lisbon | Corner Bakery</title>
<meta name="description" content="Corner Bakery bakes sourdough bread and pastries every morning in Lisbon. Visit us today.">
<link rel="canonical" href="https://bakery.example/"><meta property="og:title" content="Corner Bakery">
<meta property="og:description" content="Sourdough in Lisbon"><script type="application/ld+json">{{"@type":"Bakery"}}</script>
</head><body><h1>Corner Bakery</h1><p>We bake sourdough bread with care. {filler}</p></body></html>"#
    );
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    assert_eq!(
        rt.put_page(&id, "index.html", &better, Some(&tag))
            .await
            .status(),
        200
    );
    let after = body(
        rt.get(&format!("/api/v1/projects/{id}/seo?page=index.html"))
            .await,
    )
    .await;
    assert!(
        after["score"].as_u64() > before["score"].as_u64(),
        "{} -> {}",
        before["score"],
        after["score"]
    );
    assert_eq!(after["pages"][0]["keywords"][0]["occurrences"], 1);

    let sitemap = rt
        .get(&format!("/api/v1/projects/{id}/sitemap.xml"))
        .await
        .text()
        .await
        .expect("xml");
    assert!(
        sitemap.contains("<loc>https://bakery.example/</loc>"),
        "{sitemap}"
    );
    let robots = rt
        .get(&format!("/api/v1/projects/{id}/robots.txt"))
        .await
        .text()
        .await
        .expect("txt");
    assert!(
        robots.contains("Sitemap: https://bakery.example/sitemap.xml"),
        "{robots}"
    );
    error(
        rt.get(&format!("/api/v1/projects/{id}/seo?page=nope.html"))
            .await,
        404,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_views_are_counted_without_cookies_and_rolled_up() {
    let mut rt = Runtime::start().await;
    let id = rt.new_project_id("Counted").await;
    assert_eq!(
        rt.put_page(&id, "about.html", "<p>About</p>", None)
            .await
            .status(),
        201
    );
    publish(&rt, &id).await;
    let site = rt
        .get(&format!("/sites/{id}/"))
        .await
        .text()
        .await
        .expect("site");
    assert!(
        site.contains(&format!("/a.gif?p={id}&path=index.html&s=site")),
        "published pages carry the beacon"
    );
    let preview = rt
        .get(&format!("/preview/{id}/index.html"))
        .await
        .text()
        .await
        .expect("preview");
    assert!(preview.contains("s=preview"));

    let view = async |visitor: &str, path: &str, referrer: &str, agent: &str| {
        let r = rt
            .http
            .get(rt.url("/a.gif"))
            .query(&[
                ("p", id.as_str()),
                ("path", path),
                ("s", "site"),
                ("r", referrer),
            ])
            .header("x-forwarded-for", visitor)
            .header("user-agent", agent)
            .send()
            .await
            .expect("beacon");
        assert_eq!(
            r.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("image/gif")
        );
        assert!(r.headers().get("set-cookie").is_none(), "no cookies");
    };
    let browser = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
    view(
        "203.0.113.1",
        "index.html",
        "https://search.example/?q=bread",
        browser,
    )
    .await;
    view("203.0.113.1", "about.html", "", browser).await;
    view(
        "203.0.113.2",
        "index.html",
        "https://friend.example/post",
        browser,
    )
    .await;
    view("203.0.113.3", "index.html", "", "Googlebot/2.1").await;
    view("203.0.113.4", "../etc/passwd", "", browser).await;
    // Paths that are not pages of the project are not counted (nor stored).
    view("203.0.113.5", "made-up.html", "", browser).await;
    view("203.0.113.5", "style.css", "", browser).await;
    // A beacon for another (unknown) project records nothing.
    rt.http
        .get(rt.url("/a.gif"))
        .query(&[
            ("p", uuid::Uuid::new_v4().to_string().as_str()),
            ("path", "index.html"),
            ("s", "site"),
        ])
        .header("user-agent", browser)
        .send()
        .await
        .expect("beacon");

    let today = body(rt.get(&format!("/api/v1/projects/{id}/analytics")).await).await;
    assert_eq!(today["views"], 3, "{today}");
    assert_eq!(today["visitors"], 2, "{today}");
    assert_eq!(today["pages"][0], json!({"name": "index.html", "views": 2}));
    let referrers: Vec<&str> = today["referrers"]
        .as_array()
        .expect("referrers")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        referrers,
        ["friend.example", "search.example"],
        "hosts only"
    );
    assert_eq!(today["by_day"].as_array().map(Vec::len), Some(30));

    // Yesterday's raw hits (of the site and of the preview) are counted at once, and rolled
    // up into daily totals by the background task (it runs at start-up, then hourly).
    use diesel::{Connection, RunQueryDsl};
    let db = rt.data.join("workspace.sqlite3");
    let open = || {
        let mut conn =
            diesel::SqliteConnection::establish(db.to_str().expect("path")).expect("open");
        diesel::sql_query("PRAGMA busy_timeout = 5000")
            .execute(&mut conn)
            .expect("pragma");
        conn
    };
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    {
        let mut conn = open();
        for (source, visitor, path, referrer) in [
            ("site", "a", "index.html", ""),
            ("site", "a", "about.html", ""),
            ("site", "b", "index.html", ""),
            ("preview", "c", "index.html", "colleague.example"),
        ] {
            diesel::sql_query(format!(
                "INSERT INTO analytics_hits (project_id, source, path, day, visitor, referrer) VALUES ('{id}', '{source}', '{path}', '{yesterday}', '{visitor}', '{referrer}')"
            ))
            .execute(&mut conn)
            .expect("insert");
        }
    }
    let check = async |rt: &Runtime| {
        let both = body(rt.get(&format!("/api/v1/projects/{id}/analytics")).await).await;
        assert_eq!(
            (both["views"].as_i64(), both["visitors"].as_i64()),
            (Some(6), Some(4)),
            "{both}"
        );
        let days = both["by_day"].as_array().expect("days");
        assert_eq!(days[days.len() - 2]["views"], 3);
        assert_eq!(days[days.len() - 2]["visitors"], 2);
        let preview = body(
            rt.get(&format!("/api/v1/projects/{id}/analytics?source=preview"))
                .await,
        )
        .await;
        assert_eq!(preview["views"], 1, "{preview}");
        assert_eq!(
            preview["referrers"][0],
            json!({"name": "colleague.example", "views": 1})
        );
    };
    check(&rt).await;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let raw_of = |day: &str| {
        diesel::sql_query(format!(
            "SELECT count(*) AS n FROM analytics_hits WHERE day = '{day}'"
        ))
        .get_result::<Count>(&mut open())
        .expect("count")
        .n
    };
    assert_eq!(raw_of(&yesterday), 4, "reading the analytics wrote nothing");
    rt.kill_and_restart().await;
    let mut rolled = false;
    for _ in 0..100 {
        if raw_of(&yesterday) == 0 {
            rolled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        rolled,
        "the raw hits of past days are rolled up and deleted"
    );
    assert_eq!(
        raw_of(&chrono::Utc::now().date_naive().to_string()),
        3,
        "today's stay raw"
    );
    check(&rt).await;

    error(
        rt.get(&format!(
            "/api/v1/projects/{id}/analytics?from=2026-02-01&to=2026-01-01"
        ))
        .await,
        400,
    )
    .await;
    error(
        rt.get(&format!(
            "/api/v1/projects/{id}/analytics?source=everything"
        ))
        .await,
        400,
    )
    .await;
}
