//! Getting a site out: a static-site zip of the head version, the pages as Markdown, and
//! publishing — a static build written under the data directory and served at
//! `/sites/{project}/` on the workspace origin. A publish replaces the previous build in one
//! rename, so visitors never see half a site. Exports made by jobs are kept as files under
//! `exports/` for a day (or until the next export of the same project replaces them); this
//! module writes, finds and sweeps them, and never serves anything outside that folder.
//! Its handlers (`http`) serve the sandboxed preview of the head version, the published
//! sites, and the exports and publishing, which run as jobs (`jobs::exporting`).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use scraper::{ElementRef, Html, Node};
use zip::write::SimpleFileOptions;

use crate::error::ApiError;

pub mod http;

pub use crate::projects::Files;

pub fn zip(files: &Files) -> Result<Vec<u8>, ApiError> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (path, content) in files {
        writer
            .start_file(path.as_str(), options)
            .map_err(ApiError::internal)?;
        writer.write_all(content).map_err(ApiError::internal)?;
    }
    Ok(writer.finish().map_err(ApiError::internal)?.into_inner())
}

/// The Markdown export of a site: every HTML page as Markdown, Markdown pages as they are,
/// nothing else.
pub fn markdown_files(files: Files) -> Files {
    files
        .into_iter()
        .filter_map(|(path, content)| {
            let text = String::from_utf8_lossy(&content);
            if let Some(stem) = path
                .strip_suffix(".html")
                .or_else(|| path.strip_suffix(".htm"))
            {
                Some((format!("{stem}.md"), html_to_markdown(&text).into_bytes()))
            } else {
                path.ends_with(".md").then_some((path, content))
            }
        })
        .collect()
}

/// The files of a published build: HTML pages carry the analytics beacon.
pub fn with_beacons(project: &str, files: Files) -> Files {
    files
        .into_iter()
        .map(|(path, content)| {
            if path.ends_with(".html") || path.ends_with(".htm") {
                let tag = crate::analytics::beacon(project, &path, crate::analytics::Source::Site);
                let html = crate::analytics::inject(&String::from_utf8_lossy(&content), &tag);
                (path, html.into_bytes())
            } else {
                (path, content)
            }
        })
        .collect()
}

/// A download's file name: the project's name in lower case (letters, digits and '-'),
/// then `suffix`, then `.zip`.
pub fn file_name(project_name: &str, suffix: &str) -> String {
    let slug: String = project_name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug = slug
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug = if slug.is_empty() { "site" } else { &slug };
    format!("{slug}{suffix}.zip")
}

/// How long a finished export is kept for download.
pub const KEEP_EXPORTS: Duration = Duration::from_secs(24 * 60 * 60);

fn exports_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("exports")
}

/// The file of the export made by job `job_id` (a UUID, so never a path of its own).
pub fn artifact(data_dir: &Path, job_id: &uuid::Uuid) -> PathBuf {
    exports_dir(data_dir).join(format!("{job_id}.zip"))
}

/// Zips `files` as the export of job `job_id`, written whole or not at all; its size.
pub fn write_artifact(
    data_dir: &Path,
    job_id: &uuid::Uuid,
    files: &Files,
) -> Result<u64, ApiError> {
    let bytes = zip(files)?;
    let dir = exports_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
    let target = artifact(data_dir, job_id);
    let partial = dir.join(format!(".{job_id}.zip.partial"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, &target)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&partial);
        return Err(ApiError::internal(e));
    }
    Ok(bytes.len() as u64)
}

/// Removes exports older than `keep`, the ones `is_current` does not claim (their job is
/// gone, or a newer export replaced them), and any half-written file. Run it when no export
/// is being written. Returns how many files it removed.
pub fn sweep_artifacts(
    data_dir: &Path,
    keep: Duration,
    is_current: impl Fn(&uuid::Uuid) -> bool,
) -> usize {
    let Ok(entries) = std::fs::read_dir(exports_dir(data_dir)) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let job = name
            .to_str()
            .and_then(|n| n.strip_suffix(".zip"))
            .and_then(|n| uuid::Uuid::parse_str(n).ok());
        let expired = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| now.duration_since(at).ok())
            .is_some_and(|age| age > keep);
        let stale = match job {
            Some(job) => expired || !is_current(&job),
            None => true,
        };
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A Markdown rendering of an HTML page: headings, paragraphs, lists, links, images and
/// emphasis; scripts, styles and the head are dropped.
pub fn html_to_markdown(html: &str) -> String {
    let doc = Html::parse_document(html);
    let mut out = String::new();
    let title = doc
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "title")
        .map(|t| t.text().collect::<String>().trim().to_owned())
        .filter(|t| !t.is_empty());
    if let Some(title) = title {
        out.push_str(&format!(
            "---\ntitle: {}\n---\n\n",
            title.replace('\n', " ")
        ));
    }
    let body = doc
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "body")
        .unwrap_or_else(|| doc.root_element());
    block(body, &mut out);
    let mut tidy = String::new();
    let mut blank = 0;
    for line in out.lines() {
        let line = line.trim_end();
        blank = if line.is_empty() { blank + 1 } else { 0 };
        if blank <= 1 {
            tidy.push_str(line);
            tidy.push('\n');
        }
    }
    tidy.trim().to_owned() + "\n"
}

/// Whitespace runs become one space; a run at either end is kept as one space.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// One inline element as Markdown.
fn inline_element(el: ElementRef<'_>) -> String {
    let inner = || inline(el);
    match el.value().name() {
        "strong" | "b" => format!("**{}**", inner().trim()),
        "em" | "i" => format!("*{}*", inner().trim()),
        "code" => format!("`{}`", inner().trim()),
        "br" => "  \n".to_owned(),
        "a" => format!(
            "[{}]({})",
            inner().trim(),
            el.value().attr("href").unwrap_or("")
        ),
        "img" => format!(
            "![{}]({})",
            el.value().attr("alt").unwrap_or(""),
            el.value().attr("src").unwrap_or("")
        ),
        "script" | "style" | "template" => String::new(),
        _ => inner(),
    }
}

