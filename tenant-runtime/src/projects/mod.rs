//! Projects (websites) and their versions. A project's content — settings and files — lives
//! only in versions; every change commits a new version on top of the current one (`head`),
//! and nothing is ever overwritten in place. Undo and redo move `head` along the history;
//! restoring an old version commits a copy of it. File contents are stored once per
//! distinct content (addressed by SHA-256), so versions are cheap.

use std::collections::BTreeSet;

use chrono::Utc;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::schema::{blobs, projects, version_files, versions};
mod history;
pub mod http;
pub mod pages;
pub mod path;
pub mod seo;

pub use history::{FileDiff, History, VersionInfo, diff, history, redo, restore, undo};
pub use path::FilePath;

/// Every file of a version with its content: `(path, content)`, by path.
pub type Files = Vec<(String, Vec<u8>)>;

pub const MAX_PROJECTS_PER_PAGE: i64 = 100;

/// A project's settings: what a site says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default = "default_theme")]
    pub theme: String,
    #[serde(default = "default_language")]
    pub language: String,
    /// Where the published site lives, e.g. `https://bakery.example` (for the sitemap).
    #[serde(default)]
    pub site_url: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            title: String::new(),
            description: String::new(),
            keywords: Vec::new(),
            theme: default_theme(),
            language: default_language(),
            site_url: String::new(),
        }
    }
}

fn default_theme() -> String {
    "light".to_owned()
}

fn default_language() -> String {
    "en".to_owned()
}

impl Settings {
    fn validate(&self) -> Result<(), ApiError> {
        let printable = |s: &str| !s.chars().any(char::is_control);
        if self.title.chars().count() > 200 || !printable(&self.title) {
            return Err(ApiError::validation(
                "settings.title",
                "the title must be at most 200 printable characters",
            ));
        }
        if self.description.chars().count() > 1000 || !printable(&self.description) {
            return Err(ApiError::validation(
                "settings.description",
                "the description must be at most 1000 printable characters",
            ));
        }
        if self.keywords.len() > 50
            || self
                .keywords
                .iter()
                .any(|k| k.trim().is_empty() || k.chars().count() > 60 || !printable(k))
        {
            return Err(ApiError::validation(
                "settings.keywords",
                "give at most 50 keywords of 1 to 60 printable characters each",
            ));
        }
        if !matches!(self.theme.as_str(), "light" | "dark" | "auto") {
            return Err(ApiError::validation(
                "settings.theme",
                "the theme must be light, dark or auto",
            ));
        }
        let lang_ok = (2..=35).contains(&self.language.len())
            && self
                .language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !lang_ok {
            return Err(ApiError::validation(
                "settings.language",
                "the language must be a BCP 47 tag such as en or pt-BR",
            ));
        }
        let url_ok = self.site_url.is_empty()
            || ((self.site_url.starts_with("https://") || self.site_url.starts_with("http://"))
                && self.site_url.len() <= 200
                && !self
                    .site_url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<'));
        if !url_ok {
            return Err(ApiError::validation(
                "settings.site_url",
                "the site URL must be an http:// or https:// address, like https://bakery.example",
            ));
        }
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "the name must be 1 to 100 printable characters",
        ));
    }
    Ok(name.to_owned())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub name: String,
    #[serde(default)]
    pub settings: Option<Settings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub settings: Option<Settings>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = projects, check_for_backend(diesel::sqlite::Sqlite))]
struct ProjectRow {
    id: String,
    name: String,
    head_version: i64,
    redo_stack: String,
    created_at: String,
    updated_at: String,
}

impl ProjectRow {
    fn redo(&self) -> Vec<i64> {
        serde_json::from_str(&self.redo_stack).unwrap_or_default()
    }
}

#[derive(Debug, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub size: i64,
    pub etag: String,
}

