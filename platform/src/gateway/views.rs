//! What people see of the gateway: a user's own usage and remaining budget, and for admins
//! the providers with their health, the aliases, and usage and spend over time by user,
//! provider or model, read from the ledger. Read-only; never a key or a base URL's
//! credentials.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Gateway;
use super::error::GatewayError;
use crate::users::UserId;

/// Usage by provider and model.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct UsageLine {
    #[diesel(sql_type = Text)]
    pub provider: String,
    #[diesel(sql_type = Text)]
    pub model: String,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
    #[diesel(sql_type = BigInt)]
    pub tokens_in: i64,
    #[diesel(sql_type = BigInt)]
    pub tokens_out: i64,
    /// Billionths of a US dollar.
    #[diesel(sql_type = BigInt)]
    pub cost_nanos: i64,
}

/// `GET /api/v1/me/ai-usage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyUsage {
    /// Tokens the access level allows per period (a day).
    pub budget_tokens: i64,
    /// Tokens spent (or held by calls in flight) this period.
    pub used_tokens: i64,
    pub remaining_tokens: i64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// This period's calls, by provider and model.
    pub by_model: Vec<UsageLine>,
}

pub async fn my_usage(
    gw: &Gateway,
    conn: &mut AsyncPgConnection,
    user: UserId,
    budget_tokens: i64,
) -> Result<MyUsage, GatewayError> {
    let standing = gw.budget.standing(user).await?;
    let start = DateTime::from_timestamp(standing.period_start, 0).unwrap_or_default();
    let end = DateTime::from_timestamp(standing.period_end, 0).unwrap_or_default();
    let by_model = diesel::sql_query(
        "SELECT provider, model, count(*)::int8 AS calls, COALESCE(sum(tokens_in), 0)::int8 AS tokens_in,
                COALESCE(sum(tokens_out), 0)::int8 AS tokens_out, COALESCE(sum(cost_nanos), 0)::int8 AS cost_nanos
           FROM ai_ledger WHERE user_id = $1 AND started_at >= $2
          GROUP BY provider, model ORDER BY provider, model",
    )
    .bind::<diesel::sql_types::Uuid, _>(user.0)
    .bind::<Timestamptz, _>(start)
    .load::<UsageLine>(conn)
    .await?;
    Ok(MyUsage {
        budget_tokens,
        used_tokens: standing.used,
        remaining_tokens: (budget_tokens - standing.used).max(0),
        period_start: start,
        period_end: end,
        by_model,
    })
}

