//! The HTTP side of getting a site out: the sandboxed preview of a project's current version,
//! the published sites, the zips built in the request, and exports and publishing as jobs.
//! Everything a visitor's browser renders here is sandboxed (`Content-Security-Policy:
//! sandbox …`), so a site's scripts never act with the workspace's privileges. The preview
//! the editor shows is served under a short-lived read-only capability
//! (`websplat_contract::preview`), so the page's own stylesheets, images, fonts and beacon
//! load without the workspace cookie, which a sandboxed page never sends. The routes are
//! declared in `routes`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use websplat_contract::preview as capability;

use crate::DataDir;
use crate::analytics::{self, Source};
use crate::error::ApiError;
use crate::extract::project_id;
use crate::jobs::{self, Jobs, Kind};
use crate::projects::{self, FilePath, pages};
use crate::store::Store;
use crate::trust::Trust;

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

/// The sandbox every preview answer carries: an opaque origin that may run the page's
/// scripts, submit its forms and open its links, and nothing else.
pub const PREVIEW_SANDBOX: &str = "sandbox allow-scripts allow-forms allow-popups";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewLinkQuery {
    page: Option<String>,
}

/// A short-lived, read-only address of a project's preview (`?page=` a file of it, by
/// default `index.html`), signed with the tenant secret.
pub async fn preview_link(
    store: Data,
    trust: web::Data<Trust>,
    id: web::Path<String>,
    q: web::Query<PreviewLinkQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let page = FilePath::parse(q.page.as_deref().unwrap_or("index.html"))?;
    let project = uuid::Uuid::parse_str(&id).map_err(ApiError::internal)?;
    // The project must exist (its pages need not: the preview says which are missing).
    let lookup = id.clone();
    store
        .run(move |c| projects::get(c, &lookup).map(|_| ()))
        .await?;
    let expires = chrono::Utc::now().timestamp() + capability::LIFETIME_SECS;
    let token = capability::mint(trust.preview_key(), project, expires);
    let expires_at = chrono::DateTime::from_timestamp(expires, 0).map(|t| t.to_rfc3339());
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "url": capability::path(&token, &encode_path(page.as_str())),
            "base": capability::path(&token, ""),
            "expires_at": expires_at,
        })))
}

/// Each segment of a file path percent-encoded (what a browser would request).
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            url::form_urlencoded::byte_serialize(segment.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A file of a project's current version under a preview capability, sandboxed, or the
/// capability's analytics beacon. A refused capability is a 404: it names nothing.
pub async fn preview_capability(
    store: Data,
    trust: web::Data<Trust>,
    req: HttpRequest,
    params: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (token, path) = params.into_inner();
    let cap = capability::verify(trust.preview_key(), &token, chrono::Utc::now().timestamp())
        .map_err(|refusal| {
            tracing::info!(%refusal, "refused a preview capability");
            ApiError::NotFound(
                "This preview link has expired; reload the preview from the workspace.".to_owned(),
            )
        })?;
    let id = cap.project.hyphenated().to_string();
    if path == capability::BEACON {
        let query = web::Query::<analytics::BeaconQuery>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .unwrap_or_default();
        let query = analytics::BeaconQuery {
            p: Some(id),
            s: Some("preview".to_owned()),
            ..query
        };
        return Ok(analytics::http::count(&store, &req, query).await);
    }
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path
    };
    let path = FilePath::parse(&path)?;
    let endpoint = capability::path(&token, capability::BEACON);
    let tag = analytics::beacon_at(&endpoint, &id, path.as_str(), Source::Preview);
    let page = store.run(move |c| pages::get(c, &id, &path)).await?;
    let body = if page.content_type.starts_with("text/html") {
        analytics::inject(&String::from_utf8_lossy(&page.content), &tag).into_bytes()
    } else {
        page.content
    };
    Ok(HttpResponse::Ok()
        .content_type(page.content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, PREVIEW_SANDBOX))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .insert_header((header::ETAG, page.etag))
        .body(body))
}