/// A project as the API shows it: settings and files at the head version.
#[derive(Debug, Serialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub settings: Settings,
    pub head_version: i64,
    pub can_undo: bool,
    pub can_redo: bool,
    pub files: Vec<FileEntry>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct ProjectSummary {
    pub id: String,
    pub name: String,
    pub head_version: i64,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct ProjectList {
    pub projects: Vec<ProjectSummary>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

/// The ETag of a file's content: its hash, quoted.
pub fn etag_of(blob_hash: &str) -> String {
    format!("\"{}\"", &blob_hash[..blob_hash.len().min(32)])
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("there is no project {id:?}"))
}

fn row(conn: &mut SqliteConnection, id: &str) -> Result<ProjectRow, ApiError> {
    projects::table
        .find(id)
        .select(ProjectRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found(id))
}

/// Stores content once; returns its hash.
fn put_blob(conn: &mut SqliteConnection, content: &[u8]) -> Result<String, ApiError> {
    let hash: String = Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    diesel::insert_or_ignore_into(blobs::table)
        .values((
            blobs::hash.eq(&hash),
            blobs::size.eq(content.len() as i64),
            blobs::content.eq(content),
        ))
        .execute(conn)?;
    Ok(hash)
}

fn blob(conn: &mut SqliteConnection, hash: &str) -> Result<Vec<u8>, ApiError> {
    Ok(blobs::table.find(hash).select(blobs::content).first(conn)?)
}

/// The files of a version: (path, blob hash), by path.
fn manifest(
    conn: &mut SqliteConnection,
    id: &str,
    version: i64,
) -> Result<Vec<(String, String)>, ApiError> {
    Ok(version_files::table
        .filter(version_files::project_id.eq(id))
        .filter(version_files::version.eq(version))
        .order(version_files::path.asc())
        .select((version_files::path, version_files::blob))
        .load(conn)?)
}

fn settings_of(conn: &mut SqliteConnection, id: &str, version: i64) -> Result<Settings, ApiError> {
    let raw: String = versions::table
        .find((id, version))
        .select(versions::settings)
        .first(conn)?;
    serde_json::from_str(&raw).map_err(ApiError::internal)
}

/// Commits a new version on top of head: `settings` and `files` are its whole content.
/// Clears the redo stack, as any new change does.
fn commit(
    conn: &mut SqliteConnection,
    project: &ProjectRow,
    message: &str,
    settings: &Settings,
    files: &[(String, String)],
) -> Result<i64, ApiError> {
    let number: i64 = versions::table
        .filter(versions::project_id.eq(&project.id))
        .select(diesel::dsl::max(versions::number))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0)
        + 1;
    let at = now();
    diesel::insert_into(versions::table)
        .values((
            versions::project_id.eq(&project.id),
            versions::number.eq(number),
            versions::parent.eq(Some(project.head_version)),
            versions::message.eq(message),
            versions::settings.eq(serde_json::to_string(settings).map_err(ApiError::internal)?),
            versions::created_at.eq(&at),
        ))
        .execute(conn)?;
    let rows: Vec<_> = files
        .iter()
        .map(|(path, blob)| {
            (
                version_files::project_id.eq(&project.id),
                version_files::version.eq(number),
                version_files::path.eq(path),
                version_files::blob.eq(blob),
            )
        })
        .collect();
    if !rows.is_empty() {
        diesel::insert_into(version_files::table)
            .values(rows)
            .execute(conn)?;
    }
    diesel::update(projects::table.find(&project.id))
        .set((
            projects::head_version.eq(number),
            projects::redo_stack.eq("[]"),
            projects::updated_at.eq(&at),
        ))
        .execute(conn)?;
    Ok(number)
}

const STARTER_PAGE: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  <title>New site</title>\n</head>\n<body>\n  <h1>New site</h1>\n  <p>Edit this page, or generate a site from a brief.</p>\n</body>\n</html>\n";

pub fn create(conn: &mut SqliteConnection, new: NewProject) -> Result<Project, ApiError> {
    let name = validate_name(&new.name)?;
    let settings = new.settings.unwrap_or_else(|| Settings {
        title: name.clone(),
        ..Settings::default()
    });
    settings.validate()?;
    let id = uuid::Uuid::new_v4().to_string();
    conn.transaction(|conn| {
        let at = now();
        diesel::insert_into(projects::table)
            .values((
                projects::id.eq(&id),
                projects::name.eq(&name),
                projects::head_version.eq(1),
                projects::created_at.eq(&at),
                projects::updated_at.eq(&at),
            ))
            .execute(conn)?;
        diesel::insert_into(versions::table)
            .values((
                versions::project_id.eq(&id),
                versions::number.eq(1),
                versions::message.eq("created the project"),
                versions::settings
                    .eq(serde_json::to_string(&settings).map_err(ApiError::internal)?),
                versions::created_at.eq(&at),
            ))
            .execute(conn)?;
        let blob = put_blob(conn, STARTER_PAGE.as_bytes())?;
        diesel::insert_into(version_files::table)
            .values((
                version_files::project_id.eq(&id),
                version_files::version.eq(1),
                version_files::path.eq("index.html"),
                version_files::blob.eq(&blob),
            ))
            .execute(conn)?;
        Ok::<_, ApiError>(())
    })?;
    get(conn, &id)
}