/// A provider as admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    pub id: String,
    pub kind: &'static str,
    /// Where it is called (scheme, host and path; never credentials).
    pub endpoint: String,
    pub models: Vec<String>,
    pub has_key: bool,
    /// `healthy`, `failing` (recent failures) or `open` (skipped until its cooldown ends).
    pub health: &'static str,
    pub consecutive_failures: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AliasView {
    pub name: String,
    /// `provider/model`, in order of preference.
    pub targets: Vec<String>,
    /// The access levels that may use it; empty = every level.
    pub levels: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Providers {
    pub providers: Vec<ProviderView>,
    pub aliases: Vec<AliasView>,
    /// The price table's version (`platform/prices.toml`).
    pub prices_version: String,
}

pub fn providers(gw: &Gateway) -> Providers {
    let health = gw.routing.health();
    Providers {
        providers: gw
            .routing
            .providers()
            .iter()
            .map(|p| {
                let (open, failures) = health
                    .iter()
                    .find(|(id, _, _)| *id == p.id)
                    .map(|(_, o, f)| (*o, *f))
                    .unwrap_or((false, 0));
                let mut endpoint = p.base_url.clone();
                let _ = endpoint.set_username("");
                let _ = endpoint.set_password(None);
                endpoint.set_query(None);
                ProviderView {
                    id: p.id.clone(),
                    kind: p.kind.as_str(),
                    endpoint: endpoint.to_string(),
                    models: p.models.clone(),
                    has_key: p.api_key.is_some() || p.credentials_file.is_some(),
                    health: if open {
                        "open"
                    } else if failures > 0 {
                        "failing"
                    } else {
                        "healthy"
                    },
                    consecutive_failures: failures,
                }
            })
            .collect(),
        aliases: gw
            .routing
            .aliases()
            .iter()
            .map(|a| AliasView {
                name: a.name.clone(),
                targets: a.targets.iter().map(|(p, m)| format!("{p}/{m}")).collect(),
                levels: a.levels.clone(),
            })
            .collect(),
        prices_version: gw.prices.version.clone(),
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    User,
    Provider,
    Model,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Hour,
    Day,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UsageQuery {
    /// `user`, `provider` or `model` (default `provider`).
    pub by: Option<GroupBy>,
    /// `hour` or `day` (default `day`).
    pub bucket: Option<Bucket>,
    /// From (RFC 3339; default 30 days ago).
    pub since: Option<DateTime<Utc>>,
    /// Until (RFC 3339; default now).
    pub until: Option<DateTime<Utc>>,
}

/// One group in one time bucket.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct UsagePoint {
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    /// The user's e-mail (or id), the provider or `provider/model`.
    #[diesel(sql_type = Text)]
    pub key: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
    #[diesel(sql_type = BigInt)]
    pub errors: i64,
    #[diesel(sql_type = BigInt)]
    pub tokens_in: i64,
    #[diesel(sql_type = BigInt)]
    pub tokens_out: i64,
    #[diesel(sql_type = BigInt)]
    pub cost_nanos: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageSeries {
    pub by: GroupBy,
    pub bucket: Bucket,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub points: Vec<UsagePoint>,
}

pub async fn usage(
    conn: &mut AsyncPgConnection,
    query: &UsageQuery,
) -> Result<UsageSeries, GatewayError> {
    let until = query.until.unwrap_or_else(Utc::now);
    let since = query.since.unwrap_or(until - chrono::Duration::days(30));
    if since >= until {
        return Err(GatewayError::invalid("since", "since must be before until"));
    }
    let by = query.by.unwrap_or(GroupBy::Provider);
    let bucket = query.bucket.unwrap_or(Bucket::Day);
    if bucket == Bucket::Hour && until - since > chrono::Duration::days(31) {
        return Err(GatewayError::invalid(
            "bucket",
            "hourly buckets cover at most 31 days; narrow since/until or use bucket=day",
        ));
    }
    // Fixed SQL per choice: nothing the client sends is spliced into the query.
    let (key, user_id) = match by {
        GroupBy::User => ("COALESCE(u.email, l.user_id::text)", "l.user_id::text"),
        GroupBy::Provider => ("l.provider", "NULL::text"),
        GroupBy::Model => ("l.provider || '/' || l.model", "NULL::text"),
    };
    let unit = match bucket {
        Bucket::Hour => "hour",
        Bucket::Day => "day",
    };
    let sql = format!(
        "SELECT date_trunc('{unit}', l.started_at) AS at, {key} AS key, {user_id} AS user_id,
                count(*)::int8 AS calls, count(*) FILTER (WHERE l.outcome <> 'ok')::int8 AS errors,
                COALESCE(sum(l.tokens_in), 0)::int8 AS tokens_in, COALESCE(sum(l.tokens_out), 0)::int8 AS tokens_out,
                COALESCE(sum(l.cost_nanos), 0)::int8 AS cost_nanos
           FROM ai_ledger l LEFT JOIN users u ON u.id = l.user_id
          WHERE l.started_at >= $1 AND l.started_at < $2
          GROUP BY 1, 2, 3 ORDER BY 1, 2 LIMIT 5000"
    );
    let points = diesel::sql_query(sql)
        .bind::<Timestamptz, _>(since)
        .bind::<Timestamptz, _>(until)
        .load::<UsagePoint>(conn)
        .await?;
    Ok(UsageSeries {
        by,
        bucket,
        since,
        until,
        points,
    })
}
