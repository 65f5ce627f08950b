//! The HTTP side of staged uploads: stream a raw body in, list, download (always as an
//! attachment, never rendered) and delete. The streaming, hashing and clean-up rules live in
//! `uploads`. The routes are declared in `routes`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{Incoming, Staging, UploadId};
use crate::error::ApiError;
use crate::quota::Quota;
use crate::store::Store;

type Data = web::Data<Store>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageQuery {
    name: Option<String>,
}

pub async fn stage_upload(
    store: Data,
    quota: web::Data<Quota>,
    staging: web::Data<Staging>,
    req: HttpRequest,
    q: web::Query<StageQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let incoming = Incoming::parse(q.name.as_deref(), req.headers())?;
    let upload = staging.receive(&store, &quota, incoming, payload).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/uploads/{}", upload.id)))
        .json(upload))
}

pub async fn list_uploads(store: Data) -> Result<HttpResponse, ApiError> {
    let items = store.run(super::list).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// A staged upload's bytes, streamed from disk. Always an attachment, never rendered: the
/// file is whatever the user sent, and the workspace's origin must not run it.
pub async fn get_upload(
    store: Data,
    staging: web::Data<Staging>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UploadId::parse(&id)?;
    let (upload, file, len) = staging.open_file(&store, id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, upload.content_type))
        .insert_header(super::disposition(upload.name.as_deref()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(actix_web::body::SizedStream::new(len, super::chunks(file))))
}

pub async fn delete_upload(
    store: Data,
    staging: web::Data<Staging>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UploadId::parse(&id)?;
    staging.delete(&store, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
