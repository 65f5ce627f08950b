//! The runtime's HTTP layer: request ids, handlers and the one place that declares every
//! route. Handlers parse input and call `projects`; no SQL here.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use tracing::Instrument;

use crate::agents::{self, AgentInput};
use crate::error::ApiError;
use crate::projects::{self, FilePath, NewProject, ProjectPatch, pages};
use crate::quota::Quota;
use crate::store::Store;

tokio::task_local! {
    static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// Request id (the caller's `X-Request-Id` when sane), span and access log.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    let result = REQUEST_ID
        .scope(id.clone(), next.call(req).instrument(span.clone()))
        .await;
    let mut res = result?;
    span.in_scope(|| tracing::info!(status = res.status().as_u16(), "served"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// A resource id from a path: a UUID, or "not found" (never a 400 that hints at the format).
fn parse_id(raw: &str, what: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::NotFound(format!("there is no {what} {raw:?}")))
}

fn project_id(raw: &str) -> Result<String, ApiError> {
    parse_id(raw, "project")
}

fn if_match(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    req.headers()
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str().map(|s| s.trim().to_owned()).map_err(|_| {
                ApiError::BadRequest("the If-Match header is not readable text".to_owned())
            })
        })
        .transpose()
}

/// Reads a text body of at most `limit` bytes, refusing non-UTF-8 and non-text types.
async fn text_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<String, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let textual = content_type.starts_with("text/")
        || content_type.starts_with("application/javascript")
        || content_type.starts_with("application/octet-stream");
    if !textual {
        return Err(ApiError::UnsupportedMediaType(
            "send the page as text (Content-Type text/html, text/css, text/javascript or text/markdown)".to_owned(),
        ));
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "a page may be at most {limit} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::BadRequest("the page is not valid UTF-8 text".to_owned()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    from: i64,
    to: i64,
}

type Data = web::Data<Store>;

/// The answer to a page or asset write: 201 when created, the new ETag and version.
fn written_response(path: &str, written: pages::Written) -> HttpResponse {
    let mut response = if written.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, written.etag.clone()))
        .json(serde_json::json!({"path": path, "etag": written.etag, "head_version": written.version}))
}

#[utoipa::path(get, path = "/api/v1/usage", tag = "workspace", summary = "Storage used and allowed", responses((status = 200, description = "Usage"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn usage(quota: web::Data<Quota>) -> HttpResponse {
    HttpResponse::Ok().json(quota.usage())
}

#[utoipa::path(get, path = "/healthz", tag = "workspace", summary = "The runtime is alive", responses((status = 200, description = "Alive"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", summary = "List projects (?page=&per_page=)", responses((status = 200, description = "A page of projects"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_projects(
    store: Data,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, per_page) = (q.page.unwrap_or(1), q.per_page.unwrap_or(20));
    let list = store
        .run(move |c| projects::list(c, page, per_page))
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Room a new project's first version takes, at most.
const NEW_PROJECT_BYTES: u64 = 16 * 1024;

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", summary = "Create a project", responses((status = 201, description = "The project"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn create_project(
    store: Data,
    quota: web::Data<Quota>,
    body: web::Json<NewProject>,
) -> Result<HttpResponse, ApiError> {
    quota.check(NEW_PROJECT_BYTES)?;
    let project = store
        .run(move |c| projects::create(c, body.into_inner()))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/projects/{}", project.id)))
        .json(project))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects", summary = "Show a project at its current version", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The project"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn get_project(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| projects::get(c, &id)).await?))
}

