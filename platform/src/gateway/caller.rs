//! Who is calling the door: a tenant runtime, signing each call with the identity header
//! (`websplat_contract::identity`) and its own tenant secret, for its own user. The door
//! checks the signature against the secret of that user's *live* tenant (its route in
//! Redis, written when it became ready and removed when it stops), so a stopped tenant's
//! secret, another tenant's secret, a call signed for another user, a stale or an unsigned
//! call are all refused. It must never say which of these it was (that is logged), and
//! never log a secret or a header value.
//!
//! What a check reads (the user, their level, their live tenant's secret) is kept per user
//! in this process ([`Callers`]), so a call costs no PostgreSQL query and no Redis round
//! trip. An entry is dropped when the user's tenant changes state (any event on their
//! `tenant-events:<user>` channel: stopping, stopped, failed…), when an admin changes
//! levels, assignments or accounts (the `gateway:callers-changed` channel, every replica),
//! when a signature does not verify with it (then the live secret is read again), and after
//! [`CACHE_TTL`] in any case.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;
use websplat_contract::identity;

use super::error::GatewayError;
use crate::db;
use crate::kv::Kv;
use crate::schema::{access_levels, users, workspaces};
use crate::tenants::Slug;
use crate::tenants::identity::TenantKeys;
use crate::tenants::routing::Routing;
use crate::users::UserId;

/// The longest a caller's entry is trusted without a word from its channels.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// An authenticated caller, with what its access level allows.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub access_level: String,
    /// Tokens per budget period (`access_levels.ai_tokens_per_day`).
    pub tokens_per_period: i64,
    /// Calls per minute (`access_levels.ai_requests_per_minute`).
    pub requests_per_minute: i64,
    /// Tokens per minute (`access_levels.ai_tokens_per_minute`).
    pub tokens_per_minute: i64,
    /// The access level's workspace features (`web_search` opens search and extraction).
    pub features: Vec<String>,
}

/// (workspace slug, access level, tokens per period, calls and tokens per minute,
/// features, disabled).
type CallerRow = (Option<String>, String, i64, i32, i64, Vec<String>, bool);

const REFUSED: &str = "this call is not signed by a running workspace: sign it with the workspace's identity (X-Websplat-Identity)";

struct Known {
    caller: Caller,
    secret: SecretString,
    at: Instant,
}

/// The callers this process has checked lately, per user.
pub struct Callers {
    known: Mutex<HashMap<Uuid, Known>>,
    /// `gateway:callers-changed`: a user id drops that user, `*` drops everyone.
    channel: String,
    /// `tenant-events:*`: any event of a user's tenant drops that user.
    tenant_events: String,
    kv: Kv,
}

impl Callers {
    pub fn new(kv: Kv) -> Self {
        Callers {
            known: Mutex::new(HashMap::new()),
            channel: kv.key("gateway:callers-changed"),
            tenant_events: kv.key("tenant-events:"),
            kv,
        }
    }

    fn get(&self, user: Uuid) -> Option<(Caller, SecretString)> {
        let known = self.known.lock().ok()?;
        known
            .get(&user)
            .filter(|k| k.at.elapsed() < CACHE_TTL)
            .map(|k| (k.caller.clone(), k.secret.clone()))
    }

