//! Deterministic SEO analysis of a project's HTML pages: title and description length,
//! heading structure, images without alt text, broken internal links, word count, keyword
//! density for the project's keywords, a readability score, canonical and Open Graph tags,
//! structured data — each problem a finding with advice, and a score. Also `sitemap.xml` and
//! `robots.txt`. Pure functions over the pages' text: no I/O, no model. It sits under
//! `projects` because it reads nothing but a project's pages and settings; the project's
//! report (`projects::seo`) and the generation pipeline's review step both use it.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use scraper::{ElementRef, Html, Selector};
use serde::Serialize;

use super::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    fn penalty(self) -> u32 {
        match self {
            Severity::Error => 15,
            Severity::Warning => 6,
            Severity::Info => 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// A stable code, e.g. `title_too_long`.
    pub code: &'static str,
    pub message: String,
    /// What to do about it.
    pub advice: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeywordUse {
    pub keyword: String,
    pub occurrences: usize,
    /// Percent of the page's words.
    pub density: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PageReport {
    pub path: String,
    pub score: u32,
    pub title: Option<String>,
    pub description: Option<String>,
    pub word_count: usize,
    /// Flesch reading ease: 0 (very hard) to 100 (very easy).
    pub readability: Option<f64>,
    pub keywords: Vec<KeywordUse>,
    pub findings: Vec<Finding>,
    /// Hashes of the page's runs of five words: what the pages of a project are compared
    /// by, to find copied text across them.
    #[serde(skip)]
    shingles: BTreeSet<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectReport {
    /// The mean of the pages' scores.
    pub score: u32,
    pub pages: Vec<PageReport>,
}

struct Selectors {
    title: Selector,
    description: Selector,
    headings: Selector,
    images: Selector,
    links: Selector,
    canonical: Selector,
    og_title: Selector,
    og_description: Selector,
    json_ld: Selector,
    html: Selector,
    body: Selector,
}

fn selector(css: &str) -> Selector {
    // Only ever called with the constant selectors below.
    Selector::parse(css).unwrap_or_else(|e| panic!("invalid built-in selector {css:?}: {e}"))
}

static SEL: LazyLock<Selectors> = LazyLock::new(|| Selectors {
    title: selector("head title, title"),
    description: selector(r#"meta[name="description" i]"#),
    headings: selector("h1, h2, h3, h4, h5, h6"),
    images: selector("img"),
    links: selector("a[href]"),
    canonical: selector(r#"link[rel="canonical" i]"#),
    og_title: selector(r#"meta[property="og:title" i]"#),
    og_description: selector(r#"meta[property="og:description" i]"#),
    json_ld: selector(r#"script[type="application/ld+json" i]"#),
    html: selector("html"),
    body: selector("body"),
});

/// The visible text under an element, without scripts and styles.
fn visible_text(element: ElementRef<'_>, out: &mut String) {
    for child in element.children() {
        if let Some(el) = ElementRef::wrap(child) {
            if !matches!(
                el.value().name(),
                "script" | "style" | "noscript" | "template"
            ) {
                visible_text(el, out);
            }
        } else if let Some(text) = child.value().as_text() {
            out.push(' ');
            out.push_str(text);
        }
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '-').to_lowercase())
        .filter(|w| w.chars().any(char::is_alphabetic))
        .collect()
}

/// A rough syllable count for English words (vowel groups, silent final e).
fn syllables(word: &str) -> usize {
    let mut count = 0;
    let mut previous_vowel = false;
    for c in word.chars() {
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
        if vowel && !previous_vowel {
            count += 1;
        }
        previous_vowel = vowel;
    }
    if word.ends_with('e') && !word.ends_with("le") && count > 1 {
        count -= 1;
    }
    count.max(1)
}

fn flesch(text: &str, words: &[String]) -> Option<f64> {
    if words.len() < 10 {
        return None;
    }
    let sentences = text
        .split(['.', '!', '?'])
        .filter(|s| s.chars().any(char::is_alphabetic))
        .count()
        .max(1);
    let syllable_count: usize = words.iter().map(|w| syllables(w)).sum();
    let score = 206.835
        - 1.015 * (words.len() as f64 / sentences as f64)
        - 84.6 * (syllable_count as f64 / words.len() as f64);
    Some((score.clamp(0.0, 100.0) * 10.0).round() / 10.0)
}

/// Where an internal link points, as a project path; `None` for external links.
fn link_target(page: &str, href: &str) -> Option<String> {
    let href = href.trim();
    let lower = href.to_ascii_lowercase();
    if href.is_empty()
        || href.starts_with('#')
        || href.starts_with("//")
        || ["http:", "https:", "mailto:", "tel:", "javascript:", "data:"]
            .iter()
            .any(|s| lower.starts_with(s))
    {
        return None;
    }
    let href = href.split(['#', '?']).next().unwrap_or_default();
    let mut parts: Vec<&str> = if href.starts_with('/') {
        Vec::new()
    } else {
        page.split('/').collect::<Vec<_>>()[..page.matches('/').count()].to_vec()
    };
    for segment in href.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut target = parts.join("/");
    if target.is_empty() || href.ends_with('/') {
        target = if target.is_empty() {
            "index.html".to_owned()
        } else {
            format!("{target}/index.html")
        };
    }
    Some(target)
}

/// Analyses one HTML page of a project whose files are `files`.
pub fn analyse_page(
    path: &str,
    html: &str,
    settings: &Settings,
    files: &BTreeSet<String>,
) -> PageReport {
    let doc = Html::parse_document(html);
    let mut findings = Vec::new();
    let mut find = |severity, code, message: String, advice| {
        findings.push(Finding {
            severity,
            code,
            message,
            advice,
        });
    };

    let title = doc
        .select(&SEL.title)
        .next()
        .map(|t| t.text().collect::<String>().trim().to_owned())
        .filter(|t| !t.is_empty());
    match &title {
        None => find(
            Severity::Error,
            "title_missing",
            "the page has no <title>".into(),
            "Add a unique, descriptive title of 30 to 60 characters.",
        ),
        Some(t) if t.chars().count() < 10 => find(
            Severity::Warning,
            "title_too_short",
            format!("the title is {} characters long", t.chars().count()),
            "Lengthen the title to 30-60 characters, naming what the page offers.",
        ),
        Some(t) if is_truncated(t) => find(
            Severity::Warning,
            "title_truncated",
            format!("the title {t:?} ends as if it was cut off"),
            "Write the whole title, without a trailing ellipsis.",
        ),
        Some(t) if t.chars().count() > 60 => find(
            Severity::Warning,
            "title_too_long",
            format!(
                "the title is {} characters long; search results cut it near 60",
                t.chars().count()
            ),
            "Shorten the title to at most 60 characters.",
        ),
        _ => {}
    }

    let description = doc
        .select(&SEL.description)
        .next()
        .and_then(|m| m.value().attr("content"))
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    match &description {
        None => find(
            Severity::Error,
            "description_missing",
            "the page has no meta description".into(),
            "Add <meta name=\"description\"> summarising the page in 70-160 characters.",
        ),
        Some(d) if is_truncated(d) => find(
            Severity::Warning,
            "description_truncated",
            "the description ends as if it was cut off".into(),
            "Write the whole description, without a trailing ellipsis, in 70-160 characters.",
        ),
        Some(d) if d.chars().count() < 50 => find(
            Severity::Warning,
            "description_too_short",
            format!("the description is {} characters long", d.chars().count()),
            "Write 70-160 characters: what the page is and why to visit.",
        ),
        Some(d) if d.chars().count() > 160 => find(
            Severity::Warning,
            "description_too_long",
            format!(
                "the description is {} characters long; search results cut it near 160",
                d.chars().count()
            ),
            "Shorten the description to at most 160 characters.",
        ),
        _ => {}
    }

    let levels: Vec<u8> = doc
        .select(&SEL.headings)
        .filter_map(|h| h.value().name()[1..].parse().ok())
        .collect();
    let h1s = levels.iter().filter(|l| **l == 1).count();
    if h1s == 0 {
        find(
            Severity::Error,
            "h1_missing",
            "the page has no <h1>".into(),
            "Give the page one <h1> naming its subject.",
        );
    } else if h1s > 1 {
        find(
            Severity::Warning,
            "h1_multiple",
            format!("the page has {h1s} <h1> headings"),
            "Keep one <h1>; use <h2> and below for sections.",
        );
    }
    if let Some(w) = levels.windows(2).find(|w| w[1] > w[0] + 1) {
        find(
            Severity::Warning,
            "heading_skipped",
            format!("an <h{}> follows an <h{}>, skipping a level", w[1], w[0]),
            "Nest headings one level at a time (h2 under h1, h3 under h2).",
        );
    }

    let missing_alt = doc
        .select(&SEL.images)
        .filter(|i| i.value().attr("alt").is_none())
        .count();
    if missing_alt > 0 {
        find(
            Severity::Warning,
            "images_without_alt",
            format!("{missing_alt} image(s) have no alt text"),
            "Describe each image in its alt attribute (alt=\"\" for purely decorative ones).",
        );
    }

    let broken: BTreeSet<String> = doc
        .select(&SEL.links)
        .filter_map(|a| a.value().attr("href"))
        .filter_map(|href| link_target(path, href))
        .filter(|target| !files.contains(target))
        .collect();
    if !broken.is_empty() {
        let list: Vec<_> = broken.into_iter().collect();
        find(
            Severity::Error,
            "broken_internal_links",
            format!("links to pages that do not exist: {}", list.join(", ")),
            "Create the missing pages or fix the links.",
        );
    }

    let mut text = String::new();
    if let Some(body) = doc.select(&SEL.body).next() {
        visible_text(body, &mut text);
    }
    let page_words = words(&text);
    let word_count = page_words.len();
    if word_count < 300 {
        find(
            Severity::Warning,
            "thin_content",
            format!("the page has {word_count} words"),
            "Pages with fewer than 300 words rarely rank; say more about the subject.",
        );
    }
    if word_count >= 300 && !levels.contains(&2) {
        find(
            Severity::Warning,
            "headings_missing",
            format!("{word_count} words under no <h2>"),
            "Break long text into sections, each under an <h2> that says what it covers.",
        );
    }
    if let Some((sentence, times)) = most_repeated_sentence(&text)
        && times >= 3
    {
        find(
            Severity::Error,
            "content_repetitive",
            format!("the sentence {sentence:?} appears {times} times"),
            "Say each thing once; filler repeated to reach a length helps no reader and no ranking.",
        );
    } else if word_count >= 100 {
        let distinct = page_words.iter().collect::<BTreeSet<_>>().len();
        if distinct * 100 < word_count * 25 {
            find(
                Severity::Warning,
                "content_repetitive",
                format!("only {distinct} different words in {word_count}"),
                "Vary the text: the same few words over and over read as filler.",
            );
        }
    }

    let lowered: String = page_words.join(" ");
    let keywords: Vec<KeywordUse> = settings
        .keywords
        .iter()
        .map(|k| {
            let needle = words(k).join(" ");
            let occurrences = if needle.is_empty() {
                0
            } else {
                format!(" {lowered} ")
                    .matches(&format!(" {needle} "))
                    .count()
            };
            let density = if word_count == 0 {
                0.0
            } else {
                occurrences as f64 * 100.0 / word_count as f64
            };
            KeywordUse {
                keyword: k.clone(),
                occurrences,
                density: (density * 100.0).round() / 100.0,
            }
        })
        .collect();
    for k in &keywords {
        if k.occurrences == 0 {
            find(
                Severity::Warning,
                "keyword_absent",
                format!("the keyword {:?} does not appear on the page", k.keyword),
                "Use each of the project's keywords naturally in the text.",
            );
        } else if k.density > 4.0 {
            find(
                Severity::Warning,
                "keyword_stuffing",
                format!("the keyword {:?} is {}% of the words", k.keyword, k.density),
                "Keep each keyword under about 3% of the words; write for people.",
            );
        }
    }

    let readability = flesch(&text, &page_words);
    if let Some(r) = readability
        && r < 30.0
    {
        find(
            Severity::Info,
            "hard_to_read",
            format!("the reading ease is {r}"),
            "Use shorter sentences and simpler words.",
        );
    }

    if doc.select(&SEL.canonical).next().is_none() {
        find(
            Severity::Info,
            "canonical_missing",
            "the page has no canonical link".into(),
            "Add <link rel=\"canonical\"> with the page's preferred URL.",
        );
    }
    if doc.select(&SEL.og_title).next().is_none()
        || doc.select(&SEL.og_description).next().is_none()
    {
        find(
            Severity::Warning,
            "open_graph_missing",
            "og:title or og:description is missing".into(),
            "Add Open Graph tags so shared links show a title and summary.",
        );
    }
    let structured: Vec<_> = doc.select(&SEL.json_ld).collect();
    if structured.is_empty() {
        find(
            Severity::Info,
            "structured_data_missing",
            "the page has no structured data".into(),
            "Describe the page with schema.org JSON-LD.",
        );
    } else if structured
        .iter()
        .any(|s| serde_json::from_str::<serde_json::Value>(&s.text().collect::<String>()).is_err())
    {
        find(
            Severity::Error,
            "structured_data_invalid",
            "a JSON-LD block is not valid JSON".into(),
            "Fix the JSON in the application/ld+json script.",
        );
    }
    if doc
        .select(&SEL.html)
        .next()
        .and_then(|h| h.value().attr("lang"))
        .is_none_or(|l| l.trim().is_empty())
    {
        find(
            Severity::Warning,
            "lang_missing",
            "the <html> element has no lang attribute".into(),
            "Set <html lang=\"…\"> to the page's language.",
        );
    }

    let mut report = PageReport {
        path: path.to_owned(),
        score: 0,
        title,
        description,
        word_count,
        readability,
        keywords,
        findings,
        shingles: shingles(&page_words),
    };
    report.rescore();
    report
}

impl PageReport {
    fn rescore(&mut self) {
        let penalty: u32 = self.findings.iter().map(|f| f.severity.penalty()).sum();
        self.score = 100u32.saturating_sub(penalty);
    }
}

/// Whether a title or description ends in an ellipsis, as text cut to a length does.
fn is_truncated(text: &str) -> bool {
    let t = text.trim_end();
    t.ends_with("...") || t.ends_with('…')
}

/// The sentence (of four words or more) the text repeats most, with how often.
fn most_repeated_sentence(text: &str) -> Option<(String, usize)> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for sentence in text.split(['.', '!', '?', '\n']) {
        let normal = words(sentence).join(" ");
        if normal.split(' ').count() >= 4 {
            *counts.entry(normal).or_default() += 1;
        }
    }
    counts.into_iter().max_by_key(|(_, n)| *n)
}

/// Hashes of every run of five words.
fn shingles(words: &[String]) -> BTreeSet<u64> {
    use std::hash::{Hash, Hasher};
    words
        .windows(5)
        .map(|w| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            w.hash(&mut h);
            h.finish()
        })
        .collect()
}

/// How much two pages' texts overlap: shared runs of five words over all their runs.
fn overlap(a: &BTreeSet<u64>, b: &BTreeSet<u64>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// The findings only the whole site shows: the same title or description on several pages,
/// and pages whose text is mostly another page's.
fn compare_pages(pages: &mut [PageReport]) {
    let mut extra: Vec<Vec<Finding>> = vec![Vec::new(); pages.len()];
    for i in 0..pages.len() {
        for j in 0..pages.len() {
            if i == j {
                continue;
            }
            let (a, b) = (&pages[i], &pages[j]);
            let same = |x: &Option<String>, y: &Option<String>| matches!((x, y), (Some(x), Some(y)) if x.trim().eq_ignore_ascii_case(y.trim()));
            if same(&a.title, &b.title) && !extra[i].iter().any(|f| f.code == "title_duplicate") {
                extra[i].push(Finding {
                    severity: Severity::Warning,
                    code: "title_duplicate",
                    message: format!("{} has the same title", b.path),
                    advice: "Give every page a title of its own, naming what that page offers.",
                });
            }
            if same(&a.description, &b.description)
                && !extra[i].iter().any(|f| f.code == "description_duplicate")
            {
                extra[i].push(Finding {
                    severity: Severity::Warning,
                    code: "description_duplicate",
                    message: format!("{} has the same description", b.path),
                    advice: "Describe every page in its own words.",
                });
            }
            let shared = overlap(&a.shingles, &b.shingles);
            if a.shingles.len() >= 20
                && b.shingles.len() >= 20
                && shared >= 0.5
                && !extra[i].iter().any(|f| f.code == "content_duplicate")
            {
                extra[i].push(Finding {
                    severity: Severity::Error,
                    code: "content_duplicate",
                    message: format!(
                        "{}% of the text is the same as on {}",
                        (shared * 100.0).round(),
                        b.path
                    ),
                    advice: "Write each page about its own subject; copied text is ranked once, if at all.",
                });
            }
        }
    }
    for (page, findings) in pages.iter_mut().zip(extra) {
        if !findings.is_empty() {
            page.findings.extend(findings);
            page.rescore();
        }
    }
}

/// The report of a whole site: each page's findings, those only the site as a whole shows
/// (duplicates across pages), and the mean score.
pub fn project_report(mut pages: Vec<PageReport>) -> ProjectReport {
    compare_pages(&mut pages);
    let score = if pages.is_empty() {
        0
    } else {
        (pages.iter().map(|p| p.score).sum::<u32>() as f64 / pages.len() as f64).round() as u32
    };
    ProjectReport { score, pages }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `sitemap.xml` listing the HTML pages under `site_url`.
pub fn sitemap(site_url: &str, html_paths: &[String]) -> String {
    let base = site_url.trim_end_matches('/');
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for path in html_paths {
        let path = if path == "index.html" {
            String::new()
        } else {
            path.clone()
        };
        out.push_str(&format!(
            "  <url><loc>{}</loc></url>\n",
            xml_escape(&format!("{base}/{path}"))
        ));
    }
    out.push_str("</urlset>\n");
    out
}

pub fn robots(site_url: &str) -> String {
    format!(
        "User-agent: *\nAllow: /\n\nSitemap: {}/sitemap.xml\n",
        site_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    const GOOD: &str = r#"<!doctype html><html lang="en"><head>
<title>Fresh sourdough bread in Lisbon | Corner Bakery</title>
<meta name="description" content="Corner Bakery bakes sourdough bread and pastries every morning in Lisbon. Order online or visit us.">
<link rel="canonical" href="https://bakery.example/">
<meta property="og:title" content="Corner Bakery"><meta property="og:description" content="Sourdough in Lisbon">
<script type="application/ld+json">{"@type": "Bakery"}</script>
</head><body><h1>Corner Bakery</h1><h2>Our bread</h2><img src="a.png" alt="A loaf"><a href="about.html">About</a>
<p>BODY</p></body></html>"#;

    /// Hand-written, varied text of about 330 words.
    const VARIED: &str = "Our bakers start before dawn, when the street is still quiet and the ovens need an hour to reach their heat. \
The flour comes from a mill two valleys away, stone-ground from wheat the miller buys from three farms he has known for decades. \
Water, salt and a starter we have fed every day since the spring of 2009 do the rest, given time. \
A loaf rests for eighteen hours in the cold room, which is why its crust cracks and its crumb tastes faintly of yoghurt. \
We shape every piece by hand, score it with a razor, and bake it on stone with a burst of steam at the start. \
Besides the country loaf there is a seeded rye, a small white for children, and on Fridays a dark bread with walnuts. \
Pastries change with the season: plum tarts in August, pumpkin buns in October, almond crescents around the new year. \
Customers who cannot come early can reserve bread online until eight the evening before and collect it until noon. \
Leftover loaves go to the shelter on Rua Nova each night, so nothing we bake is wasted. \
On Saturday mornings we run a class for six people at a time, who go home with their own starter in a jar. \
People ask why we do not open a second shop; the honest answer is that our oven bakes only so many loaves. \
If you have an allergy, ask at the counter: we keep a written list of what goes into each recipe, updated weekly. \
The café seats twelve, serves coffee roasted in Porto, and has a window onto the bakery so you can watch the work. \
Children are welcome to try shaping a roll, and dogs may wait in the shade by the door, where there is water. \
We close on Mondays to clean the ovens, repair the proofing baskets, and let the team rest after a long week. \
Our prices are written on a chalkboard by the till and change only when the mill changes what it charges us.";

    fn good_page() -> String {
        GOOD.replace(
            "BODY",
            &format!("We bake sourdough bread with care. {VARIED}"),
        )
    }

    #[test]
    fn a_well_made_page_scores_full_marks() {
        let settings = Settings {
            keywords: vec!["sourdough".into()],
            ..Settings::default()
        };
        let report = analyse_page(
            "index.html",
            &good_page(),
            &settings,
            &files(&["index.html", "about.html"]),
        );
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(report.score, 100);
        assert_eq!(report.keywords[0].occurrences, 1);
        assert!(
            report.readability.is_some_and(|r| r > 60.0),
            "{:?}",
            report.readability
        );
    }

    #[test]
    fn a_site_of_repeated_filler_scores_clearly_below_a_varied_one() {
        let settings = Settings {
            keywords: vec!["sourdough".into()],
            ..Settings::default()
        };
        let paths = files(&["index.html", "about.html"]);
        let varied = project_report(vec![
            analyse_page("index.html", &good_page(), &settings, &paths),
            analyse_page(
                "about.html",
                &good_page()
                    .replace("Fresh sourdough bread in Lisbon", "About the bakers of our sourdough")
                    .replace("every morning in Lisbon. Order", "daily; meet the people who shape it. Read")
                    .replace("with care.", "with care, and this page tells you who we are.")
                    .replace(VARIED, "Marta founded the bakery in 2009 after twenty years as a nurse, having baked at home every weekend of those years. Her nephew Rui joined her after culinary school in Porto and now runs the ovens, the schedule and the apprentices. Ana keeps the shop, the café and the accounts, and knows most of our customers by the bread they buy. Two apprentices learn with us each year; several now run bakeries of their own in towns along the coast. We are a small team on purpose, paid above the trade's average, with five weeks of holiday and no night shifts after four. If you would like to work with us, write a letter about the best bread you ever ate and why it mattered to you. We read every letter, answer each one within a month, and invite a few writers to spend a morning baking beside us. Suppliers are welcome to visit too; we prefer those who can tell us which field the grain grew in this year. Questions from journalists go to Marta, who will happily talk about fermentation for longer than anyone wishes. The building dates from 1887, was a printing house for most of the last century, and still has its iron beams. We restored the tiled floor ourselves, one winter, and found under it a newspaper from the week the shop first opened. The clock above the door came from the old railway station and is wound every Sunday by whoever arrives first. Our neighbours include a bookshop, a tailor and a fishmonger, and we trade bread for favours with all of them. In summer we put tables on the pavement, and in winter we keep the front room warm enough to read a paper in. Visitors from abroad often ask for the recipe of the rye; we print it on a card and give it away gladly."),
                &settings,
                &paths,
            ),
        ]);
        let sentence = "We bake good bread every day for the people of our town and they like it. ";
        let filler_page = |title: &str| {
            GOOD.replace("BODY", &sentence.repeat(40))
                .replace("Fresh sourdough bread in Lisbon | Corner Bakery", title)
        };
        let filler = project_report(vec![
            analyse_page(
                "index.html",
                &filler_page("Corner Bakery sourdough bread in Lisbon"),
                &settings,
                &paths,
            ),
            analyse_page(
                "about.html",
                &filler_page("Corner Bakery sourdough bread in Lisbon"),
                &settings,
                &paths,
            ),
        ]);
        assert!(
            varied.score >= 90,
            "{:#?}",
            varied.pages.iter().map(|p| &p.findings).collect::<Vec<_>>()
        );
        assert!(
            filler.score + 30 <= varied.score,
            "filler {} vs varied {}",
            filler.score,
            varied.score
        );
        let codes: BTreeSet<&str> = filler.pages[1].findings.iter().map(|f| f.code).collect();
        for expected in [
            "content_repetitive",
            "content_duplicate",
            "title_duplicate",
            "description_duplicate",
        ] {
            assert!(codes.contains(expected), "{expected} not in {codes:?}");
        }
    }

    #[test]
    fn cut_off_titles_and_descriptions_are_found() {
        let html = GOOD
            .replace(
                "Fresh sourdough bread in Lisbon | Corner Bakery",
                "Fresh sourdough bread in Lisbon from the Corner…",
            )
            .replace(
                "Order online or visit us.",
                "Order online or visit us at...",
            );
        let report = analyse_page(
            "index.html",
            &html,
            &Settings::default(),
            &files(&["index.html", "about.html"]),
        );
        let codes: BTreeSet<&str> = report.findings.iter().map(|f| f.code).collect();
        assert!(
            codes.contains("title_truncated") && codes.contains("description_truncated"),
            "{codes:?}"
        );
    }

    #[test]
    fn problems_are_found_with_advice() {
        let html = r#"<html><body><h1>A</h1><h1>B</h1><h4>skip</h4><img src="x.png"><a href="missing.html">x</a><a href="https://elsewhere.example/">y</a><script type="application/ld+json">{oops</script></body></html>"#;
        let settings = Settings {
            keywords: vec!["bread".into()],
            ..Settings::default()
        };
        let report = analyse_page("index.html", html, &settings, &files(&["index.html"]));
        let codes: BTreeSet<&str> = report.findings.iter().map(|f| f.code).collect();
        for expected in [
            "title_missing",
            "description_missing",
            "h1_multiple",
            "heading_skipped",
            "images_without_alt",
            "broken_internal_links",
            "thin_content",
            "keyword_absent",
            "open_graph_missing",
            "structured_data_invalid",
            "lang_missing",
            "canonical_missing",
        ] {
            assert!(
                codes.contains(expected),
                "{expected} not found in {codes:?}"
            );
        }
        assert!(report.findings.iter().all(|f| !f.advice.is_empty()));
        assert!(report.score < 30, "{}", report.score);
        let broken = report
            .findings
            .iter()
            .find(|f| f.code == "broken_internal_links")
            .expect("broken");
        assert!(broken.message.contains("missing.html") && !broken.message.contains("elsewhere"));
    }

    #[test]
    fn internal_links_resolve_like_a_browser() {
        assert_eq!(
            link_target("blog/post.html", "../index.html").as_deref(),
            Some("index.html")
        );
        assert_eq!(
            link_target("blog/post.html", "other.html#top").as_deref(),
            Some("blog/other.html")
        );
        assert_eq!(
            link_target("index.html", "/").as_deref(),
            Some("index.html")
        );
        assert_eq!(
            link_target("index.html", "/blog/").as_deref(),
            Some("blog/index.html")
        );
        assert_eq!(link_target("index.html", "https://x.example/"), None);
        assert_eq!(link_target("index.html", "mailto:a@b.c"), None);
        assert_eq!(link_target("index.html", "#section"), None);
    }

    #[test]
    fn sitemap_and_robots_name_the_site() {
        let xml = sitemap(
            "https://bakery.example/",
            &["index.html".into(), "about.html".into()],
        );
        assert!(
            xml.contains("<loc>https://bakery.example/</loc>")
                && xml.contains("<loc>https://bakery.example/about.html</loc>"),
            "{xml}"
        );
        assert!(
            robots("https://bakery.example")
                .contains("Sitemap: https://bakery.example/sitemap.xml")
        );
    }
}