#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "projects", summary = "Rename or change settings (a settings change is a version)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The project"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn update_project(
    store: Data,
    id: web::Path<String>,
    body: web::Json<ProjectPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| projects::update(c, &id, body.into_inner()))
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects", summary = "Delete a project and its history", params(("id" = String, Path, description = "The resource's id")), responses((status = 204, description = "Deleted"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn delete_project(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    store.run(move |c| projects::delete(c, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/pages", tag = "pages", summary = "The pages with their ETags", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "Pages"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_pages(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let project = store.run(move |c| projects::get(c, &id)).await?;
    let pages: Vec<_> = project
        .files
        .into_iter()
        .filter(|f| FilePath::parse(&f.path).is_ok_and(|p| p.page_type().is_some()))
        .collect();
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "pages": pages, "head_version": project.head_version })))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/pages/{path}", tag = "pages", summary = "Read a page (raw, with ETag); the same handler serves assets", params(("id" = String, Path, description = "The resource's id"), ("path" = String, Path, description = "A file path in the project, e.g. index.html")), responses((status = 200, description = "The page"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn get_page(
    store: Data,
    params: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, path) = params.into_inner();
    let (id, path) = (project_id(&id)?, FilePath::parse(&path)?);
    let page = store.run(move |c| pages::get(c, &id, &path)).await?;
    Ok(HttpResponse::Ok()
        .content_type(page.content_type)
        .insert_header((header::ETAG, page.etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(page.content))
}

#[utoipa::path(put, path = "/api/v1/projects/{id}/pages/{path}", tag = "pages", summary = "Write a page as raw text; If-Match for existing pages (409 with `current` when stale, 428 without)", params(("id" = String, Path, description = "The resource's id"), ("path" = String, Path, description = "A file path in the project, e.g. index.html")), responses((status = 200, description = "Saved as a new version (201 when created)"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn put_page(
    store: Data,
    quota: web::Data<Quota>,
    req: HttpRequest,
    params: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (id, path) = params.into_inner();
    let (id, path) = (project_id(&id)?, FilePath::parse(&path)?);
    let if_match = if_match(&req)?;
    let content = text_body(&req, payload, pages::MAX_PAGE_BYTES).await?;
    quota.check(content.len() as u64)?;
    let shown = path.as_str().to_owned();
    let written = store
        .run(move |c| pages::put(c, &id, &path, &content, if_match.as_deref()))
        .await?;
    Ok(written_response(&shown, written))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/pages/{path}", tag = "pages", summary = "Delete a page (If-Match)", params(("id" = String, Path, description = "The resource's id"), ("path" = String, Path, description = "A file path in the project, e.g. index.html")), responses((status = 204, description = "Deleted (a new version)"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn delete_page(
    store: Data,
    req: HttpRequest,
    params: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, path) = params.into_inner();
    let (id, path) = (project_id(&id)?, FilePath::parse(&path)?);
    let if_match = if_match(&req)?;
    store
        .run(move |c| pages::delete(c, &id, &path, if_match.as_deref()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/versions", tag = "versions", summary = "History, newest first", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "History"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn versions(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| projects::history(c, &id)).await?))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/diff", tag = "versions", summary = "Unified diffs between two versions (?from=&to=)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "Changes"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn diff(
    store: Data,
    id: web::Path<String>,
    q: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (from, to) = (q.from, q.to);
    let files = store.run(move |c| projects::diff(c, &id, from, to)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"from": from, "to": to, "files": files})))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/undo", tag = "versions", summary = "Move back to the previous version", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The project"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn undo(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| projects::undo(c, &id)).await?))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/redo", tag = "versions", summary = "Move forward again", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The project"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn redo(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| projects::redo(c, &id)).await?))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/versions/{number}/restore", tag = "versions", summary = "Commit a copy of an old version", params(("id" = String, Path, description = "The resource's id"), ("number" = i64, Path, description = "A version number")), responses((status = 200, description = "The project"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn restore(
    store: Data,
    params: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, number) = params.into_inner();
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| projects::restore(c, &id, number))
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeoQuery {
    page: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/seo", tag = "seo", summary = "SEO report with findings and scores (?page=)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The report"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn seo(
    store: Data,
    id: web::Path<String>,
    q: web::Query<SeoQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let only = q.page.as_deref().map(FilePath::parse).transpose()?;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| projects::seo(c, &id, only.as_ref()))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/sitemap.xml", tag = "seo", summary = "sitemap.xml from the site URL", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "XML"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn sitemap(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (xml, _) = store
        .run(move |c| projects::sitemap_and_robots(c, &id))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(xml))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/robots.txt", tag = "seo", summary = "robots.txt", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "Text"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn robots(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (_, robots) = store
        .run(move |c| projects::sitemap_and_robots(c, &id))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(robots))
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", summary = "List agents", responses((status = 200, description = "A page of agents"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_agents(store: Data, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let (page, per_page) = (q.page.unwrap_or(1), q.per_page.unwrap_or(20));
    Ok(HttpResponse::Ok().json(store.run(move |c| agents::list(c, page, per_page)).await?))
}

#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", summary = "Create an agent", responses((status = 201, description = "The agent"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn create_agent(
    store: Data,
    body: web::Json<AgentInput>,
) -> Result<HttpResponse, ApiError> {
    let agent = store
        .run(move |c| agents::create(c, body.into_inner()))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/agents/{}", agent.id)))
        .json(agent))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", summary = "Show an agent", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The agent"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn get_agent(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "agent")?;
    Ok(HttpResponse::Ok().json(store.run(move |c| agents::get(c, &id)).await?))
}

