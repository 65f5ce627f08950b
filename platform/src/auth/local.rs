//! Local accounts: e-mail and password, for self-hosters and the zero-config default.
//! Passwords are hashed with argon2id on a blocking thread and never logged or stored in
//! clear. Signing in with an unknown e-mail costs the same argon2 work as a wrong password
//! and gets the same answer, so neither the reply nor its timing tells which it was.

use std::sync::Arc;

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::Utc;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::auth::onboarding::Onboarding;
use crate::error::ApiError;
use crate::schema::{identities, local_credentials};
use crate::users::{User, UserId};

pub const PROVIDER_ID: &str = "local";
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Long enough for any passphrase, short enough that hashing cannot be abused.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A normalised (trimmed, lower-case) e-mail address that passed basic checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let email = raw.trim().to_lowercase();
        let invalid = || {
            ApiError::validation(
                "email",
                "enter a valid e-mail address, like name@example.com",
            )
        };
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || domain.contains('@')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(invalid());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the policy. Never printed: `Debug` is redacted by `SecretString`.
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: SecretString, email: &Email) -> Result<Self, ApiError> {
        let pw = raw.expose_secret();
        let chars = pw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(ApiError::validation(
                "password",
                format!(
                    "use at least {MIN_PASSWORD_CHARS} characters (a few words make a good password)"
                ),
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(ApiError::validation(
                "password",
                format!("use at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        let mut distinct: Vec<char> = pw.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 5 {
            return Err(ApiError::validation(
                "password",
                "use a password with more different characters",
            ));
        }
        let lower = pw.to_lowercase();
        let local_part = email.as_str().split('@').next().unwrap_or_default();
        if lower.contains(email.as_str()) || (local_part.len() >= 4 && lower.contains(local_part)) {
            return Err(ApiError::validation(
                "password",
                "the password must not contain your e-mail address",
            ));
        }
        if COMMON_PASSWORDS.iter().any(|p| lower.starts_with(p)) {
            return Err(ApiError::validation(
                "password",
                "this password is too common; choose another",
            ));
        }
        Ok(Password(raw))
    }
}

/// Prefixes of the most common long passwords (checked after lower-casing).
const COMMON_PASSWORDS: [&str; 8] = [
    "password",
    "123456789",
    "qwertyuiop",
    "iloveyou",
    "1q2w3e4r",
    "abcdefgh",
    "letmein",
    "websplat",
];

/// Hashes and verifies passwords; holds a decoy hash for unknown accounts.
#[derive(Clone)]
pub struct Passwords {
    decoy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    // OWASP's first recommended argon2id setting: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Passwords {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Passwords {
            decoy_hash: hash_blocking(&super::secret::random_token(24))?.into(),
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, ApiError> {
        let pw = password.0.clone();
        tokio::task::spawn_blocking(move || hash_blocking(pw.expose_secret()))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::Internal)
    }

    /// Verifies against `hash`, or against the decoy when there is no account.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        let pw = password.clone();
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (self.decoy_hash.to_string(), false),
        };
        let ok = tokio::task::spawn_blocking(move || verify_blocking(pw.expose_secret(), &hash))
            .await
            .map_err(ApiError::internal)?;
        Ok(ok && real)
    }
}

/// Creates a user with a local identity and credential in one transaction.
/// Returns whether the account became admin through `WEBSPLAT_BOOTSTRAP_ADMINS`
/// (`local:<e-mail>`).
pub async fn register(
    conn: &mut AsyncPgConnection,
    email: &Email,
    display_name: &str,
    password_hash: String,
    onboarding: &Onboarding,
) -> Result<(User, bool), ApiError> {
    let email = email.as_str().to_owned();
    let display_name = display_name.to_owned();
    let onboarding = onboarding.clone();
    let result = conn
        .transaction(async move |conn| {
            let id = UserId::new();
            let created = onboarding
                .create_user(
                    conn,
                    (id, &display_name, Some(&email), false),
                    (PROVIDER_ID, &email),
                )
                .await?;
            diesel::insert_into(local_credentials::table)
                .values((
                    local_credentials::user_id.eq(id),
                    local_credentials::email.eq(&email),
                    local_credentials::password_hash.eq(&password_hash),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(identities::table)
                .values((
                    identities::id.eq(Uuid::new_v4()),
                    identities::user_id.eq(id),
                    identities::provider.eq(PROVIDER_ID),
                    identities::subject.eq(id.to_string()),
                    identities::email.eq(&email),
                    identities::last_login_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
            Ok::<_, DieselError>(created)
        })
        .await;
    match result {
        Ok(created) => Ok(created),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(ApiError::Conflict(
                "an account with this e-mail address already exists; sign in instead".to_owned(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The stored hash and owner for a local e-mail, if any.
pub async fn credential_for(
    conn: &mut AsyncPgConnection,
    email: &Email,
) -> QueryResult<Option<(UserId, String)>> {
    local_credentials::table
        .filter(local_credentials::email.eq(email.as_str()))
        .select((local_credentials::user_id, local_credentials::password_hash))
        .first(conn)
        .await
        .optional()
}

/// Records a successful local sign-in on the identity.
pub async fn touch(conn: &mut AsyncPgConnection, user_id: UserId) -> QueryResult<()> {
    diesel::update(
        identities::table
            .filter(identities::provider.eq(PROVIDER_ID))
            .filter(identities::user_id.eq(user_id)),
    )
    .set(identities::last_login_at.eq(Utc::now()))
    .execute(conn)
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Result<Password, ApiError> {
        Password::parse(
            SecretString::from(s.to_owned()),
            &Email::parse("alice@example.com").expect("email"),
        )
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ")
                .expect("valid")
                .as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@com",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_password_policy_explains_itself() {
        assert!(pw("correct horse battery").is_ok());
        let short = pw("short").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(short.contains("at least 12"), "{short}");
        assert!(pw(&"x".repeat(129)).is_err());
        assert!(pw("aaaaaaaaaaaaaaaa").is_err());
        assert!(pw("Password123456!").is_err());
        assert!(pw("my alice@example.com pw").is_err());
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hash = hash_blocking("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_blocking("correct horse battery", &hash));
        assert!(!verify_blocking("correct horse battery!", &hash));
    }
}
