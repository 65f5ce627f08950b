//! The published-sites API (`/api/v1/sites…`, the signed-in user's own): list, publish a
//! project of the running workspace under a name, take a site down. The work is
//! `crate::sites`; the same use-cases answer the workspace page through the proxy.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::sites::{SiteList, SiteName, SiteView};
use crate::web::app::AppState;
use crate::web::extract::CurrentUser;

type State = web::Data<AppState>;

/// What to publish under a name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The workspace project whose current version becomes the site.
    pub project: Uuid,
}

/// Your published sites and the storage they take.
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites",
    responses((status = 200, body = SiteList), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list(state: State, current: CurrentUser) -> Result<web::Json<SiteList>, ApiError> {
    Ok(web::Json(state.sites.list(current.user.id).await?))
}

/// Publishes a project of your running workspace at `{name}.{sites domain}` (or replaces
/// your site of that name, at once).
#[utoipa::path(put, path = "/api/v1/sites/{name}", tag = "sites", request_body = PublishRequest,
    params(("name" = String, Path, description = "The site's name: 3 to 40 letters, digits and dashes")),
    responses((status = 200, body = SiteView, description = "Published; anyone can see it at `url`"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such project in your workspace"),
        (status = 409, body = ErrorBody, description = "The name is another user's, or your workspace is not running"),
        (status = 413, body = ErrorBody, description = "The site does not fit in your storage")),
    security(("session" = []), ("token" = [])))]
pub async fn publish(
    state: State,
    current: CurrentUser,
    name: web::Path<String>,
    body: web::Json<PublishRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = SiteName::parse(&name)?;
    let site = state
        .sites
        .publish(&state.tenants, &current.user, &name, body.project)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(site))
}

/// Takes your site down: its address answers 404 at once.
#[utoipa::path(delete, path = "/api/v1/sites/{name}", tag = "sites",
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 204, description = "Taken down"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "You have no site of that name")),
    security(("session" = []), ("token" = [])))]
pub async fn unpublish(
    state: State,
    current: CurrentUser,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = SiteName::parse(&name)
        .map_err(|_| ApiError::NotFound("You have no published site of that name.".to_owned()))?;
    state.sites.unpublish(current.user.id, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The thumbnail of your site for the dashboard: the first picture its home page shows
/// (a PNG, JPEG, GIF or WebP file of the site), or 404 when it shows none.
#[utoipa::path(get, path = "/api/v1/sites/{name}/thumbnail", tag = "sites",
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 200, description = "The picture", content_type = "image/*"),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No site of yours by that name, or it shows no picture")),
    security(("session" = []), ("token" = [])))]
pub async fn thumbnail(
    state: State,
    current: CurrentUser,
    req: actix_web::HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    use actix_web::http::header::{CONTENT_SECURITY_POLICY, ETAG, IF_NONE_MATCH};
    let name = SiteName::parse(&name)?;
    let Some(thumb) = state.sites.thumbnail(current.user.id, &name).await? else {
        return Err(ApiError::NotFound(
            "this site shows no picture of its own to make a thumbnail of".to_owned(),
        ));
    };
    let cache = (CACHE_CONTROL, "private, max-age=300");
    if req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == thumb.etag))
    {
        return Ok(HttpResponse::NotModified()
            .insert_header((ETAG, thumb.etag))
            .insert_header(cache)
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(thumb.content_type)
        .insert_header((ETAG, thumb.etag))
        .insert_header(cache)
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox"))
        .body(thumb.bytes))
}
