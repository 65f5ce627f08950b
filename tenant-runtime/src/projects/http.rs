//! The HTTP side of projects: the projects themselves, their pages and assets (raw bodies,
//! ETags and `If-Match`), their history, and their SEO report, `sitemap.xml` and
//! `robots.txt`. Handlers only read the request and shape the answer; the rules live in
//! `projects`, `pages` and `versions`. The routes are declared in `routes`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{FilePath, NewProject, ProjectPatch, pages};
use crate::error::ApiError;
use crate::extract::{ListQuery, binary_body, if_match, project_id, text_body};
use crate::quota::Quota;
use crate::store::Store;

type Data = web::Data<Store>;

/// Room a new project's first version takes, at most.
const NEW_PROJECT_BYTES: u64 = 16 * 1024;

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

pub async fn list_projects(
    store: Data,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, per_page) = q.window();
    let list = store.run(move |c| super::list(c, page, per_page)).await?;
    Ok(HttpResponse::Ok().json(list))
}

pub async fn create_project(
    store: Data,
    quota: web::Data<Quota>,
    body: web::Json<NewProject>,
) -> Result<HttpResponse, ApiError> {
    quota.check(NEW_PROJECT_BYTES)?;
    let project = store
        .run(move |c| super::create(c, body.into_inner()))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/projects/{}", project.id)))
        .json(project))
}

pub async fn get_project(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::get(c, &id)).await?))
}

pub async fn update_project(
    store: Data,
    id: web::Path<String>,
    body: web::Json<ProjectPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| super::update(c, &id, body.into_inner()))
            .await?,
    ))
}

pub async fn delete_project(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    store.run(move |c| super::delete(c, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_pages(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let project = store.run(move |c| super::get(c, &id)).await?;
    let pages: Vec<_> = project
        .files
        .into_iter()
        .filter(|f| FilePath::parse(&f.path).is_ok_and(|p| p.page_type().is_some()))
        .collect();
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "pages": pages, "head_version": project.head_version })))
}

/// A page, raw, with its ETag: data for the editor (which reads it with `fetch`), never a
/// live document on the workspace origin. A page or a preview that navigates here gets an
/// attachment in a sandbox (an opaque origin, no script), so it cannot act as the workspace.
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
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_DISPOSITION, "attachment"))
        .body(page.content))
}

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

/// Deletes a page (`If-Match`).
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

/// An image or font, raw, with its ETag (as [`get_page`] reads it).
pub async fn get_asset(
    store: Data,
    params: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    get_page(store, params).await
}

/// Deletes an image or font (`If-Match`, as [`delete_page`] does).
pub async fn delete_asset(
    store: Data,
    req: HttpRequest,
    params: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    delete_page(store, req, params).await
}

pub async fn list_assets(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let project = store.run(move |c| super::get(c, &id)).await?;
    let assets: Vec<_> = project
        .files
        .into_iter()
        .filter(|f| FilePath::parse(&f.path).is_ok_and(|p| p.asset_type().is_some()))
        .collect();
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "assets": assets, "head_version": project.head_version })))
}

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

pub async fn versions(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::history(c, &id)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    from: i64,
    to: i64,
}

pub async fn diff(
    store: Data,
    id: web::Path<String>,
    q: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (from, to) = (q.from, q.to);
    let files = store.run(move |c| super::diff(c, &id, from, to)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"from": from, "to": to, "files": files})))
}

pub async fn undo(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::undo(c, &id)).await?))
}

pub async fn redo(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::redo(c, &id)).await?))
}

pub async fn restore(
    store: Data,
    params: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, number) = params.into_inner();
    let id = project_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::restore(c, &id, number)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeoQuery {
    page: Option<String>,
}

pub async fn seo(
    store: Data,
    id: web::Path<String>,
    q: web::Query<SeoQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let only = q.page.as_deref().map(FilePath::parse).transpose()?;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| super::seo(c, &id, only.as_ref()))
            .await?,
    ))
}

pub async fn sitemap(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (xml, _) = store
        .run(move |c| super::sitemap_and_robots(c, &id))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(xml))
}

pub async fn robots(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (_, robots) = store
        .run(move |c| super::sitemap_and_robots(c, &id))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(robots))
}