/// The children of an element as one line of inline Markdown.
fn inline(element: ElementRef<'_>) -> String {
    let mut out = String::new();
    for child in element.children() {
        match child.value() {
            Node::Text(t) => out.push_str(&collapse(t)),
            Node::Element(_) => {
                if let Some(el) = ElementRef::wrap(child) {
                    out.push_str(&inline_element(el));
                }
            }
            _ => {}
        }
    }
    out.trim().to_owned()
}

fn block(element: ElementRef<'_>, out: &mut String) {
    for child in element.children() {
        let Some(el) = ElementRef::wrap(child) else {
            if let Node::Text(t) = child.value() {
                let text = t.split_whitespace().collect::<Vec<_>>().join(" ");
                if !text.is_empty() {
                    out.push_str(&text);
                    out.push_str("\n\n");
                }
            }
            continue;
        };
        let name = el.value().name();
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let level: usize = name[1..].parse().unwrap_or(1);
                out.push_str(&format!("{} {}\n\n", "#".repeat(level), inline(el)));
            }
            "p" => out.push_str(&format!("{}\n\n", inline(el))),
            "ul" | "ol" => {
                let items = el
                    .children()
                    .filter_map(ElementRef::wrap)
                    .filter(|c| c.value().name() == "li");
                for (i, li) in items.enumerate() {
                    let marker = if name == "ol" {
                        format!("{}.", i + 1)
                    } else {
                        "-".to_owned()
                    };
                    out.push_str(&format!("{marker} {}\n", inline(li)));
                }
                out.push('\n');
            }
            "blockquote" => out.push_str(&format!("> {}\n\n", inline(el))),
            "pre" => out.push_str(&format!(
                "```\n{}\n```\n\n",
                el.text().collect::<String>().trim_end()
            )),
            "hr" => out.push_str("---\n\n"),
            "img" | "a" | "strong" | "em" | "b" | "i" | "span" | "code" => {
                out.push_str(&format!("{}\n\n", inline_element(el).trim()));
            }
            "script" | "style" | "template" | "noscript" | "head" => {}
            _ => block(el, out),
        }
    }
}

/// Writes `files` as the published build of `project`, replacing the previous one at once.
pub fn publish(data_dir: &Path, project: &str, files: &Files) -> Result<PathBuf, ApiError> {
    let root = data_dir.join("published");
    std::fs::create_dir_all(&root).map_err(ApiError::internal)?;
    let staging = root.join(format!(".{project}.{}", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        for (path, content) in files {
            // Paths come from versions, which only hold parsed `FilePath`s.
            let target = staging.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, content)?;
        }
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(ApiError::internal(e));
    }
    let live = root.join(project);
    let retired = root.join(format!(".{project}.old.{}", uuid::Uuid::new_v4().simple()));
    if live.exists() {
        std::fs::rename(&live, &retired).map_err(ApiError::internal)?;
    }
    std::fs::rename(&staging, &live).map_err(ApiError::internal)?;
    let _ = std::fs::remove_dir_all(&retired);
    Ok(live)
}

/// The published file for a request path under `/sites/{project}/`, if any.
pub fn published_file(
    data_dir: &Path,
    project: &str,
    path: &crate::projects::FilePath,
) -> Option<PathBuf> {
    let file = data_dir.join("published").join(project).join(path.as_str());
    file.is_file().then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_replaced_and_half_written_exports_are_swept() {
        let dir = std::env::temp_dir().join(format!(
            "websplat-exports-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let files: Files = vec![("index.html".to_owned(), b"<h1>Hi</h1>".to_vec())];
        let (kept, replaced) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        for job in [kept, replaced] {
            assert!(write_artifact(&dir, &job, &files).expect("written") > 0);
        }
        std::fs::write(dir.join("exports").join(".x.zip.partial"), b"half").expect("write");
        std::fs::write(dir.join("exports").join("stray"), b"?").expect("write");

        assert_eq!(sweep_artifacts(&dir, KEEP_EXPORTS, |id| *id == kept), 3);
        assert!(artifact(&dir, &kept).is_file());
        assert!(!artifact(&dir, &replaced).exists());
        // Past its time even the current one goes.
        assert_eq!(sweep_artifacts(&dir, Duration::ZERO, |_| true), 1);
        assert!(!artifact(&dir, &kept).exists());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn html_becomes_readable_markdown() {
        let md = html_to_markdown(
            r#"<html><head><title>Bakery</title><style>p{}</style></head><body>
            <h1>Corner <em>Bakery</em></h1><p>Fresh <strong>sourdough</strong> daily. <a href="/menu.html">See the menu</a>.</p>
            <ul><li>Bread</li><li>Cake</li></ul><img src="loaf.jpg" alt="A loaf"><script>alert(1)</script></body></html>"#,
        );
        assert!(md.starts_with("---\ntitle: Bakery\n---"), "{md}");
        assert!(md.contains("# Corner *Bakery*"), "{md}");
        assert!(
            md.contains("Fresh **sourdough** daily. [See the menu](/menu.html)"),
            "{md}"
        );
        assert!(md.contains("- Bread\n- Cake"), "{md}");
        assert!(md.contains("![A loaf](loaf.jpg)"), "{md}");
        assert!(!md.contains("alert") && !md.contains("p{}"), "{md}");
    }
}
