//! Local accounts: e-mail and password, for self-hosters and the zero-config default.
//! Passwords are hashed with argon2id on the [`super::hasher`]'s few threads and never
//! logged or stored in clear. Signing in with an unknown e-mail costs the same argon2 work as a wrong password
//! and gets the same answer, so neither the reply nor its timing tells which it was.

use std::sync::Arc;

use chrono::Utc;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::hasher::{self, Hasher};
use super::invitations;
use crate::auth::onboarding::Onboarding;
use crate::error::ApiError;
use crate::schema::{identities, local_credentials, users};
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
    hasher: Arc<Hasher>,
}

impl Passwords {
    /// Starts the hasher's threads, one per core.
    pub fn new() -> anyhow::Result<Self> {
        Self::with_threads(Hasher::threads_for_this_machine())
    }

    pub fn with_threads(threads: usize) -> anyhow::Result<Self> {
        let decoy = hasher::hash(
            &mut hasher::memory(),
            super::secret::random_token(24).as_bytes(),
        )?;
        Ok(Passwords {
            decoy_hash: decoy.into(),
            hasher: Hasher::start(threads)?,
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, ApiError> {
        self.hasher
            .hash(password.0.clone())
            .await
            .map_err(ApiError::Internal)
    }

    /// Verifies against `hash`, or against the decoy when there is no account.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (self.decoy_hash.to_string(), false),
        };
        let ok = self
            .hasher
            .verify(password.clone(), hash)
            .await
            .map_err(ApiError::Internal)?;
        Ok(ok && real)
    }
}

/// What a registration did.
pub enum Registered {
    /// A new account; `made_admin` when it became admin through `WEBSPLAT_BOOTSTRAP_ADMINS`
    /// (`local:<e-mail>`).
    Created { user: User, made_admin: bool },
    /// The address already has a local account (nothing was written, no invitation used):
    /// its owner, and whether that account still waits for its address to be confirmed.
    Taken { owner: UserId, pending: bool },
}

/// What a new local account is made with.
pub struct NewAccount<'a> {
    pub email: &'a Email,
    pub display_name: &'a str,
    pub password_hash: String,
    /// Used up in the same transaction (invitation-only registration).
    pub invitation: Option<&'a str>,
    /// The account cannot sign in until its address is confirmed.
    pub verification_pending: bool,
}

/// Creates a user with a local identity and credential in one transaction (using up the
/// invitation, if one is given). A taken address changes nothing and says whose it is.
pub async fn register(
    conn: &mut AsyncPgConnection,
    account: NewAccount<'_>,
    onboarding: &Onboarding,
) -> Result<Registered, ApiError> {
    let email = account.email.clone();
    let display_name = account.display_name.to_owned();
    let password_hash = account.password_hash;
    let invitation = account.invitation.map(str::to_owned);
    let pending = account.verification_pending;
    let onboarding = onboarding.clone();
    let tx_email = email.clone();
    let result = conn
        .transaction(async move |conn| {
            let email = tx_email;
            let id = UserId::new();
            let created = onboarding
                .create_user(
                    conn,
                    (id, &display_name, Some(email.as_str()), false),
                    (PROVIDER_ID, email.as_str()),
                )
                .await?;
            diesel::insert_into(local_credentials::table)
                .values((
                    local_credentials::user_id.eq(id),
                    local_credentials::email.eq(email.as_str()),
                    local_credentials::password_hash.eq(&password_hash),
                    local_credentials::verification_pending.eq(pending),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(identities::table)
                .values((
                    identities::id.eq(Uuid::new_v4()),
                    identities::user_id.eq(id),
                    identities::provider.eq(PROVIDER_ID),
                    identities::subject.eq(id.to_string()),
                    identities::email.eq(email.as_str()),
                    identities::last_login_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
            if let Some(code) = &invitation
                && !invitations::redeem(conn, code, &email, id).await?
            {
                return Err(InvitationGone.into());
            }
            Ok::<_, RegisterError>(created)
        })
        .await;
    match result {
        Ok((user, made_admin)) => Ok(Registered::Created { user, made_admin }),
        Err(RegisterError::Db(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _,
        ))) => {
            let Some(found) = credential_for(conn, &email).await? else {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "a registration collided with an account that is gone"
                )));
            };
            Ok(Registered::Taken {
                owner: found.user,
                pending: found.verification_pending,
            })
        }
        Err(RegisterError::Db(e)) => Err(e.into()),
        Err(RegisterError::Invitation(_)) => Err(invitations::not_valid()),
    }
}

