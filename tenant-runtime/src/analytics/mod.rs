//! Analytics without cookies: previews and published sites carry a tiny beacon; each hit
//! records the page, the referring site (host only) and a visitor hash made from a salt that
//! changes daily — old salts are deleted, so visitors cannot be followed across days. Raw
//! hits of past days are rolled up into per-day totals by a background task (never by a
//! read), so storage stays bounded. Only views of pages the project has are counted.

use chrono::{Duration, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::SqliteConnection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::project_id;

pub mod http;
use crate::schema::{analytics_hits, analytics_salts};

/// A 1×1 transparent GIF.
pub const PIXEL: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
pub const MAX_RANGE_DAYS: i64 = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Site,
    Preview,
}

impl Source {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "site" => Some(Source::Site),
            "preview" => Some(Source::Preview),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Source::Site => "site",
            Source::Preview => "preview",
        }
    }
}

/// One page view, as the beacon reports it.
pub struct Hit {
    pub project_id: String,
    pub source: Source,
    pub path: String,
    pub referrer: Option<String>,
    pub client: String,
    pub user_agent: String,
}

/// The longest user agent a hit keeps, in characters.
const MAX_USER_AGENT_CHARS: usize = 300;

/// What a beacon's query says: the project (`p`), the page (`path`), the source (`s`: `site`
/// or `preview`) and the referrer (`r`). Anything else in the query is ignored.
#[derive(Debug, Default, Deserialize)]
pub struct BeaconQuery {
    pub p: Option<String>,
    pub path: Option<String>,
    pub s: Option<String>,
    pub r: Option<String>,
}

/// Who sent a beacon, as the request shows it.
#[derive(Debug, Default)]
pub struct Sender<'a> {
    /// The `X-Forwarded-For` header: behind the platform's proxy, its first hop is the client.
    pub forwarded_for: Option<&'a str>,
    /// The address the request came from.
    pub peer: Option<String>,
    pub user_agent: Option<&'a str>,
}

impl Hit {
    /// The page view a beacon reports, or `None` when it does not name a project (by id), a
    /// path and a known source. The client is the first forwarded hop, else the peer; the
    /// user agent is cut to its first 300 characters.
    pub fn from_beacon(q: BeaconQuery, sender: Sender<'_>) -> Option<Hit> {
        let project_id = project_id(q.p.as_deref()?).ok()?;
        let path = q.path?;
        let source = Source::parse(q.s.as_deref()?)?;
        let client = sender
            .forwarded_for
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .or(sender.peer)
            .unwrap_or_default();
        let user_agent = sender
            .user_agent
            .unwrap_or_default()
            .chars()
            .take(MAX_USER_AGENT_CHARS)
            .collect();
        Some(Hit {
            project_id,
            source,
            path,
            referrer: q.r,
            client,
            user_agent,
        })
    }
}

/// The tag a page carries to count its views (script with an image fallback).
pub fn beacon(project_id: &str, path: &str, source: Source) -> String {
    beacon_at("/a.gif", project_id, path, source)
}

/// The beacon tag, reporting to `endpoint` (a preview's is under its capability).
pub fn beacon_at(endpoint: &str, project_id: &str, path: &str, source: Source) -> String {
    let query = format!(
        "p={project_id}&path={}&s={}",
        urlencode(path),
        source.as_str()
    );
    format!(
        "<script>new Image().src='{endpoint}?{query}&r='+encodeURIComponent(document.referrer)</script><noscript><img src=\"{endpoint}?{query}\" alt=\"\" width=\"1\" height=\"1\"></noscript>"
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The page with the beacon before its closing `</body>` (or at the end).
pub fn inject(html: &str, tag: &str) -> String {
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{tag}{}", &html[..at], &html[at..]),
        None => format!("{html}{tag}"),
    }
}

fn today() -> String {
    Utc::now().date_naive().to_string()
}

fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    ua.is_empty()
        || ["bot", "crawler", "spider", "curl/", "wget/", "headless"]
            .iter()
            .any(|b| ua.contains(b))
}