    fn put(&self, caller: Caller, secret: SecretString) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(
                caller.user.0,
                Known {
                    caller,
                    secret,
                    at: Instant::now(),
                },
            );
        }
    }

    /// Drops one user's entry (`Some`), or every entry.
    pub fn forget(&self, user: Option<Uuid>) {
        if let Ok(mut known) = self.known.lock() {
            match user {
                Some(u) => {
                    known.remove(&u);
                }
                None => known.clear(),
            }
        }
    }

    /// Tells every replica (this one at once) that a user's standing changed (`Some`), or
    /// that levels did (`None`). A failure is logged: the entries age out anyway.
    pub async fn changed(&self, user: Option<UserId>) {
        self.forget(user.map(|u| u.0));
        let (channel, message) = (
            self.channel.clone(),
            user.map_or_else(|| "*".to_owned(), |u| u.to_string()),
        );
        let published = self
            .kv
            .run(async move |c| {
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&message)
                    .query_async::<i64>(c)
                    .await
            })
            .await;
        if let Err(e) = published {
            tracing::warn!(error = %e, "cannot announce a change of AI callers on Redis");
        }
    }

    /// Listens to both channels until the process ends, reconnecting on its own.
    pub fn spawn_watcher(self: &Arc<Self>, redis_url: SecretString) -> tokio::task::JoinHandle<()> {
        let callers = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match callers.listen(&redis_url).await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "the AI callers' watcher lost Redis; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
    }

    async fn listen(&self, redis_url: &SecretString) -> anyhow::Result<()> {
        let client = redis::Client::open(redis_url.expose_secret())
            .context("WEBSPLAT_REDIS_URL is not a valid Redis URL")?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&self.channel).await?;
        pubsub
            .psubscribe(format!("{}*", self.tenant_events))
            .await?;
        // What changed while nobody listened.
        self.forget(None);
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let channel = message.get_channel_name();
            if let Some(user) = channel.strip_prefix(&self.tenant_events) {
                if let Ok(user) = Uuid::parse_str(user) {
                    self.forget(Some(user));
                }
            } else {
                let payload: String = message.get_payload().unwrap_or_default();
                self.forget(Uuid::parse_str(&payload).ok());
            }
        }
        anyhow::bail!("the subscription ended")
    }
}

/// Checks the identity header of a call to `method path_and_query`.
#[tracing::instrument(skip_all, fields(user = tracing::field::Empty))]
pub async fn authenticate(
    callers: &Callers,
    db: &db::Pool,
    routing: &Routing,
    keys: &TenantKeys,
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
    let verify = |secret: &SecretString| {
        identity::verify(
            secret.expose_secret().as_bytes(),
            Some(claimed),
            header,
            method,
            path_and_query,
            chrono::Utc::now().timestamp(),
        )
    };
    if let Some((caller, secret)) = callers.get(claimed) {
        if verify(&secret).is_ok() {
            return Ok(caller);
        }
        // Perhaps a new tenant with a new secret: read it again.
        callers.forget(Some(claimed));
    }
    let (caller, secret) = look_up(db, routing, keys, claimed)
        .await?
        .map_err(&refuse)?;
    verify(&secret).map_err(|e| refuse(&e.to_string()))?;
    callers.put(caller.clone(), secret);
    Ok(caller)
}

/// The user, their level and their live tenant's secret; `Err` says why there is none.
async fn look_up(
    db: &db::Pool,
    routing: &Routing,
    keys: &TenantKeys,
    claimed: Uuid,
) -> Result<Result<(Caller, SecretString), &'static str>, GatewayError> {
    let mut conn = db.get().await?;
    let row: Option<CallerRow> = users::table
        .inner_join(access_levels::table)
        .left_join(workspaces::table)
        .filter(users::id.eq(UserId(claimed)))
        .select((
            workspaces::slug.nullable(),
            users::access_level,
            access_levels::ai_tokens_per_day,
            access_levels::ai_requests_per_minute,
            access_levels::ai_tokens_per_minute,
            access_levels::features,
            users::disabled_at.is_not_null(),
        ))
        .first(&mut conn)
        .await
        .optional()?;
    drop(conn);
    let Some((
        Some(slug),
        access_level,
        tokens_per_period,
        requests_per_minute,
        tokens_per_minute,
        features,
        disabled,
    )) = row
    else {
        return Ok(Err("no such user, or no workspace"));
    };
    if disabled {
        return Ok(Err("the user is disabled"));
    }
    let Ok(slug) = Slug::parse(&slug) else {
        return Ok(Err("unreadable slug"));
    };
    let Some(route) = routing.route(&slug).await?.filter(|r| r.user.0 == claimed) else {
        return Ok(Err("the user's workspace is not running"));
    };
    Ok(Ok((
        Caller {
            user: UserId(claimed),
            access_level,
            tokens_per_period,
            requests_per_minute: i64::from(requests_per_minute),
            tokens_per_minute,
            features,
        },
        keys.of_route(&route),
    )))
}