#[utoipa::path(put, path = "/api/v1/agents/{id}", tag = "agents", summary = "Replace an agent's configuration", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The agent"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn replace_agent(
    store: Data,
    id: web::Path<String>,
    body: web::Json<AgentInput>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "agent")?;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| agents::replace(c, &id, body.into_inner()))
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", summary = "Delete an agent", params(("id" = String, Path, description = "The resource's id")), responses((status = 204, description = "Deleted"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn delete_agent(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "agent")?;
    store.run(move |c| agents::delete(c, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn zip_download(file_name: &str, bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/export.zip", tag = "publishing", summary = "The current version as a static-site zip, built in the request (the UI exports through a job: POST .../exports)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "application/zip"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn export_zip(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (name, _, files) = store.run(move |c| projects::head_files(c, &id)).await?;
    let bytes = web::block(move || crate::export::zip(&files))
        .await
        .map_err(ApiError::internal)??;
    Ok(zip_download(&crate::export::file_name(&name, ""), bytes))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/export/markdown.zip", tag = "publishing", summary = "The pages as Markdown (zip), built in the request (the UI exports through a job: POST .../exports)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "application/zip"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn export_markdown(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (name, _, files) = store.run(move |c| projects::head_files(c, &id)).await?;
    let bytes = web::block(move || crate::export::zip(&crate::export::markdown_files(files)))
        .await
        .map_err(ApiError::internal)??;
    Ok(zip_download(
        &crate::export::file_name(&name, "-markdown"),
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

/// The answer to a request that queued a job: 202, where to follow it, the job.
fn job_accepted(job: &crate::jobs::Job) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/jobs/{}", job.id)))
        .json(job)
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/exports", tag = "publishing", summary = "Export the current version as a job ({\"format\": \"site\" | \"markdown\"}); the finished job's result names the zip to download (`artifact`)", params(("id" = String, Path, description = "The resource's id")), responses((status = 202, description = "The queued job"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn start_export(
    jobs: web::Data<crate::jobs::Jobs>,
    id: web::Path<String>,
    body: web::Json<ExportRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let kind = match body.format {
        ExportFormat::Site => crate::jobs::Kind::ExportSite,
        ExportFormat::Markdown => crate::jobs::Kind::ExportMarkdown,
    };
    Ok(job_accepted(&jobs.submit_export(id, kind).await?))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/publish", tag = "publishing", summary = "Publish the current version to /sites/{id}/ as a job; its result has the `url`", params(("id" = String, Path, description = "The resource's id")), responses((status = 202, description = "The queued job"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn publish(
    jobs: web::Data<crate::jobs::Jobs>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(job_accepted(
        &jobs
            .submit_export(id, crate::jobs::Kind::PublishSite)
            .await?,
    ))
}

/// A published site, as its visitors see it: sandboxed like the preview, so the site's
/// scripts never act with the workspace's privileges.
#[utoipa::path(get, path = "/sites/{id}/{path}", tag = "publishing", summary = "A published site, sandboxed", params(("id" = String, Path, description = "The resource's id"), ("path" = String, Path, description = "A file path in the project, e.g. index.html")), responses((status = 200, description = "The file"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn site(
    dir: web::Data<crate::DataDir>,
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
    let file = crate::export::published_file(&dir.0, &id, &path).ok_or_else(|| {
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

#[utoipa::path(post, path = "/api/v1/projects/{id}/generate", tag = "generation", summary = "Generate a site from a brief (a job)", params(("id" = String, Path, description = "The resource's id")), responses((status = 202, description = "The queued job"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn generate(
    jobs: web::Data<crate::jobs::Jobs>,
    id: web::Path<String>,
    brief: web::Json<crate::generator::Brief>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let job = jobs.submit_generation(id, brief.into_inner()).await?;
    Ok(job_accepted(&job))
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", summary = "Recent jobs", responses((status = 200, description = "Jobs"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_jobs(store: Data) -> Result<HttpResponse, ApiError> {
    let jobs = store.run(|c| crate::jobs::list(c, 50)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "jobs": jobs })))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", summary = "A job's state, with its steps in order (`steps`: name, label, state, message)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The job"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn get_job(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "job")?;
    Ok(HttpResponse::Ok().json(store.run(move |c| crate::jobs::get(c, &id)).await?))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/artifact", tag = "jobs", summary = "The zip a finished export job made (410 once removed: kept 24 hours, until the next export)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "application/zip"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn job_artifact(
    store: Data,
    dir: web::Data<crate::DataDir>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "job")?;
    let job = store.run(move |c| crate::jobs::get(c, &id)).await?;
    let (file, name) = crate::jobs::artifact(&dir.0, &job)?;
    let bytes = web::block(move || std::fs::read(file))
        .await
        .map_err(ApiError::internal)?
        .map_err(|_| ApiError::Gone("this export was just removed; export it again".to_owned()))?;
    Ok(zip_download(&name, bytes))
}

fn sse_event(job: &crate::jobs::Job) -> web::Bytes {
    let data = serde_json::to_string(job).unwrap_or_default();
    web::Bytes::from(format!("event: job\ndata: {data}\n\n"))
}

/// Server-sent events of jobs' progress: `only` one job (starting with its state, ending when
/// it finishes), or every job.
fn job_stream(
    first: Option<crate::jobs::Job>,
    rx: tokio::sync::broadcast::Receiver<crate::jobs::Job>,
    only: Option<String>,
) -> HttpResponse {
    use tokio::sync::broadcast::error::RecvError;
    let done = first.as_ref().is_some_and(|j| j.is_finished());
    let opening = match &first {
        // A finished job's stream ends at once; tell EventSource not to come back soon.
        Some(job) if done => {
            web::Bytes::from([b"retry: 3600000\n".as_slice(), &sse_event(job)].concat())
        }
        Some(job) => sse_event(job),
        None => web::Bytes::from_static(b": listening\n\n"),
    };
    // Events older than the opening state (sent while it was read) are stale: skip them.
    let since = first.map(|j| j.updated_at);
    let state = (rx, only, since, done, Some(opening));
    let stream = futures_util::stream::unfold(
        state,
        |(mut rx, only, since, done, mut opening)| async move {
            if let Some(bytes) = opening.take() {
                return Some((
                    Ok::<_, actix_web::Error>(bytes),
                    (rx, only, since, done, None),
                ));
            }
            if done {
                return None;
            }
            loop {
                tokio::select! {
                    received = rx.recv() => match received {
                        Ok(job)
                            if only.as_ref().is_none_or(|id| *id == job.id)
                                && since.as_ref().is_none_or(|s| job.updated_at >= *s) =>
                        {
                            let finished = only.is_some() && job.is_finished();
                            return Some((Ok(sse_event(&job)), (rx, only, since, finished, None)));
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                    () = tokio::time::sleep(std::time::Duration::from_secs(15)) => {
                        return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), (rx, only, since, false, None)));
                    }
                }
            }
        },
    );
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(stream)
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs", summary = "A job's progress as server-sent events", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "text/event-stream"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn job_events(
    store: Data,
    jobs: web::Data<crate::jobs::Jobs>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "job")?;
    // Subscribe before reading the state, so no event falls between the two.
    let rx = jobs.subscribe();
    let job = store
        .run({
            let id = id.clone();
            move |c| crate::jobs::get(c, &id)
        })
        .await?;
    Ok(job_stream(Some(job), rx, Some(id)))
}

#[utoipa::path(get, path = "/api/v1/jobs/events", tag = "jobs", summary = "Every job's progress as server-sent events", responses((status = 200, description = "text/event-stream"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn all_job_events(jobs: web::Data<crate::jobs::Jobs>) -> HttpResponse {
    job_stream(None, jobs.subscribe(), None)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/proposals", tag = "generation", summary = "Proposed versions", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "Proposals"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_proposals(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let proposals = store
        .run(move |c| crate::jobs::proposals_of(c, &id))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "proposals": proposals })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptQuery {
    #[serde(default)]
    force: bool,
}

#[utoipa::path(get, path = "/api/v1/proposals/{id}", tag = "generation", summary = "A proposal with the files it proposes (path -> content)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The proposal"), (status = "4XX", description = "The error shape")))]
pub async fn get_proposal(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "proposal")?;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| crate::jobs::proposal_with_files(c, &id))
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/proposals/{id}/accept", tag = "generation", summary = "Apply a proposal (?force=true over later edits)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The new version"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn accept_proposal(
    store: Data,
    id: web::Path<String>,
    q: web::Query<AcceptQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "proposal")?;
    let force = q.force;
    let version = store
        .run(move |c| crate::jobs::accept(c, &id, force))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "accepted", "version": version })))
}

