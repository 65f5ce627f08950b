//! The HTTP side of agents: list, create, show, replace and delete an agent's
//! configuration. Handlers only read the request and shape the answer; the rules live in
//! `agents`. The routes are declared in `routes`.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::AgentInput;
use crate::error::ApiError;
use crate::extract::{ListQuery, parse_id};
use crate::store::Store;

type Data = web::Data<Store>;

pub async fn list_agents(store: Data, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let (page, per_page) = q.window();
    Ok(HttpResponse::Ok().json(store.run(move |c| super::list(c, page, per_page)).await?))
}

pub async fn create_agent(
    store: Data,
    body: web::Json<AgentInput>,
) -> Result<HttpResponse, ApiError> {
    let agent = store
        .run(move |c| super::create(c, body.into_inner()))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/agents/{}", agent.id)))
        .json(agent))
}

pub async fn get_agent(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "agent")?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::get(c, &id)).await?))
}

pub async fn replace_agent(
    store: Data,
    id: web::Path<String>,
    body: web::Json<AgentInput>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "agent")?;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| super::replace(c, &id, body.into_inner()))
            .await?,
    ))
}

pub async fn delete_agent(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "agent")?;
    store.run(move |c| super::delete(c, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
