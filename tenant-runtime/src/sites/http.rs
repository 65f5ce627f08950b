//! The HTTP side of getting a site out: the sandboxed preview of a project's current version,
//! the published sites, the zips built in the request, and exports and publishing as jobs.
//! Everything a visitor's browser renders here is sandboxed (`Content-Security-Policy:
//! sandbox …`), so a site's scripts never act with the workspace's privileges. The routes
//! are declared in `routes`.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::DataDir;
use crate::analytics::{self, Source};
use crate::error::ApiError;
use crate::extract::project_id;
use crate::jobs::{self, Jobs, Kind};
use crate::projects::{self, FilePath, pages};
use crate::store::Store;

type Data = web::Data<Store>;

/// The current version as a static-site zip, built in the request.
pub async fn export_zip(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (name, _, files) = store.run(move |c| projects::head_files(c, &id)).await?;
    let bytes = web::block(move || super::zip(&files))
        .await
        .map_err(ApiError::internal)??;
    Ok(jobs::http::zip_download(
        &super::file_name(&name, ""),
        bytes,
    ))
}

/// The pages as Markdown (zip), built in the request.
pub async fn export_markdown(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (name, _, files) = store.run(move |c| projects::head_files(c, &id)).await?;
    let bytes = web::block(move || super::zip(&super::markdown_files(files)))
        .await
        .map_err(ApiError::internal)??;
    Ok(jobs::http::zip_download(
        &super::file_name(&name, "-markdown"),
        bytes,
    ))
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Every file of the current version, ready for any web host.
    #[default]
    Site,
    /// The pages as Markdown.
    Markdown,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    #[serde(default)]
    format: ExportFormat,
}

pub async fn start_export(
    jobs: web::Data<Jobs>,
    id: web::Path<String>,
    body: web::Json<ExportRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let kind = match body.format {
        ExportFormat::Site => Kind::ExportSite,
        ExportFormat::Markdown => Kind::ExportMarkdown,
    };
    Ok(jobs::http::accepted(&jobs.submit_export(id, kind).await?))
}

pub async fn publish(
    jobs: web::Data<Jobs>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(jobs::http::accepted(
        &jobs.submit_export(id, Kind::PublishSite).await?,
    ))
}

/// A published site, as its visitors see it: sandboxed like the preview, so the site's
/// scripts never act with the workspace's privileges.
pub async fn site(
    dir: web::Data<DataDir>,
    params: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, path) = params.into_inner();
    let id = project_id(&id)?;
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path
    };
    let path = FilePath::parse(&path)?;
    let file = super::published_file(&dir.0, &id, &path).ok_or_else(|| {
        ApiError::NotFound(format!("nothing is published at {:?}", path.as_str()))
    })?;
    let content = web::block(move || std::fs::read(file))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(path.content_type())
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "sandbox allow-scripts allow-forms allow-popups",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(content))
}

/// A project's page as a site visitor sees it, sandboxed: an opaque origin that can run the
/// page's scripts but cannot read the workspace's cookies or call its API.
pub async fn preview(
    store: Data,
    params: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, path) = params.into_inner();
    let path = if path.is_empty() {
        "index.html".to_owned()
    } else {
        path
    };
    let (id, path) = (project_id(&id)?, FilePath::parse(&path)?);
    let tag = analytics::beacon(&id, path.as_str(), Source::Preview);
    let page = store.run(move |c| pages::get(c, &id, &path)).await?;
    let body = if page.content_type.starts_with("text/html") {
        analytics::inject(&String::from_utf8_lossy(&page.content), &tag).into_bytes()
    } else {
        page.content
    };
    Ok(HttpResponse::Ok()
        .content_type(page.content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox allow-scripts"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body))
}
