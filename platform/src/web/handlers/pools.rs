//! Handlers of `/api/v1/pools` (operators and admins, as the policy says): each parses its
//! input and calls one use-case of `pools`, which validates, writes and audits.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::Audit;
use crate::error::{ApiError, ErrorBody};
use crate::pools::{self, NewPool, PoolChange, PoolView};
use crate::web::app::AppState;

type State = web::Data<AppState>;

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolList {
    pub pools: Vec<PoolView>,
}

/// Every pool: its limits, the access levels it serves and what it is doing now.
#[utoipa::path(get, path = "/api/v1/pools", tag = "pools",
    responses((status = 200, body = PoolList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list(state: State) -> Result<web::Json<PoolList>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(web::Json(PoolList {
        pools: pools::list(&mut conn).await?,
    }))
}

/// Creates a pool; the access levels it names are served by it from the next start on.
#[utoipa::path(post, path = "/api/v1/pools", tag = "pools", request_body = NewPool,
    responses((status = 201, body = PoolView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create(
    state: State,
    audit: Audit,
    body: web::Json<NewPool>,
) -> Result<HttpResponse, ApiError> {
    let created = pools::create(&state.db, &audit, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(created))
}

/// One pool.
#[utoipa::path(get, path = "/api/v1/pools/{name}", tag = "pools", params(("name" = String, Path)),
    responses((status = 200, body = PoolView), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn show(state: State, name: web::Path<String>) -> Result<web::Json<PoolView>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(web::Json(pools::show(&mut conn, &name).await?))
}

/// Changes the settings sent (the others stay); in force at the next start on every
/// replica. Shrinking below what runs stops nothing: new starts wait or are refused.
#[utoipa::path(patch, path = "/api/v1/pools/{name}", tag = "pools", params(("name" = String, Path)),
    request_body = PoolChange,
    responses((status = 200, body = PoolView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Its engine cannot change while workspaces run, start or wait in it"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn change(
    state: State,
    audit: Audit,
    name: web::Path<String>,
    body: web::Json<PoolChange>,
) -> Result<web::Json<PoolView>, ApiError> {
    Ok(web::Json(
        pools::change(&state.db, &audit, &name, body.into_inner()).await?,
    ))
}

/// Drains a pool: no new starts (503 in words); running workspaces finish.
#[utoipa::path(post, path = "/api/v1/pools/{name}/drain", tag = "pools", params(("name" = String, Path)),
    responses((status = 200, body = PoolView), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn drain(
    state: State,
    audit: Audit,
    name: web::Path<String>,
) -> Result<web::Json<PoolView>, ApiError> {
    Ok(web::Json(
        pools::set_draining(&state.db, &audit, &name, true).await?,
    ))
}

/// Lets a drained pool start workspaces again (its queue moves on).
#[utoipa::path(post, path = "/api/v1/pools/{name}/undrain", tag = "pools", params(("name" = String, Path)),
    responses((status = 200, body = PoolView), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn undrain(
    state: State,
    audit: Audit,
    name: web::Path<String>,
) -> Result<web::Json<PoolView>, ApiError> {
    Ok(web::Json(
        pools::set_draining(&state.db, &audit, &name, false).await?,
    ))
}

/// Deletes a pool nothing runs, starts or waits in; its access levels go to `default`.
#[utoipa::path(delete, path = "/api/v1/pools/{name}", tag = "pools", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete(
    state: State,
    audit: Audit,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    pools::delete(&state.db, &audit, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StartsQuery {
    /// How far back, in minutes (5 to 1440; 60 by default).
    minutes: Option<i32>,
}

/// The pool's start latency (request to ready) over time: count, p50 and p95 per bucket,
/// from the platform's own records.
#[utoipa::path(get, path = "/api/v1/pools/{name}/starts", tag = "pools",
    params(("name" = String, Path), StartsQuery),
    responses((status = 200, body = pools::Starts), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn starts(
    state: State,
    name: web::Path<String>,
    query: web::Query<StartsQuery>,
) -> Result<web::Json<pools::Starts>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(web::Json(
        pools::starts(&mut conn, &name, query.minutes).await?,
    ))
}

/// The machines a pool's workspaces run on, for an engine of several (a swarm): each with
/// its state, whether it takes new workspaces, its memory and what its workspaces reserve.
#[derive(Debug, Serialize, ToSchema)]
pub struct Machines {
    /// `docker` (the platform's own engine: no list) or `swarm`.
    pub engine: String,
    pub machines: Vec<crate::tenants::orchestrator::Machine>,
}

/// The pool's machines as its engine sees them now; a machine that is lost says so here.
#[utoipa::path(get, path = "/api/v1/pools/{name}/machines", tag = "pools", params(("name" = String, Path)),
    responses((status = 200, body = Machines), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "The pool's engine does not answer"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn machines(
    state: State,
    name: web::Path<String>,
) -> Result<web::Json<Machines>, ApiError> {
    let view = {
        let mut conn = state.db.get().await?;
        pools::show(&mut conn, &name).await?
    };
    let pool = view.pool;
    state
        .tenants
        .sync_drivers()
        .await
        .map_err(ApiError::Internal)?;
    let machines = state
        .tenants
        .driver(&pool.name)
        .machines()
        .await
        .map_err(|e| {
            tracing::warn!(pool = %pool.name, error = %e, "the pool's engine does not answer");
            ApiError::Unavailable("the pool's container engine")
        })?;
    Ok(web::Json(Machines {
        engine: view.engine,
        machines,
    }))
}