#[utoipa::path(post, path = "/api/v1/proposals/{id}/reject", tag = "generation", summary = "Reject a proposal", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "Rejected"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn reject_proposal(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "proposal")?;
    store.run(move |c| crate::jobs::reject(c, &id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "rejected" })))
}

type Index = web::Data<crate::documents::SearchIndex>;

#[utoipa::path(post, path = "/api/v1/documents", tag = "documents", summary = "Upload documents (multipart/form-data): checked and stored at once, indexed by a job", responses((status = 202, description = "{documents (status indexing), job}: the documents become searchable as the job indexes them"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn upload_documents(
    jobs: web::Data<crate::jobs::Jobs>,
    quota: web::Data<Quota>,
    limit: web::Data<crate::documents::UploadLimit>,
    mut multipart: actix_multipart::Multipart,
) -> Result<HttpResponse, ApiError> {
    use crate::documents::{MAX_FILES, Upload, admit};
    let max = limit.0;
    let mut uploads: Vec<(String, Vec<u8>)> = Vec::new();
    let mut total: u64 = 0;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| {
            ApiError::BadRequest(format!("the upload is not valid multipart data: {e}"))
        })?;
        let Some(name) = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_owned)
        else {
            continue;
        };
        if uploads.len() == MAX_FILES {
            return Err(ApiError::BadRequest(format!(
                "upload at most {MAX_FILES} files at a time"
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::BadRequest(format!("the upload was cut short: {e}")))?;
            total += chunk.len() as u64;
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(ApiError::TooLarge(format!(
                    "{name:?} is larger than your upload limit of {max} bytes"
                )));
            }
            if total > max.saturating_mul(4) {
                return Err(ApiError::TooLarge(
                    "the files together are too large for one upload".to_owned(),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        uploads.push((name, bytes));
    }
    if uploads.is_empty() {
        return Err(ApiError::BadRequest(
            "attach one or more files (multipart/form-data with file fields)".to_owned(),
        ));
    }
    quota.check(total.saturating_mul(2))?;
    // Every file is checked before any is stored: a bad one stores none. Reading their
    // text, which can still fail for one of them, is the job's.
    let admitted = web::block(move || {
        uploads
            .into_iter()
            .map(|(name, bytes)| Ok(Upload::new(&name, admit(&name, &bytes)?, bytes)))
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await
    .map_err(ApiError::internal)??;
    let (documents, job) = jobs.submit_indexing(admitted).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/jobs/{}", job.id)))
        .json(serde_json::json!({ "documents": documents, "job": job })))
}

#[utoipa::path(get, path = "/api/v1/documents", tag = "documents", summary = "List documents, each with its status (indexing, indexed, failed with `error`)", responses((status = 200, description = "Documents"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_documents(store: Data) -> Result<HttpResponse, ApiError> {
    let documents = store.run(crate::documents::list).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "documents": documents })))
}

