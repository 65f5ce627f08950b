//! The HTTP side of generation: generating a site from a brief (a job) and the proposals it
//! leaves — list, show, accept (`?force=true` over later edits) and reject. The pipeline is
//! `generation`; the job and the proposals' records are `jobs::generation`'s. The routes are
//! declared in `routes`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::Brief;
use crate::error::ApiError;
use crate::extract::{parse_id, project_id};
use crate::jobs::{self, Jobs};
use crate::store::Store;

type Data = web::Data<Store>;

pub async fn generate(
    jobs: web::Data<Jobs>,
    id: web::Path<String>,
    brief: web::Json<Brief>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let job = jobs.submit_generation(id, brief.into_inner()).await?;
    Ok(jobs::http::accepted(&job))
}

pub async fn list_proposals(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let proposals = store.run(move |c| jobs::proposals_of(c, &id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "proposals": proposals })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptQuery {
    #[serde(default)]
    force: bool,
}

pub async fn get_proposal(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "proposal")?;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| jobs::proposal_with_files(c, &id))
            .await?,
    ))
}

pub async fn accept_proposal(
    store: Data,
    id: web::Path<String>,
    q: web::Query<AcceptQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "proposal")?;
    let force = q.force;
    let version = store.run(move |c| jobs::accept(c, &id, force)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "accepted", "version": version })))
}

pub async fn reject_proposal(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "proposal")?;
    store.run(move |c| jobs::reject(c, &id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "rejected" })))
}
