//! Browser sessions, in Redis. The browser holds an opaque random id in an `HttpOnly`
//! cookie; Redis holds only the id's SHA-256, so a Redis dump cannot be replayed as cookies.
//! Expiry slides with use (`idle_timeout`) but never past `max_lifetime` from sign-in.
//! Sessions survive a platform restart (nothing lives in process memory) and can be revoked
//! one by one or all at once for a user.

use std::time::Duration;

use chrono::Utc;
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::secret::{random_token, sha256_hex};
use crate::config::SessionConfig;
use crate::kv::{Kv, KvError};
use crate::users::UserId;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user_id: UserId,
    /// How the user signed in (`local`, `github` or an OIDC provider id).
    pub provider: String,
    /// Sent back by scripts in `X-CSRF-Token` when a request has no `Origin`.
    pub csrf_token: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

/// A live session found from its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub record: SessionRecord,
}

/// The Redis set (its name, before the key prefix) of keys that die with the session
/// `id_hash`: the workspace sessions it made. Whoever makes such a key adds it here.
pub fn linked_keys(id_hash: &str) -> String {
    format!("session-linked:{id_hash}")
}

#[derive(Clone)]
pub struct SessionStore {
    kv: Kv,
    config: SessionConfig,
    /// This replica's workspace proxy cache, told at once when a session ends (the others
    /// hear it on Redis).
    hot: Option<std::sync::Arc<crate::tenants::cache::HotPath>>,
}

impl SessionStore {
    pub fn new(kv: Kv, config: SessionConfig) -> Self {
        SessionStore {
            kv,
            config,
            hot: None,
        }
    }

    /// The same store, also clearing this replica's workspace proxy cache as sessions end.
    pub fn forgetting_in(mut self, hot: std::sync::Arc<crate::tenants::cache::HotPath>) -> Self {
        self.hot = Some(hot);
        self
    }

    fn key(&self, id_hash: &str) -> String {
        self.kv.key(&format!("session:{id_hash}"))
    }

    fn user_key(&self, user_id: UserId) -> String {
        self.kv.key(&format!("user_sessions:{user_id}"))
    }

    pub fn max_lifetime(&self) -> Duration {
        self.config.max_lifetime
    }

    /// Starts a session; returns the secret for the cookie.
    pub async fn create(
        &self,
        user_id: UserId,
        provider: &str,
    ) -> Result<(SecretString, Session), KvError> {
        let token = random_token(32);
        let id_hash = sha256_hex(&token);
        let record = SessionRecord {
            user_id,
            provider: provider.to_owned(),
            csrf_token: random_token(24),
            created_at_ms: Utc::now().timestamp_millis(),
        };
        let body = serde_json::to_string(&record)?;
        let (key, user_key) = (self.key(&id_hash), self.user_key(user_id));
        let ttl = self.config.idle_timeout.as_millis().max(1) as u64;
        let max = self.config.max_lifetime.as_secs().max(1) as i64;
        let member = id_hash.clone();
        self.kv
            .run(async move |c| {
                redis::pipe()
                    .atomic()
                    .pset_ex(&key, body, ttl)
                    .sadd(&user_key, &member)
                    .expire(&user_key, max)
                    .query_async::<()>(c)
                    .await
            })
            .await?;
        Ok((SecretString::from(token), Session { id_hash, record }))
    }

    /// The live session for a cookie value, its expiry pushed forward; `None` if unknown,
    /// expired or revoked.
    pub async fn lookup(&self, token: &SecretString) -> Result<Option<Session>, KvError> {
        let token = token.expose_secret();
        if token.len() > 128 {
            return Ok(None);
        }
        let id_hash = sha256_hex(token);
        let key = self.key(&id_hash);
        let raw: Option<String> = self
            .kv
            .run({
                let key = key.clone();
                async move |c| c.get(&key).await
            })
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let record: SessionRecord = serde_json::from_str(&raw)?;
        let age_ms = Utc::now().timestamp_millis() - record.created_at_ms;
        let remaining_ms = self.config.max_lifetime.as_millis() as i64 - age_ms;
        if remaining_ms <= 0 {
            self.revoke(&id_hash, record.user_id).await?;
            return Ok(None);
        }
        let ttl_ms = (self.config.idle_timeout.as_millis() as i64).min(remaining_ms);
        self.kv
            .run(async move |c| c.pexpire::<_, ()>(&key, ttl_ms).await)
            .await?;
        Ok(Some(Session { id_hash, record }))
    }