/// Records a view; hits from robots, for unknown projects, or for paths that are not a page
/// of the project's current version are dropped (so the beacon cannot be used to fill the
/// database with made-up paths).
pub fn record(conn: &mut SqliteConnection, hit: Hit) -> Result<bool, ApiError> {
    if is_bot(&hit.user_agent) || crate::projects::FilePath::parse(&hit.path).is_err() {
        return Ok(false);
    }
    if !crate::projects::has_page(conn, &hit.project_id, &hit.path)? {
        return Ok(false);
    }
    let day = today();
    conn.transaction(|conn| {
        diesel::insert_or_ignore_into(analytics_salts::table)
            .values((
                analytics_salts::day.eq(&day),
                analytics_salts::salt.eq(uuid::Uuid::new_v4().simple().to_string()),
            ))
            .execute(conn)?;
        diesel::delete(analytics_salts::table.filter(analytics_salts::day.ne(&day)))
            .execute(conn)?;
        let salt: String = analytics_salts::table
            .find(&day)
            .select(analytics_salts::salt)
            .first(conn)?;
        let digest = Sha256::digest(format!(
            "{salt}|{}|{}|{}",
            hit.client, hit.user_agent, hit.project_id
        ));
        let visitor: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        let referrer = hit
            .referrer
            .as_deref()
            .and_then(|r| url::Url::parse(r).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        diesel::insert_into(analytics_hits::table)
            .values((
                analytics_hits::project_id.eq(&hit.project_id),
                analytics_hits::source.eq(hit.source.as_str()),
                analytics_hits::path.eq(&hit.path),
                analytics_hits::day.eq(&day),
                analytics_hits::visitor.eq(visitor),
                analytics_hits::referrer.eq(referrer.chars().take(253).collect::<String>()),
            ))
            .execute(conn)?;
        Ok::<_, ApiError>(())
    })?;
    Ok(true)
}

/// Folds the raw hits of days before `today` into per-day totals and deletes them.
pub fn roll_up(conn: &mut SqliteConnection, today: &str) -> Result<usize, ApiError> {
    conn.transaction(|conn| {
        // Per page, and per whole site (path ''), so a day's unique visitors are exact.
        for (path_expr, group) in [("path", "project_id, source, day, path"), ("''", "project_id, source, day")] {
            diesel::sql_query(format!(
                "INSERT INTO analytics_daily (project_id, source, day, path, views, visitors)
                 SELECT project_id, source, day, {path_expr}, count(*), count(DISTINCT visitor)
                 FROM analytics_hits WHERE day < ?1 GROUP BY {group}
                 ON CONFLICT (project_id, source, day, path) DO UPDATE
                 SET views = views + excluded.views, visitors = visitors + excluded.visitors"
            ))
            .bind::<Text, _>(today)
            .execute(conn)?;
        }
        diesel::sql_query(
            "INSERT INTO analytics_referrers (project_id, source, day, referrer, views)
             SELECT project_id, source, day, referrer, count(*) FROM analytics_hits
             WHERE day < ?1 AND referrer <> '' GROUP BY project_id, source, day, referrer
             ON CONFLICT (project_id, source, day, referrer) DO UPDATE SET views = views + excluded.views",
        )
        .bind::<Text, _>(today)
        .execute(conn)?;
        let removed = diesel::delete(analytics_hits::table.filter(analytics_hits::day.lt(today))).execute(conn)?;
        Ok(removed)
    })
}

/// How often the background task rolls past days up.
pub const ROLL_UP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Rolls past days up now and then every [`ROLL_UP_EVERY`], until the process ends.
pub fn spawn_roll_up(store: crate::store::Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(ROLL_UP_EVERY);
        loop {
            ticker.tick().await;
            match store.run(|c| roll_up(c, &today())).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "rolled up past days of analytics"),
                Err(e) => tracing::warn!(error = %e, "cannot roll up analytics; retrying later"),
            }
        }
    })
}