#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents", summary = "Show a document", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The document"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn get_document(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "document")?;
    Ok(HttpResponse::Ok().json(store.run(move |c| crate::documents::get(c, &id)).await?))
}

#[utoipa::path(delete, path = "/api/v1/documents/{id}", tag = "documents", summary = "Delete a document and its passages (also while it waits to be indexed)", params(("id" = String, Path, description = "The resource's id")), responses((status = 204, description = "Deleted"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn delete_document(
    store: Data,
    index: Index,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "document")?;
    let index = index.into_inner();
    store.run(move |c| index.delete(c, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/documents/search", tag = "documents", summary = "Search passages (?q=&limit=), highlighted", responses((status = 200, description = "Hits"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn search_documents(
    index: Index,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let hits = web::block(move || index.search(&q.q, q.limit.unwrap_or(10), false))
        .await
        .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "hits": hits })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionBody {
    question: String,
    limit: Option<usize>,
}

/// The passages that best answer a question, with their sources: what an agent reads.
#[utoipa::path(post, path = "/api/v1/documents/query", tag = "documents", summary = "The best passages for a question, with sources", responses((status = 200, description = "Passages"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn query_documents(
    index: Index,
    body: web::Json<QuestionBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let passages = web::block(move || index.search(&body.question, body.limit.unwrap_or(5), true))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            ApiError::Validation { message, .. } if message.contains("search for") => {
                ApiError::validation("question", "ask a question of 1 to 500 characters")
            }
            other => other,
        })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "passages": passages })))
}

#[derive(Deserialize)]
pub struct BeaconQuery {
    p: Option<String>,
    path: Option<String>,
    s: Option<String>,
    r: Option<String>,
}

/// The analytics beacon. It always answers with the pixel: a page never sees an error.
#[utoipa::path(get, path = "/a.gif", tag = "analytics", summary = "The analytics beacon (always a 1x1 GIF)", responses((status = 200, description = "image/gif"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn beacon(store: Data, req: HttpRequest, q: web::Query<BeaconQuery>) -> HttpResponse {
    let q = q.into_inner();
    let source = q.s.as_deref().and_then(crate::analytics::Source::parse);
    if let (Some(project), Some(path), Some(source)) = (
        q.p.as_deref().and_then(|p| project_id(p).ok()),
        q.path,
        source,
    ) {
        // Behind the platform's proxy the client is the first X-Forwarded-For hop.
        let client = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .or_else(|| req.peer_addr().map(|a| a.ip().to_string()))
            .unwrap_or_default();
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        let hit = crate::analytics::Hit {
            project_id: project,
            source,
            path,
            referrer: q.r,
            client,
            user_agent,
        };
        if let Err(e) = store.run(move |c| crate::analytics::record(c, hit)).await {
            tracing::warn!(error = %e, "a page view was not recorded");
        }
    }
    HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(crate::analytics::PIXEL)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    from: Option<String>,
    to: Option<String>,
    source: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/analytics", tag = "analytics", summary = "Page views by range (?from=&to=&source=)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The summary"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn analytics(
    store: Data,
    id: web::Path<String>,
    q: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (from, to) = crate::analytics::range(q.from.as_deref(), q.to.as_deref())?;
    let source = match q.source.as_deref() {
        None => crate::analytics::Source::Site,
        Some(raw) => crate::analytics::Source::parse(raw)
            .ok_or_else(|| ApiError::validation("source", "source must be site or preview"))?,
    };
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| crate::analytics::summary(c, &id, source, from, to))
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/sessions", tag = "chat", summary = "Start a chat session", params(("id" = String, Path, description = "The resource's id")), responses((status = 201, description = "The session"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn create_session(
    store: Data,
    id: web::Path<String>,
    body: web::Json<crate::chat::NewSession>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let session = store
        .run(move |c| crate::chat::create(c, &id, body.into_inner()))
        .await?;
    Ok(HttpResponse::Created().json(session))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/sessions", tag = "chat", summary = "A project's chat sessions", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "Sessions"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_sessions(
    store: Data,
    id: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (page, per_page) = (q.page.unwrap_or(1), q.per_page.unwrap_or(20));
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| crate::chat::list(c, &id, page, per_page))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "chat", summary = "Show a session", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The session"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn get_session(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "chat session")?;
    Ok(HttpResponse::Ok().json(store.run(move |c| crate::chat::get(c, &id)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionPatch {
    title: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/sessions/{id}", tag = "chat", summary = "Rename a session", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The session"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn rename_session(
    store: Data,
    id: web::Path<String>,
    body: web::Json<SessionPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "chat session")?;
    let title = body.into_inner().title;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| crate::chat::rename(c, &id, title.as_deref()))
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "chat", summary = "Delete a session", params(("id" = String, Path, description = "The resource's id")), responses((status = 204, description = "Deleted"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn delete_session(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "chat session")?;
    store.run(move |c| crate::chat::delete(c, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}/messages", tag = "chat", summary = "Messages, oldest first (?before=&limit=)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "Messages"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_messages(
    store: Data,
    id: web::Path<String>,
    q: web::Query<MessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "chat session")?;
    let (before, limit) = (q.before, q.limit.unwrap_or(50));
    let messages = store
        .run(move |c| crate::chat::messages(c, &id, before, limit))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "messages": messages })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    content: String,
}

/// Sends a message; the reply streams back as server-sent events: `message` (yours, stored),
/// `token`s of the reply, then `done` (the stored reply).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/messages", tag = "chat", summary = "Send a message; the reply streams as server-sent events", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "text/event-stream"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn send_message(
    store: Data,
    index: Index,
    id: web::Path<String>,
    body: web::Json<NewMessage>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "chat session")?;
    let content = body.into_inner().content;
    let index = index.into_inner();
    let (user, assistant) = store
        .run(move |c| crate::chat::converse(c, &index, &id, &content))
        .await?;
    let event = |name: &str, data: &serde_json::Value| {
        web::Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
    };
    let mut frames = vec![event("message", &serde_json::json!(user))];
    let words: Vec<&str> = assistant.content.split_inclusive(' ').collect();
    for chunk in words.chunks(4) {
        frames.push(event(
            "token",
            &serde_json::json!({ "text": chunk.concat() }),
        ));
    }
    frames.push(event("done", &serde_json::json!(assistant)));
    let stream = futures_util::stream::iter(frames.into_iter().map(Ok::<_, actix_web::Error>));
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(stream))
}