pub fn get(conn: &mut SqliteConnection, id: &str) -> Result<Project, ApiError> {
    let project = row(conn, id)?;
    let settings = settings_of(conn, id, project.head_version)?;
    let files = version_files::table
        .inner_join(blobs::table.on(blobs::hash.eq(version_files::blob)))
        .filter(version_files::project_id.eq(id))
        .filter(version_files::version.eq(project.head_version))
        .order(version_files::path.asc())
        .select((version_files::path, blobs::size, blobs::hash))
        .load::<(String, i64, String)>(conn)?
        .into_iter()
        .map(|(path, size, hash)| FileEntry {
            path,
            size,
            etag: etag_of(&hash),
        })
        .collect();
    let parent: Option<i64> = versions::table
        .find((id, project.head_version))
        .select(versions::parent)
        .first(conn)?;
    Ok(Project {
        can_undo: parent.is_some(),
        can_redo: !project.redo().is_empty(),
        id: project.id,
        name: project.name,
        settings,
        head_version: project.head_version,
        files,
        created_at: project.created_at,
        updated_at: project.updated_at,
    })
}

pub fn list(
    conn: &mut SqliteConnection,
    page: i64,
    per_page: i64,
) -> Result<ProjectList, ApiError> {
    if page < 1 {
        return Err(ApiError::validation("page", "page numbers start at 1"));
    }
    if !(1..=MAX_PROJECTS_PER_PAGE).contains(&per_page) {
        return Err(ApiError::validation(
            "per_page",
            format!("per_page must be 1 to {MAX_PROJECTS_PER_PAGE}"),
        ));
    }
    let total: i64 = projects::table.count().get_result(conn)?;
    let projects = projects::table
        .order((projects::updated_at.desc(), projects::id.asc()))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select((
            projects::id,
            projects::name,
            projects::head_version,
            projects::updated_at,
        ))
        .load::<(String, String, i64, String)>(conn)?
        .into_iter()
        .map(|(id, name, head_version, updated_at)| ProjectSummary {
            id,
            name,
            head_version,
            updated_at,
        })
        .collect();
    Ok(ProjectList {
        projects,
        page,
        per_page,
        total,
    })
}

/// Renames (not versioned: the name is the project's label) and/or changes settings (a new
/// version).
pub fn update(
    conn: &mut SqliteConnection,
    id: &str,
    patch: ProjectPatch,
) -> Result<Project, ApiError> {
    let name = patch.name.as_deref().map(validate_name).transpose()?;
    if let Some(settings) = &patch.settings {
        settings.validate()?;
    }
    conn.transaction(|conn| {
        let project = row(conn, id)?;
        if let Some(name) = &name {
            diesel::update(projects::table.find(id))
                .set((projects::name.eq(name), projects::updated_at.eq(now())))
                .execute(conn)?;
        }
        if let Some(settings) = &patch.settings
            && *settings != settings_of(conn, id, project.head_version)?
        {
            let files = manifest(conn, id, project.head_version)?;
            commit(conn, &project, "changed the settings", settings, &files)?;
        }
        Ok::<_, ApiError>(())
    })?;
    get(conn, id)
}

pub fn delete(conn: &mut SqliteConnection, id: &str) -> Result<(), ApiError> {
    conn.transaction(|conn| {
        row(conn, id)?;
        diesel::delete(version_files::table.filter(version_files::project_id.eq(id)))
            .execute(conn)?;
        diesel::delete(versions::table.filter(versions::project_id.eq(id))).execute(conn)?;
        diesel::delete(projects::table.find(id)).execute(conn)?;
        // Contents no version refers to any more.
        diesel::delete(blobs::table.filter(diesel::dsl::not(diesel::dsl::exists(
            version_files::table.filter(version_files::blob.eq(blobs::hash)),
        ))))
        .execute(conn)?;
        Ok(())
    })
}