#[derive(Debug, Serialize, QueryableByName)]
pub struct DayTotal {
    #[diesel(sql_type = Text)]
    pub day: String,
    #[diesel(sql_type = BigInt)]
    pub views: i64,
    #[diesel(sql_type = BigInt)]
    pub visitors: i64,
}

#[derive(Debug, Serialize, QueryableByName)]
pub struct Ranked {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub views: i64,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub from: String,
    pub to: String,
    pub source: &'static str,
    pub views: i64,
    /// The sum of each day's unique visitors (visitors are not linked across days).
    pub visitors: i64,
    pub by_day: Vec<DayTotal>,
    pub pages: Vec<Ranked>,
    pub referrers: Vec<Ranked>,
}

/// Parses a `from`/`to` pair (YYYY-MM-DD), defaulting to the last 30 days.
pub fn range(from: Option<&str>, to: Option<&str>) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let parse = |field: &'static str, raw: &str| {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
            ApiError::validation(field, format!("{field} must be a date like 2026-11-22"))
        })
    };
    let to = match to {
        Some(raw) => parse("to", raw)?,
        None => Utc::now().date_naive(),
    };
    let from = match from {
        Some(raw) => parse("from", raw)?,
        None => to - Duration::days(29),
    };
    if from > to {
        return Err(ApiError::validation("from", "from must not be after to"));
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(ApiError::validation(
            "from",
            format!("ask for at most {MAX_RANGE_DAYS} days at once"),
        ));
    }
    Ok((from, to))
}