/// Reads a binary body of at most `limit` bytes.
async fn binary_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "an asset may be at most {limit} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/assets", tag = "pages", summary = "Images and fonts with their ETags", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "Assets"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_assets(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let project = store.run(move |c| projects::get(c, &id)).await?;
    let assets: Vec<_> = project
        .files
        .into_iter()
        .filter(|f| FilePath::parse(&f.path).is_ok_and(|p| p.asset_type().is_some()))
        .collect();
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "assets": assets, "head_version": project.head_version })))
}

#[utoipa::path(put, path = "/api/v1/projects/{id}/assets/{path}", tag = "pages", summary = "Write an image or font (raw bytes, checked by content)", params(("id" = String, Path, description = "The resource's id"), ("path" = String, Path, description = "A file path in the project, e.g. index.html")), responses((status = 200, description = "Saved (201 when created)"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn put_asset(
    store: Data,
    quota: web::Data<Quota>,
    req: HttpRequest,
    params: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (id, path) = params.into_inner();
    let (id, path) = (project_id(&id)?, FilePath::parse(&path)?);
    let if_match = if_match(&req)?;
    let content = binary_body(payload, pages::MAX_ASSET_BYTES).await?;
    quota.check(content.len() as u64)?;
    let shown = path.as_str().to_owned();
    let written = store
        .run(move |c| pages::put_asset(c, &id, &path, &content, if_match.as_deref()))
        .await?;
    Ok(written_response(&shown, written))
}

/// A project's page as a site visitor sees it, sandboxed: an opaque origin that can run the
/// page's scripts but cannot read the workspace's cookies or call its API.
#[utoipa::path(get, path = "/preview/{id}/{path}", tag = "publishing", summary = "Preview a page of the current version, sandboxed", params(("id" = String, Path, description = "The resource's id"), ("path" = String, Path, description = "A file path in the project, e.g. index.html")), responses((status = 200, description = "The file"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
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
    let tag = crate::analytics::beacon(&id, path.as_str(), crate::analytics::Source::Preview);
    let page = store.run(move |c| pages::get(c, &id, &path)).await?;
    let body = if page.content_type.starts_with("text/html") {
        crate::analytics::inject(&String::from_utf8_lossy(&page.content), &tag).into_bytes()
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

#[utoipa::path(get, path = "/api/v1/whoami", tag = "workspace", summary = "The user the platform vouched for (null without a tenant secret) and whether this runtime requires its signature", responses((status = 200, description = "{user, tenant_secret_required}"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn whoami(req: HttpRequest, trust: web::Data<crate::trust::Trust>) -> HttpResponse {
    let user = req
        .extensions()
        .get::<crate::trust::Verified>()
        .map(|v| v.user);
    HttpResponse::Ok().json(serde_json::json!({
        "user": user,
        "tenant_secret_required": trust.secret_required(),
    }))
}

