//! Getting a site out: a static-site zip of the head version, the pages as Markdown, and
//! publishing — a static build written under the data directory and served at
//! `/sites/{project}/` on the workspace origin. A publish replaces the previous build in one
//! rename, so visitors never see half a site.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use scraper::{ElementRef, Html, Node};
use zip::write::SimpleFileOptions;

use crate::error::ApiError;

/// The files of a version, ready to write out: (path, content).
pub type Files = Vec<(String, Vec<u8>)>;

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