/// The invitation was used up (or withdrawn) between the check and the registration.
#[derive(Debug)]
struct InvitationGone;

#[derive(Debug)]
enum RegisterError {
    Db(DieselError),
    Invitation(InvitationGone),
}

impl From<DieselError> for RegisterError {
    fn from(e: DieselError) -> Self {
        RegisterError::Db(e)
    }
}

impl From<InvitationGone> for RegisterError {
    fn from(e: InvitationGone) -> Self {
        RegisterError::Invitation(e)
    }
}

/// A local account's stored credential.
pub struct Credential {
    pub user: UserId,
    pub password_hash: String,
    /// The account has not confirmed its address yet (e-mail verification).
    pub verification_pending: bool,
}

/// The stored credential for a local e-mail, if any.
pub async fn credential_for(
    conn: &mut AsyncPgConnection,
    email: &Email,
) -> QueryResult<Option<Credential>> {
    let found: Option<(UserId, String, bool)> = local_credentials::table
        .filter(local_credentials::email.eq(email.as_str()))
        .select((
            local_credentials::user_id,
            local_credentials::password_hash,
            local_credentials::verification_pending,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(
        found.map(|(user, password_hash, verification_pending)| Credential {
            user,
            password_hash,
            verification_pending,
        }),
    )
}

/// Marks `user`'s address confirmed (the link mailed to it was followed); false when the
/// account had nothing to confirm (or is gone).
pub async fn confirm_email(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<bool> {
    conn.transaction(async |conn| {
        let confirmed = diesel::update(
            local_credentials::table
                .filter(local_credentials::user_id.eq(user))
                .filter(local_credentials::verification_pending.eq(true)),
        )
        .set((
            local_credentials::verification_pending.eq(false),
            local_credentials::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
        if confirmed == 1 {
            diesel::update(users::table.find(user))
                .set((
                    users::email_verified.eq(true),
                    users::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
        }
        Ok(confirmed == 1)
    })
    .await
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

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let passwords = Passwords::with_threads(1).expect("passwords");
        let email = Email::parse("alice@example.com").expect("email");
        let password = Password::parse(
            SecretString::from("correct horse battery".to_owned()),
            &email,
        )
        .expect("password");
        let hash = passwords.hash(&password).await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains("correct horse"));
        let check = async |pw: &str, hash: &str| {
            passwords
                .verify(&SecretString::from(pw.to_owned()), Some(hash.to_owned()))
                .await
                .expect("verify")
        };
        assert!(check("correct horse battery", &hash).await);
        assert!(!check("correct horse battery!", &hash).await);
        // Hashes made by the argon2 crate's own hasher (every stored one so far) verify.
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(19 * 1024, 2, 1, None).expect("params"),
        )
        .hash_password(b"an older passphrase", &salt)
        .expect("hash")
        .to_string();
        assert!(check("an older passphrase", &theirs).await);
        assert!(!check("an older passphrase.", &theirs).await);
        assert!(!check("anything", "not a hash").await);
    }

    /// Resident memory of this process (the test runs alone in it under nextest), bytes.
    fn rss() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024)
    }

    /// A burst of sign-ins leaves the memory where a few left it: argon2's 19 MiB per hash
    /// is the hasher threads' own, made once, never one more block per waiting caller.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_sign_ins_leaves_the_memory_where_a_few_left_it() {
        let passwords = Passwords::new().expect("passwords");
        let burst = async |count: usize, at_once: usize| {
            let password = SecretString::from("a wrong password here".to_owned());
            for _ in 0..count / at_once {
                let checks = (0..at_once).map(|_| passwords.verify(&password, None));
                for ok in futures_util::future::join_all(checks).await {
                    assert!(!ok.expect("verify"));
                }
            }
        };
        burst(10, 10).await;
        let after_ten = rss();
        burst(200, 50).await;
        let after_two_hundred = rss();
        let grew = after_two_hundred.saturating_sub(after_ten);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        println!(
            "resident memory: {:.1} MiB after 10 sign-ins, {:.1} MiB after 200 more",
            mib(after_ten),
            mib(after_two_hundred)
        );
        assert!(
            grew < 16 * 1024 * 1024,
            "200 sign-ins took {} MiB more than 10 did",
            grew / (1024 * 1024)
        );
    }
}