/// A note's id from a path: a positive integer, or "not found".
fn note_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::NotFound(format!("there is no note {raw:?}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotesQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/notes", tag = "notes", summary = "Notes, newest first (?limit= 1 to 100, default 100; ?offset=)", responses((status = 200, description = "{items: [{id, text, created_at}]}"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_notes(store: Data, q: web::Query<NotesQuery>) -> Result<HttpResponse, ApiError> {
    let window = crate::notes::Window::parse(q.limit, q.offset)?;
    let items = store.run(move |c| crate::notes::list(c, window)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

#[utoipa::path(post, path = "/api/v1/notes", tag = "notes", summary = "Write a note ({\"text\"}: 1 to 10000 characters, trimmed)", responses((status = 201, description = "The note: {id, text, created_at}"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn create_note(
    store: Data,
    body: web::Json<crate::notes::NewNote>,
) -> Result<HttpResponse, ApiError> {
    let note = store
        .run(move |c| crate::notes::create(c, body.into_inner()))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/notes/{}", note.id)))
        .json(note))
}

#[utoipa::path(get, path = "/api/v1/notes/{id}", tag = "notes", summary = "Show a note", params(("id" = i64, Path, description = "The note's id")), responses((status = 200, description = "The note"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn get_note(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = note_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| crate::notes::get(c, id)).await?))
}

#[utoipa::path(delete, path = "/api/v1/notes/{id}", tag = "notes", summary = "Delete a note", params(("id" = i64, Path, description = "The note's id")), responses((status = 204, description = "Deleted"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn delete_note(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = note_id(&id)?;
    store.run(move |c| crate::notes::delete(c, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

type Staging = web::Data<crate::uploads::Staging>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageQuery {
    name: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", summary = "Stage a large file of any type: the raw body is streamed to the workspace volume and hashed (SHA-256); 413, leaving nothing, past the storage quota or the largest upload (WEBSPLAT_RUNTIME_MAX_STAGED_UPLOAD)", params(("name" = Option<String>, Query, description = "A display file name: 1 to 255 characters, no '/', '\\' or control characters, not '.' or '..'")), responses((status = 201, description = "{id, name, bytes, sha256, content_type (as sent, or application/octet-stream), created_at}"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn stage_upload(
    store: Data,
    quota: web::Data<Quota>,
    staging: Staging,
    req: HttpRequest,
    q: web::Query<StageQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let incoming = crate::uploads::Incoming::parse(q.name.as_deref(), req.headers())?;
    let upload = staging.receive(&store, &quota, incoming, payload).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/uploads/{}", upload.id)))
        .json(upload))
}

#[utoipa::path(get, path = "/api/v1/uploads", tag = "uploads", summary = "Staged uploads, newest first", responses((status = 200, description = "{items: [{id, name, bytes, sha256, content_type, created_at}]}"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn list_uploads(store: Data) -> Result<HttpResponse, ApiError> {
    let items = store.run(crate::uploads::list).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// A staged upload's bytes, streamed from disk. Always an attachment, never rendered: the
/// file is whatever the user sent, and the workspace's origin must not run it.
#[utoipa::path(get, path = "/api/v1/uploads/{id}", tag = "uploads", summary = "Download a staged upload (its content type, Content-Length, Content-Disposition: attachment with its name)", params(("id" = String, Path, description = "The resource's id")), responses((status = 200, description = "The file"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn get_upload(
    store: Data,
    staging: Staging,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::uploads::UploadId::parse(&id)?;
    let (upload, file, len) = staging.open_file(&store, id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, upload.content_type))
        .insert_header(crate::uploads::disposition(upload.name.as_deref()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(actix_web::body::SizedStream::new(
            len,
            crate::uploads::chunks(file),
        )))
}

#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "uploads", summary = "Delete a staged upload", params(("id" = String, Path, description = "The resource's id")), responses((status = 204, description = "Deleted"), (status = "4XX", description = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}")))]
pub async fn delete_upload(
    store: Data,
    staging: Staging,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::uploads::UploadId::parse(&id)?;
    staging.delete(&store, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "there is no {} {} in this workspace",
        req.method(),
        req.path()
    )))
}

/// The runtime's OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "WebSplat workspace API",
        description = "The API of a user's WebSplat workspace (tenant-runtime). When the runtime has a tenant secret (`WEBSPLAT_TENANT_SECRET`), every request must carry `X-Websplat-Identity: v1;user=<uuid>;ts=<unix seconds>;sig=<hex HMAC-SHA256 of \"v1\\n{user}\\n{ts}\\n{METHOD}\\n{path_and_query}\">`, which the platform adds to the requests it relays; any other request is answered 401."
    ),
    paths(
        openapi,
        usage,
        healthz,
        whoami,
        list_notes,
        create_note,
        get_note,
        delete_note,
        stage_upload,
        list_uploads,
        get_upload,
        delete_upload,
        list_projects,
        create_project,
        get_project,
        update_project,
        delete_project,
        list_pages,
        get_page,
        put_page,
        delete_page,
        list_assets,
        put_asset,
        versions,
        diff,
        undo,
        redo,
        restore,
        seo,
        sitemap,
        robots,
        list_agents,
        create_agent,
        get_agent,
        replace_agent,
        delete_agent,
        export_zip,
        export_markdown,
        start_export,
        publish,
        site,
        preview,
        generate,
        list_jobs,
        get_job,
        job_artifact,
        job_events,
        all_job_events,
        list_proposals,
        get_proposal,
        accept_proposal,
        reject_proposal,
        upload_documents,
        list_documents,
        get_document,
        delete_document,
        search_documents,
        query_documents,
        beacon,
        analytics,
        create_session,
        list_sessions,
        get_session,
        rename_session,
        delete_session,
        list_messages,
        send_message,
        crate::ws::connect
    )
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "workspace", summary = "This document", responses((status = 200, description = "OpenAPI 3.1")))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(<ApiDoc as utoipa::OpenApi>::openapi())
}

