//! "Generate a site from a brief": a pipeline of steps — plan → content → SEO → layout →
//! code → review — whose model calls all go through one interface, [`Model`]: a step sends
//! a JSON request (the step, the brief, the draft so far) and gets a JSON answer in that
//! step's schema. Real language models plug in behind the same interface (through the
//! platform's AI gateway). The built-in [`OfflineGenerator`] answers from templates and the
//! brief's own words: deterministic, and plainly labelled as template-based — it is not a
//! language model and never pretends to be one.
//!
//! Generation is a capability of its own (not a part of `jobs`): the pipeline knows nothing
//! of queues or rows. `jobs::generation` runs it as a job and keeps the proposals it leaves;
//! `http` is how a user asks for it and answers its proposals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::agents::Autonomy;
use crate::error::ApiError;
use crate::projects::Settings;

pub mod http;

pub const STEPS: [&str; 6] = ["plan", "content", "seo", "layout", "code", "review"];
/// What each of `STEPS` does, for people.
pub const STEP_LABELS: [&str; 6] = [
    "Plan: choose the pages",
    "Content: write the text",
    "SEO: titles and descriptions",
    "Layout: navigation and theme",
    "Code: build HTML and CSS",
    "Review: check the result",
];
pub const OFFLINE_LABEL: &str =
    "WebSplat offline template generator (template-based, not a language model)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    Friendly,
    Professional,
    Playful,
}

/// What the user asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brief {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub sections: Vec<String>,
    #[serde(default = "friendly")]
    pub tone: Tone,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// An agent whose autonomy (and, with a real model, instructions) to use.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Overrides the agent's autonomy; without either, the result is a proposal.
    #[serde(default)]
    pub autonomy: Option<Autonomy>,
}

fn friendly() -> Tone {
    Tone::Friendly
}

impl Brief {
    pub fn validate(&self) -> Result<(), ApiError> {
        let printable = |s: &str| !s.chars().any(char::is_control);
        if self.name.trim().is_empty() || self.name.chars().count() > 100 || !printable(&self.name)
        {
            return Err(ApiError::validation(
                "name",
                "the site's name must be 1 to 100 printable characters",
            ));
        }
        if self.description.chars().count() > 500 || !printable(&self.description) {
            return Err(ApiError::validation(
                "description",
                "the description must be at most 500 characters",
            ));
        }
        if self.sections.is_empty()
            || self.sections.len() > 8
            || self
                .sections
                .iter()
                .any(|s| s.trim().is_empty() || s.chars().count() > 40 || !printable(s))
        {
            return Err(ApiError::validation(
                "sections",
                "name 1 to 8 sections, each 1 to 40 characters (e.g. \"Menu\", \"About us\")",
            ));
        }
        if self.keywords.len() > 10
            || self
                .keywords
                .iter()
                .any(|k| k.trim().is_empty() || k.chars().count() > 40)
        {
            return Err(ApiError::validation(
                "keywords",
                "give at most 10 keywords of 1 to 40 characters",
            ));
        }
        if let Some(agent) = &self.agent_id
            && uuid::Uuid::parse_str(agent).is_err()
        {
            return Err(ApiError::validation(
                "agent_id",
                "agent_id must be an agent's id",
            ));
        }
        Ok(())
    }
}

/// One step's call to a model: the request and answer are JSON in that step's schema.
pub trait Model: Send + Sync {
    /// Shown to the user beside every result.
    fn label(&self) -> &str;
    fn complete(&self, step: &str, request: &Value) -> anyhow::Result<Value>;
}

/// The generated site: files by path, and what to tell the user.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedSite {
    pub files: BTreeMap<String, String>,
    pub generator: String,
    pub review: Value,
}