pub fn summary(
    conn: &mut SqliteConnection,
    project_id: &str,
    source: Source,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Summary, ApiError> {
    crate::projects::get(conn, project_id)?;
    let (f, t, s) = (from.to_string(), to.to_string(), source.as_str());
    // Rolled-up days, plus today's raw hits.
    let days: Vec<DayTotal> = diesel::sql_query(
        "SELECT day, sum(views) AS views, sum(visitors) AS visitors FROM (
           SELECT day, views, visitors FROM analytics_daily
             WHERE project_id = ?1 AND source = ?2 AND path = '' AND day BETWEEN ?3 AND ?4
           UNION ALL
           SELECT day, count(*), count(DISTINCT visitor) FROM analytics_hits
             WHERE project_id = ?1 AND source = ?2 AND day BETWEEN ?3 AND ?4 GROUP BY day
         ) GROUP BY day ORDER BY day",
    )
    .bind::<Text, _>(project_id)
    .bind::<Text, _>(s)
    .bind::<Text, _>(&f)
    .bind::<Text, _>(&t)
    .load(conn)?;
    let pages: Vec<Ranked> = diesel::sql_query(
        "SELECT name, sum(views) AS views FROM (
           SELECT path AS name, views FROM analytics_daily
             WHERE project_id = ?1 AND source = ?2 AND path <> '' AND day BETWEEN ?3 AND ?4
           UNION ALL
           SELECT path, count(*) FROM analytics_hits
             WHERE project_id = ?1 AND source = ?2 AND day BETWEEN ?3 AND ?4 GROUP BY path
         ) GROUP BY name ORDER BY views DESC, name LIMIT 20",
    )
    .bind::<Text, _>(project_id)
    .bind::<Text, _>(s)
    .bind::<Text, _>(&f)
    .bind::<Text, _>(&t)
    .load(conn)?;
    let referrers: Vec<Ranked> = diesel::sql_query(
        "SELECT name, sum(views) AS views FROM (
           SELECT referrer AS name, views FROM analytics_referrers
             WHERE project_id = ?1 AND source = ?2 AND day BETWEEN ?3 AND ?4
           UNION ALL
           SELECT referrer, count(*) FROM analytics_hits
             WHERE project_id = ?1 AND source = ?2 AND referrer <> '' AND day BETWEEN ?3 AND ?4 GROUP BY referrer
         ) GROUP BY name ORDER BY views DESC, name LIMIT 20",
    )
    .bind::<Text, _>(project_id)
    .bind::<Text, _>(s)
    .bind::<Text, _>(&f)
    .bind::<Text, _>(&t)
    .load(conn)?;
    // Every day of the range, zero where nothing happened, for charts.
    let mut by_day = Vec::new();
    let mut day = from;
    while day <= to {
        let key = day.to_string();
        let found = days.iter().find(|d| d.day == key);
        by_day.push(DayTotal {
            views: found.map_or(0, |d| d.views),
            visitors: found.map_or(0, |d| d.visitors),
            day: key,
        });
        day += Duration::days(1);
    }
    Ok(Summary {
        from: f,
        to: t,
        source: s,
        views: by_day.iter().map(|d| d.views).sum(),
        visitors: by_day.iter().map(|d| d.visitors).sum(),
        by_day,
        pages,
        referrers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_beacon_goes_before_the_end_of_the_body() {
        let html = inject("<html><body><p>x</p></BODY></html>", "<b>tag</b>");
        assert_eq!(html, "<html><body><p>x</p><b>tag</b></BODY></html>");
        assert_eq!(
            inject("<p>fragment</p>", "<b>tag</b>"),
            "<p>fragment</p><b>tag</b>"
        );
        assert!(
            beacon("id", "blog/a b.html", Source::Site).contains("path=blog/a%20b.html&s=site")
        );
    }

    fn query(p: &str, path: &str, s: &str) -> BeaconQuery {
        BeaconQuery {
            p: Some(p.to_owned()),
            path: Some(path.to_owned()),
            s: Some(s.to_owned()),
            r: Some("https://example.com/".to_owned()),
        }
    }

    #[test]
    fn a_beacon_names_a_project_a_path_and_a_source() {
        let id = uuid::Uuid::new_v4().to_string();
        let sender = || Sender {
            forwarded_for: Some(" 203.0.113.7 , 10.0.0.1"),
            peer: Some("10.0.0.2".to_owned()),
            user_agent: Some("Mozilla/5.0"),
        };
        let hit = Hit::from_beacon(query(&id, "index.html", "preview"), sender()).expect("a hit");
        assert_eq!(hit.project_id, id);
        assert_eq!(hit.source, Source::Preview);
        assert_eq!(hit.path, "index.html");
        assert_eq!(hit.referrer.as_deref(), Some("https://example.com/"));
        assert_eq!(hit.client, "203.0.113.7");
        assert_eq!(hit.user_agent, "Mozilla/5.0");
        for q in [
            query("not-an-id", "index.html", "site"),
            query(&id, "index.html", "elsewhere"),
            BeaconQuery {
                path: None,
                ..query(&id, "index.html", "site")
            },
            BeaconQuery::default(),
        ] {
            assert!(Hit::from_beacon(q, sender()).is_none());
        }
    }

    #[test]
    fn a_hit_counts_the_peer_without_a_proxy_and_keeps_300_characters_of_user_agent() {
        let id = uuid::Uuid::new_v4().to_string();
        let long = "x".repeat(400);
        let hit = Hit::from_beacon(
            query(&id, "a.html", "site"),
            Sender {
                forwarded_for: None,
                peer: Some("192.0.2.1".to_owned()),
                user_agent: Some(&long),
            },
        )
        .expect("a hit");
        assert_eq!(hit.client, "192.0.2.1");
        assert_eq!(hit.user_agent.chars().count(), 300);
        let nobody =
            Hit::from_beacon(query(&id, "a.html", "site"), Sender::default()).expect("a hit");
        assert_eq!(
            (nobody.client.as_str(), nobody.user_agent.as_str()),
            ("", "")
        );
    }

    #[test]
    fn ranges_are_checked() {
        assert!(range(Some("2026-01-01"), Some("2026-01-31")).is_ok());
        assert!(range(Some("2026-02-01"), Some("2026-01-31")).is_err());
        assert!(range(Some("2020-01-01"), Some("2026-01-31")).is_err());
        assert!(range(Some("yesterday"), None).is_err());
    }
}