/// The head version's settings, every file's path, and the HTML pages' contents.
struct HtmlPages {
    settings: Settings,
    paths: BTreeSet<String>,
    pages: Vec<(String, String)>,
}

fn html_pages(conn: &mut SqliteConnection, id: &str) -> Result<HtmlPages, ApiError> {
    let project = row(conn, id)?;
    let settings = settings_of(conn, id, project.head_version)?;
    let files = manifest(conn, id, project.head_version)?;
    let paths: BTreeSet<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let mut pages = Vec::new();
    for (path, hash) in files {
        let is_html = FilePath::parse(&path)
            .is_ok_and(|p| p.page_type().is_some_and(|t| t.starts_with("text/html")));
        if is_html {
            pages.push((
                path,
                String::from_utf8_lossy(&blob(conn, &hash)?).into_owned(),
            ));
        }
    }
    Ok(HtmlPages {
        settings,
        paths,
        pages,
    })
}

/// The SEO report of the head version: every HTML page, or just `only`.
pub fn seo(
    conn: &mut SqliteConnection,
    id: &str,
    only: Option<&FilePath>,
) -> Result<seo::ProjectReport, ApiError> {
    let HtmlPages {
        settings,
        paths,
        pages,
    } = html_pages(conn, id)?;
    if let Some(only) = only
        && !pages.iter().any(|(p, _)| p == only.as_str())
    {
        return Err(ApiError::NotFound(format!(
            "the project has no HTML page {:?}",
            only.as_str()
        )));
    }
    let reports = pages
        .iter()
        .filter(|(p, _)| only.is_none_or(|o| o.as_str() == p))
        .map(|(path, html)| seo::analyse_page(path, html, &settings, &paths))
        .collect();
    Ok(seo::project_report(reports))
}

/// `sitemap.xml` and `robots.txt` for the head version; needs the site's URL in settings.
pub fn sitemap_and_robots(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<(String, String), ApiError> {
    let HtmlPages {
        settings, pages, ..
    } = html_pages(conn, id)?;
    if settings.site_url.is_empty() {
        return Err(ApiError::validation(
            "settings.site_url",
            "set the site's URL in the project settings first: a sitemap lists absolute addresses",
        ));
    }
    let paths: Vec<String> = pages.into_iter().map(|(p, _)| p).collect();
    Ok((
        seo::sitemap(&settings.site_url, &paths),
        seo::robots(&settings.site_url),
    ))
}

/// Whether `path` is an HTML page of the project's head version (false for an unknown project).
pub fn has_page(conn: &mut SqliteConnection, id: &str, path: &str) -> Result<bool, ApiError> {
    let is_page = std::path::Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    if !is_page {
        return Ok(false);
    }
    let head: Option<i64> = projects::table
        .find(id)
        .select(projects::head_version)
        .first(conn)
        .optional()?;
    let Some(head) = head else { return Ok(false) };
    let n: i64 = version_files::table
        .filter(version_files::project_id.eq(id))
        .filter(version_files::version.eq(head))
        .filter(version_files::path.eq(path))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The project's name and the head version's files with their contents, by path.
pub fn head_files(conn: &mut SqliteConnection, id: &str) -> Result<(String, i64, Files), ApiError> {
    let project = row(conn, id)?;
    let mut files = Vec::new();
    for (path, hash) in manifest(conn, id, project.head_version)? {
        files.push((path, blob(conn, &hash)?));
    }
    Ok((project.name, project.head_version, files))
}

/// Commits a version whose files are exactly `files` (a whole new site), keeping settings.
pub fn replace_files(
    conn: &mut SqliteConnection,
    id: &str,
    message: &str,
    files: &std::collections::BTreeMap<String, String>,
) -> Result<i64, ApiError> {
    conn.transaction(|conn| {
        let project = row(conn, id)?;
        let settings = settings_of(conn, id, project.head_version)?;
        let mut manifest = Vec::with_capacity(files.len());
        for (path, content) in files {
            let path = FilePath::parse(path)?;
            manifest.push((
                path.as_str().to_owned(),
                put_blob(conn, content.as_bytes())?,
            ));
        }
        commit(conn, &project, message, &settings, &manifest)
    })
}
