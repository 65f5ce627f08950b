//! The HTTP side of documents: upload (multipart; the size and count rules are
//! `documents::Batch`'s, the indexing is a job's), list, show, delete, search and query.
//! The routes are declared in `routes`.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;

use super::{Batch, SearchIndex, UploadLimit};
use crate::error::ApiError;
use crate::extract::parse_id;
use crate::jobs::Jobs;
use crate::quota::Quota;
use crate::store::Store;

type Data = web::Data<Store>;
type Index = web::Data<SearchIndex>;

pub async fn upload_documents(
    jobs: web::Data<Jobs>,
    quota: web::Data<Quota>,
    limit: web::Data<UploadLimit>,
    mut multipart: actix_multipart::Multipart,
) -> Result<HttpResponse, ApiError> {
    let mut batch = Batch::new(*limit.get_ref());
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
        let mut file = batch.file(name)?;
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::BadRequest(format!("the upload was cut short: {e}")))?;
            batch.add(&mut file, &chunk)?;
        }
        batch.push(file);
    }
    let received = batch.finish()?;
    // Held until the documents are stored, so uploads side by side share the room.
    let room = quota.reserve_async(received.room()).await?;
    let admitted = web::block(move || received.admit())
        .await
        .map_err(ApiError::internal)??;
    let (documents, job) = jobs.submit_indexing(admitted).await?;
    drop(room);
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/jobs/{}", job.id)))
        .json(serde_json::json!({ "documents": documents, "job": job })))
}

pub async fn list_documents(store: Data) -> Result<HttpResponse, ApiError> {
    let documents = store.run(super::list).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "documents": documents })))
}

pub async fn get_document(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "document")?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::get(c, &id)).await?))
}

/// Deletes a document and its passages, also while it waits to be indexed.
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
