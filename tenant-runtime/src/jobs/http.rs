//! The HTTP side of jobs: recent jobs, one job's state, the zip an export job made, and
//! jobs' progress as server-sent events. Capabilities that queue a job answer with
//! [`accepted`], and zips are downloaded through [`zip_download`]. The routes are declared
//! in `routes`.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use tokio::sync::broadcast;

use super::{Job, Jobs};
use crate::DataDir;
use crate::error::ApiError;
use crate::extract::parse_id;
use crate::store::Store;

type Data = web::Data<Store>;

/// The answer to a request that queued a job: 202, where to follow it, the job.
pub fn accepted(job: &Job) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/jobs/{}", job.id)))
        .json(job)
}

/// A zip to download, never cached: an export job's artifact, or an export built in the
/// request (`sites`).
pub fn zip_download(file_name: &str, bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes)
}

pub async fn list_jobs(store: Data) -> Result<HttpResponse, ApiError> {
    let jobs = store.run(|c| super::list(c, 50)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "jobs": jobs })))
}

pub async fn get_job(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "job")?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::get(c, &id)).await?))
}

/// The zip a finished export job made (410 once removed).
pub async fn job_artifact(
    store: Data,
    dir: web::Data<DataDir>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "job")?;
    let job = store.run(move |c| super::get(c, &id)).await?;
    let (file, name) = super::artifact(&dir.0, &job)?;
    let bytes = web::block(move || std::fs::read(file))
        .await
        .map_err(ApiError::internal)?
        .map_err(|_| ApiError::Gone("this export was just removed; export it again".to_owned()))?;
    Ok(zip_download(&name, bytes))
}

fn sse_event(job: &Job) -> web::Bytes {
    let data = serde_json::to_string(job).unwrap_or_default();
    web::Bytes::from(format!("event: job\ndata: {data}\n\n"))
}

/// Server-sent events of jobs' progress: `only` one job (starting with its state, ending when
/// it finishes), or every job.
fn job_stream(
    first: Option<Job>,
    rx: broadcast::Receiver<Job>,
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

pub async fn job_events(
    store: Data,
    jobs: web::Data<Jobs>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "job")?;
    // Subscribe before reading the state, so no event falls between the two.
    let rx = jobs.subscribe();
    let job = store
        .run({
            let id = id.clone();
            move |c| super::get(c, &id)
        })
        .await?;
    Ok(job_stream(Some(job), rx, Some(id)))
}

pub async fn all_job_events(jobs: web::Data<Jobs>) -> HttpResponse {
    job_stream(None, jobs.subscribe(), None)
}
