//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: PostgreSQL and
//! Redis answer right now). Readiness names the dependency that does not answer, so a load
//! balancer's log shows at once what is wrong; the reason (an internal error's text, which
//! may name hosts and databases) goes to the log and to callers who may read the metrics
//! (operators), never to anonymous callers.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ErrorBody, ErrorDetail};
use crate::telemetry::current_request_id;
use crate::web::app::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    /// Each dependency: `ok`, or `unavailable` (with the reason, for operators).
    pub checks: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

pub(crate) async fn check_postgres(state: &AppState) -> Result<(), String> {
    let probe = async {
        let mut conn = state.db.get().await.map_err(|e| e.to_string())?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

pub(crate) async fn check_redis(state: &AppState) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, state.kv.ping()).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

/// The platform can serve: PostgreSQL and Redis both answer.
pub(crate) async fn check_orchestrator(state: &AppState) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, state.tenants.orchestrator.ping()).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness, description = "Names what does not answer (and why, to operators)")))]
pub async fn readyz(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let operator = crate::web::extract::decision_of(&req)
        .and_then(|d| d.principal)
        .is_some_and(|p| {
            state
                .authz
                .decide(&crate::authz::subject(p.user.id), "/metrics", "GET", "")
        });
    let (pg, redis, docker) = tokio::join!(
        check_postgres(&state),
        check_redis(&state),
        check_orchestrator(&state)
    );
    let mut checks = BTreeMap::new();
    let mut down = Vec::new();
    for (name, result) in [("postgresql", pg), ("redis", redis), ("docker", docker)] {
        match result {
            Ok(()) => {
                checks.insert(name, "ok".to_owned());
            }
            Err(reason) => {
                tracing::warn!(dependency = name, %reason, "readiness check failed");
                let shown = if operator {
                    format!("unavailable: {reason}")
                } else {
                    "unavailable".to_owned()
                };
                checks.insert(name, shown);
                down.push(name);
            }
        }
    }
    if down.is_empty() {
        return HttpResponse::Ok().json(Readiness {
            status: "ready",
            checks,
            error: None,
        });
    }
    HttpResponse::ServiceUnavailable().json(Readiness {
        status: "unavailable",
        checks,
        error: Some(ErrorDetail {
            code: "unavailable".into(),
            message: format!("not ready: {} not answering", down.join(" and ")),
            field: None,
            request_id: current_request_id(),
        }),
    })
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain"),
    (status = 401, body = ErrorBody, description = "Not signed in: scrapers send an operator's API token"),
    (status = 403, body = ErrorBody, description = "Only operators read the metrics"),
    (status = 503, body = ErrorBody, description = "PostgreSQL or Redis is unavailable")))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, crate::error::ApiError> {
    // Tenants by state are PostgreSQL's to say (every replica sees the same).
    match state.tenants.census().await {
        Ok(census) => {
            for (tenant_state, count) in census {
                state.metrics.tenants_in_state(tenant_state.as_str(), count);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count tenants for the metrics"),
    }
    match state.db.get().await {
        Ok(mut conn) => match crate::pools::list(&mut conn).await {
            Ok(pools) => {
                for p in pools {
                    state
                        .metrics
                        .pool(&p.pool.name, i64::from(p.pool.max_running), &p.figures);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the pools for the metrics"),
        },
        Err(e) => tracing::warn!(error = %e, "cannot read the pools for the metrics"),
    }
    let body = state
        .metrics
        .render()
        .map_err(crate::error::ApiError::Internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}