    pub async fn revoke(&self, id_hash: &str, user_id: UserId) -> Result<(), KvError> {
        let (key, user_key, member) = (
            self.key(id_hash),
            self.user_key(user_id),
            id_hash.to_owned(),
        );
        self.kv
            .run(async move |c| {
                redis::pipe()
                    .atomic()
                    .del(&key)
                    .srem(&user_key, &member)
                    .query_async::<()>(c)
                    .await
            })
            .await?;
        self.drop_linked(&[id_hash.to_owned()]).await
    }

    /// Deletes the keys that die with these sessions (their workspace sessions), and tells
    /// every replica's workspace proxy to forget them at once (`tenants::cache`).
    async fn drop_linked(&self, id_hashes: &[String]) -> Result<(), KvError> {
        let channel = self.kv.key(crate::tenants::cache::CHANGES);
        for id_hash in id_hashes {
            let set = self.kv.key(&linked_keys(id_hash));
            let ended = crate::tenants::cache::session_ended(id_hash);
            let (channel, message) = (channel.clone(), ended.clone());
            self.kv
                .run(async move |c| {
                    let keys: Vec<String> = c.smembers(&set).await?;
                    let mut pipe = redis::pipe();
                    pipe.atomic();
                    for key in &keys {
                        pipe.del(key);
                    }
                    pipe.del(&set)
                        .publish(&channel, &message)
                        .query_async::<()>(c)
                        .await
                })
                .await?;
            if let Some(hot) = &self.hot {
                hot.heard(&ended);
            }
        }
        Ok(())
    }

    /// The record of a live session by its id (the SHA-256 the API shows), without
    /// touching its expiry.
    async fn peek(&self, id_hash: &str) -> Result<Option<SessionRecord>, KvError> {
        let valid = id_hash.len() == 64 && id_hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Ok(None);
        }
        let key = self.key(id_hash);
        let raw: Option<String> = self.kv.run(async move |c| c.get(&key).await).await?;
        Ok(match raw {
            Some(raw) => Some(serde_json::from_str(&raw)?),
            None => None,
        })
    }

    /// The owner of a live session, for the authorization guard.
    pub async fn owner_of(&self, id_hash: &str) -> Result<Option<UserId>, KvError> {
        Ok(self.peek(id_hash).await?.map(|r| r.user_id))
    }

    /// The ids in a user's index of sessions (some may have expired since).
    async fn ids_of(&self, user_id: UserId) -> Result<Vec<String>, KvError> {
        let user_key = self.user_key(user_id);
        self.kv
            .run(async move |c| c.smembers(&user_key).await)
            .await
    }

    /// A user's live sessions, newest first, with their ids; stale ids are dropped from the
    /// user's index on the way.
    pub async fn list(&self, user_id: UserId) -> Result<Vec<(String, SessionRecord)>, KvError> {
        let user_key = self.user_key(user_id);
        let members = self.ids_of(user_id).await?;
        let mut live = Vec::new();
        for id_hash in members {
            match self.peek(&id_hash).await? {
                Some(record) if record.user_id == user_id => live.push((id_hash, record)),
                _ => {
                    let (user_key, member) = (user_key.clone(), id_hash.clone());
                    self.kv
                        .run(async move |c| c.srem::<_, _, ()>(&user_key, &member).await)
                        .await?;
                }
            }
        }
        live.sort_by_key(|(_, record)| std::cmp::Reverse(record.created_at_ms));
        Ok(live)
    }

    /// Ends every session of a user (e.g. when the account is disabled).
    pub async fn revoke_all(&self, user_id: UserId) -> Result<usize, KvError> {
        let user_key = self.user_key(user_id);
        let members = self.ids_of(user_id).await?;
        let keys: Vec<String> = members.iter().map(|m| self.key(m)).collect();
        let count = keys.len();
        self.kv
            .run(async move |c| {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for key in &keys {
                    pipe.del(key);
                }
                pipe.del(&user_key).query_async::<()>(c).await
            })
            .await?;
        self.drop_linked(&members).await?;
        Ok(count)
    }
}
