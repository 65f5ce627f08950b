//! The AI gateway as people see it: a user's own usage and remaining budget, and for
//! admins the providers with their health and aliases, and usage over time. (Tenants call
//! the gateway itself at its door, `gateway::door`, not here.)

use actix_web::web;

use crate::error::{ApiError, ErrorBody};
use crate::gateway::GatewayError;
use crate::gateway::views::{self, MyUsage, Providers, UsageQuery, UsageSeries};
use crate::web::app::AppState;
use crate::web::extract::CurrentUser;

type State = web::Data<AppState>;

fn api(e: GatewayError) -> ApiError {
    match e {
        GatewayError::Invalid { field, message } => ApiError::validation(field, message),
        GatewayError::Unavailable(what) => ApiError::Unavailable(what),
        other => ApiError::internal(anyhow::anyhow!("{other}")),
    }
}

/// Your AI usage this period, and what is left of your budget.
#[utoipa::path(get, path = "/api/v1/me/ai-usage", tag = "ai",
    responses((status = 200, body = MyUsage), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn my_usage(state: State, current: CurrentUser) -> Result<web::Json<MyUsage>, ApiError> {
    let mut conn = state.db.get().await?;
    let usage = views::my_usage(
        &state.gateway,
        &mut conn,
        current.user.id,
        current.access.ai_tokens_per_day,
    )
    .await
    .map_err(api)?;
    Ok(web::Json(usage))
}

/// The AI providers (with their health), the model aliases and the price table's version.
#[utoipa::path(get, path = "/api/v1/admin/ai/providers", tag = "ai",
    responses((status = 200, body = Providers), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn providers(state: State) -> web::Json<Providers> {
    web::Json(views::providers(&state.gateway))
}

/// AI usage and spend over time, by user, provider or model.
#[utoipa::path(get, path = "/api/v1/admin/ai/usage", tag = "ai", params(UsageQuery),
    responses((status = 200, body = UsageSeries), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn usage(
    state: State,
    query: web::Query<UsageQuery>,
) -> Result<web::Json<UsageSeries>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(web::Json(
        views::usage(&mut conn, &query).await.map_err(api)?,
    ))
}
