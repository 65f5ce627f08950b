//! E-mail verification links for new local accounts (when an SMTP server is set): a random
//! token in the link, its SHA-256 in Redis naming the account, for
//! `WEBSPLAT_EMAIL_VERIFICATION_TTL`. Single use (taken with `GETDEL`); registering the same
//! address again before confirming mails a new link. What the mails say is here too; they
//! never carry a password, and the link is never logged.

use std::time::Duration;

use redis::AsyncCommands;
use uuid::Uuid;

use super::secret::{random_token, sha256_hex};
use crate::kv::{Kv, KvError};
use crate::mail::{Kind, Mail};
use crate::users::UserId;

/// Where the link leads (`?token=…`).
pub const VERIFY_PATH: &str = "/auth/verify-email";

fn key(kv: &Kv, token: &str) -> String {
    kv.key(&format!("email_verify:{}", sha256_hex(token)))
}

/// A new link's token for `user`, valid for `ttl`.
pub async fn issue(kv: &Kv, user: UserId, ttl: Duration) -> Result<String, KvError> {
    let token = random_token(32);
    let (key, value) = (key(kv, &token), user.to_string());
    let secs = ttl.as_secs().max(60);
    kv.run(async move |c| c.set_ex::<_, _, ()>(&key, value, secs).await)
        .await?;
    Ok(token)
}

/// The account a token confirms, taken out of Redis: a second use finds nothing.
pub async fn take(kv: &Kv, token: &str) -> Result<Option<UserId>, KvError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let key = key(kv, token);
    let raw: Option<String> = kv.run(async move |c| c.get_del(&key).await).await?;
    Ok(raw.and_then(|r| r.parse::<Uuid>().ok()).map(UserId))
}

fn hours(ttl: Duration) -> u64 {
    ttl.as_secs().div_ceil(3600).max(1)
}

/// The message with the link that confirms a new account.
pub fn verification_mail(to: &str, link: &str, ttl: Duration) -> Mail {
    let hours = hours(ttl);
    Mail {
        kind: Kind::Verification,
        to: to.to_owned(),
        subject: "Confirm your e-mail address for WebSplat".to_owned(),
        body: format!(
            "Hello,\n\nsomeone (we hope you) created a WebSplat account with this e-mail address.\n\
             To finish, open this link within {hours} hour{s}:\n\n{link}\n\n\
             If it was not you, ignore this message: the account stays unusable and nobody \
             can sign in with it.\n",
            s = if hours == 1 { "" } else { "s" },
        ),
    }
}

/// The message to the owner of an address someone tried to register again.
pub fn attempt_mail(to: &str, sign_in: &str) -> Mail {
    Mail {
        kind: Kind::RegistrationAttempt,
        to: to.to_owned(),
        subject: "Someone tried to create a WebSplat account with your address".to_owned(),
        body: format!(
            "Hello,\n\nsomeone tried to create a new WebSplat account with this e-mail address, \
             which already has one. Nothing was changed.\n\n\
             If it was you, sign in instead: {sign_in}\n\
             If it was not, you need not do anything.\n"
        ),
    }
}