/// Every route the runtime serves.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use actix_web::web::{delete, patch, post, put};
    // Every GET answers HEAD too (headers only; actix sends no body for HEAD). Streams —
    // server-sent events and the WebSocket — are GET only.
    let get = || {
        web::route()
            .guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
    };
    let stream = web::get;
    cfg.route("/healthz", get().to(healthz))
        .route("/api/v1/openapi.json", get().to(openapi))
        .route("/api/v1/usage", get().to(usage))
        .route("/api/v1/whoami", get().to(whoami))
        .service(
            web::scope("/api/v1/notes")
                .route("", get().to(list_notes))
                .route("", post().to(create_note))
                .route("/{id}", get().to(get_note))
                .route("/{id}", delete().to(delete_note)),
        )
        .service(
            web::scope("/api/v1/uploads")
                .route("", get().to(list_uploads))
                .route("", post().to(stage_upload))
                .route("/{id}", get().to(get_upload))
                .route("/{id}", delete().to(delete_upload)),
        )
        .service(
            web::scope("/api/v1/projects")
                .route("", get().to(list_projects))
                .route("", post().to(create_project))
                .route("/{id}", get().to(get_project))
                .route("/{id}", patch().to(update_project))
                .route("/{id}", delete().to(delete_project))
                .route("/{id}/pages", get().to(list_pages))
                .route("/{id}/pages/{path:.+}", get().to(get_page))
                .route("/{id}/pages/{path:.+}", put().to(put_page))
                .route("/{id}/pages/{path:.+}", delete().to(delete_page))
                .route("/{id}/assets", get().to(list_assets))
                .route("/{id}/assets/{path:.+}", get().to(get_page))
                .route("/{id}/assets/{path:.+}", put().to(put_asset))
                .route("/{id}/assets/{path:.+}", delete().to(delete_page))
                .route("/{id}/versions", get().to(versions))
                .route("/{id}/versions/{number}/restore", post().to(restore))
                .route("/{id}/diff", get().to(diff))
                .route("/{id}/undo", post().to(undo))
                .route("/{id}/redo", post().to(redo))
                .route("/{id}/seo", get().to(seo))
                .route("/{id}/sitemap.xml", get().to(sitemap))
                .route("/{id}/robots.txt", get().to(robots))
                .route("/{id}/export.zip", get().to(export_zip))
                .route("/{id}/export/markdown.zip", get().to(export_markdown))
                .route("/{id}/exports", post().to(start_export))
                .route("/{id}/publish", post().to(publish))
                .route("/{id}/generate", post().to(generate))
                .route("/{id}/proposals", get().to(list_proposals))
                .route("/{id}/analytics", get().to(analytics))
                .route("/{id}/sessions", get().to(list_sessions))
                .route("/{id}/sessions", post().to(create_session)),
        )
        .service(
            web::scope("/api/v1/jobs")
                .route("", get().to(list_jobs))
                .route("/events", stream().to(all_job_events))
                .route("/{id}", get().to(get_job))
                .route("/{id}/artifact", get().to(job_artifact))
                .route("/{id}/events", stream().to(job_events)),
        )
        .service(
            web::scope("/api/v1/documents")
                .route("", get().to(list_documents))
                .route("", post().to(upload_documents))
                .route("/search", get().to(search_documents))
                .route("/query", post().to(query_documents))
                .route("/{id}", get().to(get_document))
                .route("/{id}", delete().to(delete_document)),
        )
        .service(
            web::scope("/api/v1/sessions")
                .route("/{id}", get().to(get_session))
                .route("/{id}", patch().to(rename_session))
                .route("/{id}", delete().to(delete_session))
                .route("/{id}/messages", get().to(list_messages))
                .route("/{id}/messages", post().to(send_message)),
        )
        .route("/api/v1/proposals/{id}", get().to(get_proposal))
        .route("/api/v1/proposals/{id}/accept", post().to(accept_proposal))
        .route("/api/v1/proposals/{id}/reject", post().to(reject_proposal))
        .service(
            web::scope("/api/v1/agents")
                .route("", get().to(list_agents))
                .route("", post().to(create_agent))
                .route("/{id}", get().to(get_agent))
                .route("/{id}", put().to(replace_agent))
                .route("/{id}", delete().to(delete_agent)),
        )
        .route("/a.gif", get().to(beacon))
        .route("/ws", stream().to(crate::ws::connect))
        .route("/preview/{id}/{path:.*}", get().to(preview))
        .route("/sites/{id}/{path:.*}", get().to(site))
        .default_service(web::to(not_found));
}