/// Runs the pipeline; `progress(step_index, step)` is called before each step.
pub fn run(
    model: &dyn Model,
    brief: &Brief,
    settings: &Settings,
    mut progress: impl FnMut(usize, &str),
) -> anyhow::Result<GeneratedSite> {
    let mut draft = json!({});
    for (i, step) in STEPS.iter().enumerate() {
        progress(i, step);
        let request = json!({ "step": step, "brief": brief, "settings": settings, "draft": draft });
        let answer = model.complete(step, &request)?;
        draft[*step] = answer;
    }
    let files: BTreeMap<String, String> = serde_json::from_value(draft["code"]["files"].clone())
        .map_err(|e| anyhow::anyhow!("the code step returned no files: {e}"))?;
    if files.is_empty() || !files.contains_key("index.html") {
        anyhow::bail!("the code step did not produce an index.html");
    }
    for path in files.keys() {
        crate::projects::FilePath::parse(path)
            .map_err(|e| anyhow::anyhow!("the code step produced a bad path {path:?}: {e}"))?;
    }
    Ok(GeneratedSite {
        files,
        generator: model.label().to_owned(),
        review: draft["review"].clone(),
    })
}

/// The built-in generator: templates filled with the brief's words. Same brief, same site.
pub struct OfflineGenerator;

