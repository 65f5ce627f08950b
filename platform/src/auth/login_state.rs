//! The state of a sign-in in flight with an external provider, in Redis between the
//! redirect to the provider and the callback: the provider it was started with, the PKCE
//! verifier, the nonce, where to return, and a hash of a random value held in the browser's
//! login cookie (binding the flow to the browser that started it). Single use (taken with
//! `GETDEL`) and short-lived.

use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::secret::sha256_hex;
use crate::kv::{Kv, KvError};

/// How long a user may spend at the provider before the sign-in must start again.
pub const LOGIN_STATE_TTL: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginState {
    pub provider: String,
    pub pkce_verifier: String,
    /// Absent for providers without ID tokens (GitHub).
    pub nonce: Option<String>,
    pub return_to: String,
    pub browser_binding_hash: String,
}

fn key(kv: &Kv, state: &str) -> String {
    kv.key(&format!("login_state:{}", sha256_hex(state)))
}

pub async fn save(kv: &Kv, state: &str, login: &LoginState) -> Result<(), KvError> {
    let (key, body) = (key(kv, state), serde_json::to_string(login)?);
    kv.run(async move |c| {
        c.set_ex::<_, _, ()>(&key, body, LOGIN_STATE_TTL.as_secs())
            .await
    })
    .await
}

/// Takes the state out of Redis: a second call with the same value finds nothing.
pub async fn take(kv: &Kv, state: &str) -> Result<Option<LoginState>, KvError> {
    if state.is_empty() || state.len() > 256 {
        return Ok(None);
    }
    let key = key(kv, state);
    let raw: Option<String> = kv.run(async move |c| c.get_del(&key).await).await?;
    Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
}
