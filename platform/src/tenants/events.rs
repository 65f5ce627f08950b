//! Workspace progress from Redis to the browsers on this replica: one pub/sub connection
//! per replica (a pattern subscription on every user's progress channel), fanned out in
//! process to the open streams, and a cap on the streams one user may hold open here. A
//! progress stream must never open a Redis connection of its own: each would hold one of
//! Redis's connections for minutes, and a few scripts could take them all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{broadcast, watch};

use crate::users::UserId;

/// Progress streams one user may hold open on one replica (a dashboard in a few tabs).
pub const STREAMS_PER_USER: usize = 4;
/// How long a new stream waits for the replica's subscription to be up.
const CONNECT_WAIT: Duration = Duration::from_secs(3);
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
enum Change {
    /// Something was published on this channel.
    On(String),
    /// The subscription was made again after a break: anything may have been missed, so
    /// every stream reads its state again.
    Everything,
}

/// Why a stream cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "you already have {STREAMS_PER_USER} progress streams open; close one (another tab) first"
    )]
    TooMany,
    #[error("the event bus does not answer")]
    Unavailable,
}

pub struct Events {
    redis_url: SecretString,
    pattern: String,
    changes: broadcast::Sender<Change>,
    connected: watch::Sender<bool>,
    listening: OnceLock<()>,
    open: Arc<Mutex<HashMap<UserId, usize>>>,
}

impl Events {
    /// `pattern`: the Redis glob of every user's progress channel.
    pub fn new(redis_url: SecretString, pattern: String) -> Self {
        Events {
            redis_url,
            pattern,
            changes: broadcast::channel(1024).0,
            connected: watch::channel(false).0,
            listening: OnceLock::new(),
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A stream of the changes on `channel`, counted against `user`'s cap until dropped.
    /// Once it is returned the subscription is up, so no later change is missed.
    pub async fn subscribe(&self, user: UserId, channel: String) -> Result<Subscription, Refused> {
        let slot = Slot::take(&self.open, user).ok_or(Refused::TooMany)?;
        self.listening.get_or_init(|| {
            tokio::spawn(listen(
                self.redis_url.clone(),
                self.pattern.clone(),
                self.changes.clone(),
                self.connected.clone(),
            ));
        });
        let changes = self.changes.subscribe();
        let mut connected = self.connected.subscribe();
        tokio::time::timeout(CONNECT_WAIT, connected.wait_for(|up| *up))
            .await
            .map_err(|_| Refused::Unavailable)?
            .map_err(|_| Refused::Unavailable)?;
        Ok(Subscription {
            channel,
            changes,
            _slot: slot,
        })
    }
}

/// One user's place among their open streams; given back when dropped.
struct Slot {
    open: Arc<Mutex<HashMap<UserId, usize>>>,
    user: UserId,
}

impl Slot {
    fn take(open: &Arc<Mutex<HashMap<UserId, usize>>>, user: UserId) -> Option<Slot> {
        let mut counts = open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(user).or_default();
        if *count >= STREAMS_PER_USER {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: Arc::clone(open),
            user,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

pub struct Subscription {
    channel: String,
    changes: broadcast::Receiver<Change>,
    _slot: Slot,
}

impl Subscription {
    /// Waits for the next change that may concern this stream; `None` when the replica's
    /// bus is gone for good.
    pub async fn changed(&mut self) -> Option<()> {
        loop {
            match self.changes.recv().await {
                Ok(Change::On(channel)) if channel != self.channel => {}
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => return Some(()),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The replica's one subscription, made again whenever it drops.
async fn listen(
    url: SecretString,
    pattern: String,
    changes: broadcast::Sender<Change>,
    connected: watch::Sender<bool>,
) {
    let mut again = false;
    loop {
        match subscribe(&url, &pattern).await {
            Ok(pubsub) => {
                connected.send_replace(true);
                if again {
                    let _ = changes.send(Change::Everything);
                }
                again = true;
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let _ = changes.send(Change::On(message.get_channel_name().to_owned()));
                }
                tracing::warn!("the workspace progress subscription ended; subscribing again");
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to workspace progress"),
        }
        connected.send_replace(false);
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}

async fn subscribe(url: &SecretString, pattern: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let client = redis::Client::open(url.expose_secret())?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(pattern).await?;
    Ok(pubsub)
}

/// `text` as a literal in a Redis glob.
pub fn glob_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