fn slug(text: &str) -> String {
    let s: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() { "page".to_owned() } else { s }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Sentences by tone; `{name}`, `{section}` and `{topic}` are filled in.
fn phrases(tone: Tone) -> [&'static str; 8] {
    match tone {
        Tone::Friendly => [
            "At {name}, {section} is where we like to start a conversation with you.",
            "We care about {topic}, and it shows in everything we do every single day.",
            "Drop by, say hello, and let us show you what makes our work feel personal.",
            "Our small team has spent years learning what our neighbours really need.",
            "Every detail is chosen with care, because you deserve something made well.",
            "If you have a question, just ask: we love hearing from the people we serve.",
            "Good things take time, and we are happy to take that time for you.",
            "Come as you are, stay as long as you like, and leave with a smile.",
        ],
        Tone::Professional => [
            "{name} delivers {section} with a clear focus on measurable results.",
            "Our approach to {topic} is grounded in experience, method and accountability.",
            "Clients rely on us for dependable service, transparent pricing and clear communication.",
            "Each engagement begins with a careful review of your goals and constraints.",
            "We combine proven practices with attention to the specifics of your situation.",
            "Our team keeps you informed at every stage, from first meeting to final delivery.",
            "Quality assurance is built into every step rather than added at the end.",
            "Contact us to discuss how we can support your plans for the year ahead.",
        ],
        Tone::Playful => [
            "Welcome to {section} at {name}, the most fun corner of the internet today.",
            "We are a little bit obsessed with {topic}, and honestly we are not sorry.",
            "Grab a snack, get comfy, and let us show you around the place.",
            "Our team runs on curiosity, good music and slightly too much coffee.",
            "We try new ideas all the time, and the best ones end up right here.",
            "Got a wild idea? Perfect. Those are our favourite kind of ideas.",
            "Life is short, so we make every visit feel like a tiny celebration.",
            "Stick around, the next surprise is only one click away.",
        ],
    }
}

fn paragraphs(brief: &Brief, section: &str, page_index: usize) -> Vec<String> {
    let bank = phrases(brief.tone);
    let topics: Vec<String> = if brief.keywords.is_empty() {
        vec![brief.name.to_lowercase()]
    } else {
        brief.keywords.clone()
    };
    let fill = |template: &str, n: usize| {
        template
            .replace("{name}", &brief.name)
            .replace("{section}", &section.to_lowercase())
            .replace("{topic}", &topics[n % topics.len()])
    };
    // Six paragraphs of five sentences: a page of substance (over 300 words). Each opens
    // with the one sentence that names a topic, which keeps the keywords natural.
    const OTHERS: [usize; 7] = [0, 2, 3, 4, 5, 6, 7];
    (0..6)
        .map(|p| {
            let mut sentences = vec![fill(bank[1], p + page_index)];
            for s in 1..5 {
                let n = page_index * 7 + p * 5 + s;
                sentences.push(fill(bank[OTHERS[n % OTHERS.len()]], n));
            }
            sentences.join(" ")
        })
        .collect()
}

impl Model for OfflineGenerator {
    fn label(&self) -> &str {
        OFFLINE_LABEL
    }

    fn complete(&self, step: &str, request: &Value) -> anyhow::Result<Value> {
        let brief: Brief = serde_json::from_value(request["brief"].clone())?;
        let settings: Settings = serde_json::from_value(request["settings"].clone())?;
        let draft = &request["draft"];
        Ok(match step {
            "plan" => {
                let mut pages =
                    vec![json!({"path": "index.html", "section": "Home", "title": brief.name})];
                let mut seen = vec!["index".to_owned()];
                for section in &brief.sections {
                    let mut s = slug(section);
                    while seen.contains(&s) {
                        s.push_str("-more");
                    }
                    seen.push(s.clone());
                    pages.push(json!({"path": format!("{s}.html"), "section": section.trim(), "title": section.trim()}));
                }
                json!({ "pages": pages })
            }
            "content" => {
                let pages: Vec<Value> = draft["plan"]["pages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let section = p["section"].as_str().unwrap_or("Home");
                        let headline = if i == 0 { brief.name.clone() } else { format!("{section} at {}", brief.name) };
                        json!({"path": p["path"], "headline": headline, "paragraphs": paragraphs(&brief, section, i)})
                    })
                    .collect();
                json!({ "pages": pages })
            }
            "seo" => {
                let pages: Vec<Value> = draft["plan"]["pages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| {
                        let section = p["section"].as_str().unwrap_or("Home");
                        let mut title = if section == "Home" { brief.name.clone() } else { format!("{section} | {}", brief.name) };
                        if title.chars().count() < 30 {
                            title = format!("{title} | {}", brief.keywords.first().map(String::as_str).unwrap_or("Official site"));
                        }
                        let title: String = title.chars().take(60).collect();
                        let base = if brief.description.trim().is_empty() {
                            format!("{} — {}. Learn what we offer, who we are and how to reach us.", brief.name, section)
                        } else {
                            format!("{} — {}", section, brief.description.trim())
                        };
                        let mut description = base;
                        while description.chars().count() < 70 {
                            description.push_str(" Visit us to learn more.");
                        }
                        let description: String = description.chars().take(158).collect();
                        json!({"path": p["path"], "title": title.trim(), "description": description.trim()})
                    })
                    .collect();
                json!({ "pages": pages })
            }
            "layout" => {
                let nav: Vec<Value> = draft["plan"]["pages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| json!({"path": p["path"], "label": p["section"]}))
                    .collect();
                json!({ "nav": nav, "theme": settings.theme })
            }
            "code" => {
                let mut files = BTreeMap::new();
                let nav = draft["layout"]["nav"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let contents = draft["content"]["pages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let metas = draft["seo"]["pages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for (content, meta) in contents.iter().zip(&metas) {
                    let path = content["path"].as_str().unwrap_or("index.html");
                    let links: String = nav
                        .iter()
                        .map(|n| {
                            let target = n["path"].as_str().unwrap_or("index.html");
                            let current = if target == path {
                                " aria-current=\"page\""
                            } else {
                                ""
                            };
                            format!(
                                "<a href=\"{}\"{current}>{}</a>",
                                escape(target),
                                escape(n["label"].as_str().unwrap_or(""))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n        ");
                    let body: String = content["paragraphs"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|p| format!("      <p>{}</p>", escape(p.as_str().unwrap_or(""))))
                        .collect::<Vec<_>>()
                        .join("\n");
                    let title = escape(meta["title"].as_str().unwrap_or(&brief.name));
                    let description = escape(meta["description"].as_str().unwrap_or(""));
                    let canonical = if settings.site_url.is_empty() {
                        format!("/{}", if path == "index.html" { "" } else { path })
                    } else {
                        format!(
                            "{}/{}",
                            settings.site_url.trim_end_matches('/'),
                            if path == "index.html" { "" } else { path }
                        )
                    };
                    let ld = json!({"@context": "https://schema.org", "@type": "WebPage", "name": meta["title"], "description": meta["description"]});
                    files.insert(
                        path.to_owned(),
                        format!(
                            "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n  <meta charset=\"utf-8\">\n  <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n  <meta name=\"generator\" content=\"{label}\">\n  <title>{title}</title>\n  <meta name=\"description\" content=\"{description}\">\n  <link rel=\"canonical\" href=\"{canonical}\">\n  <meta property=\"og:title\" content=\"{title}\">\n  <meta property=\"og:description\" content=\"{description}\">\n  <script type=\"application/ld+json\">{ld}</script>\n  <link rel=\"stylesheet\" href=\"styles.css\">\n</head>\n<body class=\"theme-{theme}\">\n  <header>\n    <nav>\n        {links}\n    </nav>\n  </header>\n  <main>\n    <h1>{headline}</h1>\n    <section>\n{body}\n    </section>\n  </main>\n  <footer><p>&copy; {name}</p></footer>\n</body>\n</html>\n",
                            lang = escape(&settings.language),
                            label = OFFLINE_LABEL,
                            canonical = escape(&canonical),
                            theme = escape(&settings.theme),
                            headline = escape(content["headline"].as_str().unwrap_or("")),
                            name = escape(&brief.name),
                        ),
                    );
                }
                files.insert("styles.css".to_owned(), STYLES.to_owned());
                json!({ "files": files })
            }
            "review" => {
                let files: BTreeMap<String, String> =
                    serde_json::from_value(draft["code"]["files"].clone())?;
                let paths = files.keys().cloned().collect();
                let reports: Vec<_> = files
                    .iter()
                    .filter(|(p, _)| p.ends_with(".html"))
                    .map(|(p, html)| crate::projects::seo::analyse_page(p, html, &settings, &paths))
                    .collect();
                let report = crate::projects::seo::project_report(reports);
                json!({ "seo_score": report.score, "notes": format!("{} page(s) generated from templates; SEO score {}", files.len() - 1, report.score) })
            }
            other => anyhow::bail!("unknown step {other:?}"),
        })
    }
}

const STYLES: &str = "body{margin:0;font-family:system-ui,sans-serif;line-height:1.6;color:#1d1d1f;background:#fff}\nbody.theme-dark{color:#f5f5f7;background:#111}\nheader nav{display:flex;gap:1rem;flex-wrap:wrap;padding:1rem 2rem;border-bottom:1px solid #ddd}\nnav a{color:inherit;text-decoration:none}\nnav a[aria-current=page]{font-weight:700}\nmain{max-width:42rem;margin:2rem auto;padding:0 1rem}\nfooter{padding:2rem;text-align:center;opacity:.7}\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn brief() -> Brief {
        Brief {
            name: "Corner Bakery".into(),
            description: "Sourdough bread and pastries baked every morning in Lisbon.".into(),
            sections: vec!["Menu".into(), "About us".into(), "Visit".into()],
            tone: Tone::Friendly,
            keywords: vec!["sourdough".into(), "pastries".into()],
            agent_id: None,
            autonomy: None,
        }
    }

    #[test]
    fn the_offline_generator_builds_a_whole_site_deterministically() {
        let settings = Settings::default();
        let mut steps = Vec::new();
        let site = run(&OfflineGenerator, &brief(), &settings, |_, s| {
            steps.push(s.to_owned())
        })
        .expect("site");
        assert_eq!(steps, STEPS);
        let paths: Vec<&str> = site.files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "about-us.html",
                "index.html",
                "menu.html",
                "styles.css",
                "visit.html"
            ]
        );
        assert!(site.files["index.html"].contains("template-based, not a language model"));
        assert!(site.files["menu.html"].contains("<a href=\"about-us.html\">About us</a>"));
        // Template sentences repeat across the pages: filler, and the score says so.
        assert!(
            site.review["seo_score"]
                .as_u64()
                .is_some_and(|s| (50..90).contains(&s)),
            "{}",
            site.review
        );
        let again = run(&OfflineGenerator, &brief(), &settings, |_, _| {}).expect("site");
        assert_eq!(site.files, again.files, "same brief, same site");
    }

    #[test]
    fn briefs_are_validated() {
        let mut b = brief();
        b.sections = vec![];
        assert!(b.validate().is_err());
        let mut b = brief();
        b.name = " ".into();
        assert!(b.validate().is_err());
        assert!(brief().validate().is_ok());
    }
}
