//! Who is calling the door: a tenant runtime, signing each call with the identity header
//! (`websplat_contract::identity`) and its own tenant secret, for its own user. The door
//! checks the signature against the secret of that user's *live* tenant (its route in
//! Redis, written when it became ready and removed when it stops), so a stopped tenant's
//! secret, another tenant's secret, a call signed for another user, a stale or an unsigned
//! call are all refused. It must never say which of these it was (that is logged), and
//! never log a secret or a header value.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;
use websplat_contract::identity;

use super::error::GatewayError;
use crate::db;
use crate::schema::{access_levels, users, workspaces};
use crate::tenants::Slug;
use crate::tenants::routing::Routing;
use crate::users::UserId;

/// An authenticated caller, with what its access level allows.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub access_level: String,
    /// Tokens per budget period (`access_levels.ai_tokens_per_day`).
    pub tokens_per_period: i64,
    /// The access level's workspace features (`web_search` opens search and extraction).
    pub features: Vec<String>,
}

/// (workspace slug, access level, tokens per period, features, disabled).
type CallerRow = (Option<String>, String, i64, Vec<String>, bool);

const REFUSED: &str = "this call is not signed by a running workspace: sign it with the workspace's identity (X-Websplat-Identity)";

/// Checks the identity header of a call to `method path_and_query`.
#[tracing::instrument(skip_all, fields(user = tracing::field::Empty))]
pub async fn authenticate(
    db: &db::Pool,
    routing: &Routing,
    header: Option<&str>,
    method: &str,
    path_and_query: &str,
) -> Result<Caller, GatewayError> {
    let refuse = |why: &str| {
        tracing::info!(reason = why, "gateway call refused");
        GatewayError::Unauthorized(REFUSED)
    };
    let header = header.ok_or_else(|| refuse("no identity header"))?;
    // The user it claims, to find whose secret to check it with; the signature decides.
    let claimed = header
        .split(';')
        .nth(1)
        .and_then(|p| p.strip_prefix("user="))
        .and_then(|u| Uuid::parse_str(u).ok())
        .ok_or_else(|| refuse("malformed identity header"))?;
    tracing::Span::current().record("user", tracing::field::display(claimed));
    let mut conn = db.get().await?;
    let row: Option<CallerRow> = users::table
        .inner_join(access_levels::table)
        .left_join(workspaces::table)
        .filter(users::id.eq(UserId(claimed)))
        .select((
            workspaces::slug.nullable(),
            users::access_level,
            access_levels::ai_tokens_per_day,
            access_levels::features,
            users::disabled_at.is_not_null(),
        ))
        .first(&mut conn)
        .await
        .optional()?;
    drop(conn);
    let Some((Some(slug), access_level, tokens_per_period, features, disabled)) = row else {
        return Err(refuse("no such user, or no workspace"));
    };
    if disabled {
        return Err(refuse("the user is disabled"));
    }
    let slug = Slug::parse(&slug).map_err(|_| refuse("unreadable slug"))?;
    let route = routing
        .route(&slug)
        .await?
        .filter(|r| r.user.0 == claimed)
        .ok_or_else(|| refuse("the user's workspace is not running"))?;
    identity::verify(
        route.secret.as_bytes(),
        Some(claimed),
        header,
        method,
        path_and_query,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| refuse(&e.to_string()))?;
    Ok(Caller {
        user: UserId(claimed),
        access_level,
        tokens_per_period,
        features,
    })
}
