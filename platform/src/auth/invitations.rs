//! Invitations, for invitation-only registration (`WEBSPLAT_REGISTRATION_INVITATION_ONLY`,
//! issue #15): an admin makes one in the console, the API or `platform admin invite`; the
//! code is shown once and only its SHA-256 is kept; a registration uses it up in the same
//! transaction that makes the account, so one code makes one account. An invitation may be
//! bound to one e-mail address, and always expires. Nothing here may log a code.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::local::Email;
use super::secret::{random_token, sha256_hex};
use crate::audit::{Action, Audit, Outcome};
use crate::error::ApiError;
use crate::schema::{invitations, users};
use crate::users::UserId;

/// Codes start with this, so people (and secret scanners) can tell what one is.
pub const CODE_PREFIX: &str = "inv_";
/// How long an invitation lasts when its maker does not say.
pub const DEFAULT_DAYS: u32 = 14;
pub const MAX_DAYS: u32 = 90;
pub const MAX_NOTE: usize = 200;
/// The most invitations a list shows (newest first).
const LIST_LIMIT: i64 = 200;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations, check_for_backend(diesel::pg::Pg))]
struct Row {
    id: Uuid,
    email: Option<String>,
    note: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    created_by: Option<Uuid>,
    used_by: Option<Uuid>,
}

/// An invitation as admins see it (never its code, which only its maker saw once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    /// Only this address may register with it, when set.
    pub email: Option<String>,
    pub note: String,
    /// `unused`, `used` or `expired`.
    #[schema(example = "unused")]
    pub state: &'static str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// Who made it (their e-mail or name), if they still exist.
    pub created_by: Option<String>,
    /// The account it made, if it was used and the account still exists.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub used_by: Option<UserId>,
    pub used_by_email: Option<String>,
}

/// What an admin asks for.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// Bind it to one e-mail address (optional).
    pub email: Option<String>,
    /// A note for the admins (who it is for), at most 200 characters.
    #[serde(default)]
    pub note: String,
    /// 1 to 90 days; 14 when absent.
    pub expires_in_days: Option<u32>,
}

/// The sign-in page's registration with `code` filled in.
pub fn registration_path(code: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("invitation", code)
        .finish();
    format!("/login?{query}#register")
}

/// A new invitation and its code, shown this once.
pub struct Made {
    pub invitation: Invitation,
    pub code: SecretString,
}

impl NewInvitation {
    fn checked(&self) -> Result<(Option<Email>, String, u32), ApiError> {
        let email = match self.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(Email::parse(raw)?),
        };
        let note = self.note.trim().to_owned();
        if note.chars().count() > MAX_NOTE || note.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "note",
                format!("the note is at most {MAX_NOTE} printable characters"),
            ));
        }
        let days = self.expires_in_days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ApiError::validation(
                "expires_in_days",
                format!("an invitation lasts 1 to {MAX_DAYS} days"),
            ));
        }
        Ok((email, note, days))
    }
}

fn state_of(row: &Row, now: DateTime<Utc>) -> &'static str {
    if row.used_at.is_some() {
        "used"
    } else if row.expires_at <= now {
        "expired"
    } else {
        "unused"
    }
}

/// Makes an invitation and audits it (`invitation.create`): what the admin API and
/// `platform admin invite` both call.
pub async fn invite(
    conn: &mut AsyncPgConnection,
    audit: &Audit,
    input: &NewInvitation,
) -> Result<Made, ApiError> {
    let result = create(conn, audit.actor_id, input).await;
    let detail = match &result {
        Ok(made) => serde_json::json!({
            "invitation": made.invitation.id,
            "email": made.invitation.email,
            "expires_at": made.invitation.expires_at,
        }),
        Err(e) => serde_json::json!({ "reason": e.to_string() }),
    };
    let target = result
        .as_ref()
        .ok()
        .map(|made| format!("invitation:{}", made.invitation.id));
    audit
        .record(
            conn,
            Action::InvitationCreate,
            target.as_deref(),
            Outcome::of(&result),
            detail,
        )
        .await?;
    result
}

/// Withdraws an unused invitation and audits it (`invitation.revoke`).
pub async fn withdraw(
    conn: &mut AsyncPgConnection,
    audit: &Audit,
    id: Uuid,
) -> Result<Invitation, ApiError> {
    let result = revoke(conn, id).await;
    let detail = match &result {
        Ok(gone) => serde_json::json!({ "email": gone.email, "note": gone.note }),
        Err(e) => serde_json::json!({ "reason": e.to_string() }),
    };
    audit
        .record(
            conn,
            Action::InvitationRevoke,
            Some(&format!("invitation:{id}")),
            Outcome::of(&result),
            detail,
        )
        .await?;
    result
}

/// Makes an invitation; its code is returned once and never stored.
pub async fn create(
    conn: &mut AsyncPgConnection,
    created_by: Option<UserId>,
    input: &NewInvitation,
) -> Result<Made, ApiError> {
    let (email, note, days) = input.checked()?;
    let code = SecretString::from(format!("{CODE_PREFIX}{}", random_token(18)));
    let id = Uuid::new_v4();
    let expires_at = Utc::now() + Duration::days(i64::from(days));
    diesel::insert_into(invitations::table)
        .values((
            invitations::id.eq(id),
            invitations::code_hash.eq(sha256_hex(code.expose_secret())),
            invitations::email.eq(email.as_ref().map(Email::as_str)),
            invitations::note.eq(&note),
            invitations::created_by.eq(created_by),
            invitations::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    let invitation = get(conn, id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the new invitation is gone")))?;
    Ok(Made { invitation, code })
}

async fn label_of(conn: &mut AsyncPgConnection, id: Option<Uuid>) -> QueryResult<Option<String>> {
    let Some(id) = id else { return Ok(None) };
    let found: Option<(Option<String>, String)> = users::table
        .find(UserId(id))
        .select((users::email, users::display_name))
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(email, name)| email.unwrap_or(name)))
}

async fn view(
    conn: &mut AsyncPgConnection,
    row: Row,
    now: DateTime<Utc>,
) -> QueryResult<Invitation> {
    let (created_by, used_by) = (row.created_by, row.used_by);
    Ok(Invitation {
        id: row.id,
        state: state_of(&row, now),
        email: row.email,
        note: row.note,
        created_at: row.created_at,
        expires_at: row.expires_at,
        used_at: row.used_at,
        created_by: label_of(conn, created_by).await?,
        used_by: used_by.map(UserId),
        used_by_email: label_of(conn, used_by).await?,
    })
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Invitation>> {
    let row: Option<Row> = invitations::table
        .find(id)
        .select(Row::as_select())
        .first(conn)
        .await
        .optional()?;
    match row {
        Some(row) => Ok(Some(view(conn, row, Utc::now()).await?)),
        None => Ok(None),
    }
}

/// The newest invitations (at most 200).
pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Invitation>> {
    let rows: Vec<Row> = invitations::table
        .order(invitations::created_at.desc())
        .limit(LIST_LIMIT)
        .select(Row::as_select())
        .load(conn)
        .await?;
    let now = Utc::now();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(view(conn, row, now).await?);
    }
    Ok(out)
}

/// Withdraws an invitation nobody used yet (a used one stays, as the record of who came in
/// with it).
pub async fn revoke(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Invitation, ApiError> {
    let Some(found) = get(conn, id).await? else {
        return Err(ApiError::NotFound("there is no such invitation".to_owned()));
    };
    if found.used_at.is_some() {
        return Err(ApiError::Conflict(
            "this invitation was already used; it stays as the record of who registered with it"
                .to_owned(),
        ));
    }
    diesel::delete(
        invitations::table
            .find(id)
            .filter(invitations::used_at.is_null()),
    )
    .execute(conn)
    .await?;
    Ok(found)
}

/// The one sentence for a code that cannot be used, whatever the reason (so a guess learns
/// nothing about which codes exist).
pub fn not_valid() -> ApiError {
    ApiError::validation(
        "invitation",
        "this invitation code is not valid: it may be mistyped, used, expired or meant for another address",
    )
}

fn parse_code(code: Option<&str>) -> Result<String, ApiError> {
    let code = code.map(str::trim).unwrap_or_default();
    if code.is_empty() {
        return Err(ApiError::validation(
            "invitation",
            "registration here needs an invitation; enter the code an administrator gave you",
        ));
    }
    if code.len() > 100 || !code.starts_with(CODE_PREFIX) {
        return Err(not_valid());
    }
    Ok(sha256_hex(code))
}

/// Whether `code` could make an account for `email` now (read only; [`redeem`] takes it).
pub async fn check(
    conn: &mut AsyncPgConnection,
    code: Option<&str>,
    email: &Email,
) -> Result<(), ApiError> {
    let hash = parse_code(code)?;
    let usable: bool = diesel::select(diesel::dsl::exists(
        invitations::table
            .filter(invitations::code_hash.eq(&hash))
            .filter(invitations::used_at.is_null())
            .filter(invitations::expires_at.gt(Utc::now()))
            .filter(
                invitations::email
                    .is_null()
                    .or(invitations::email.eq(email.as_str())),
            ),
    ))
    .get_result(conn)
    .await?;
    if usable { Ok(()) } else { Err(not_valid()) }
}

/// Uses `code` up for the new account `user`, in the caller's transaction: one conditional
/// UPDATE, so two registrations racing for one code make one account.
pub async fn redeem(
    conn: &mut AsyncPgConnection,
    code: &str,
    email: &Email,
    user: UserId,
) -> Result<bool, diesel::result::Error> {
    let Ok(hash) = parse_code(Some(code)) else {
        return Ok(false);
    };
    let taken = diesel::update(
        invitations::table
            .filter(invitations::code_hash.eq(&hash))
            .filter(invitations::used_at.is_null())
            .filter(invitations::expires_at.gt(Utc::now()))
            .filter(
                invitations::email
                    .is_null()
                    .or(invitations::email.eq(email.as_str())),
            ),
    )
    .set((
        invitations::used_at.eq(Utc::now()),
        invitations::used_by.eq(user),
    ))
    .execute(conn)
    .await?;
    Ok(taken == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_request_is_checked() {
        let ok = NewInvitation {
            email: Some(" Ada@Example.com ".to_owned()),
            note: "for Ada".to_owned(),
            expires_in_days: None,
        }
        .checked()
        .expect("valid");
        assert_eq!(ok.0.expect("email").as_str(), "ada@example.com");
        assert_eq!(ok.2, DEFAULT_DAYS);
        for bad in [
            NewInvitation {
                expires_in_days: Some(0),
                ..Default::default()
            },
            NewInvitation {
                expires_in_days: Some(91),
                ..Default::default()
            },
            NewInvitation {
                email: Some("nobody".to_owned()),
                ..Default::default()
            },
            NewInvitation {
                note: "x".repeat(201),
                ..Default::default()
            },
        ] {
            assert!(bad.checked().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn codes_are_asked_for_and_shaped() {
        let missing = parse_code(None).err().map(|e| e.to_string());
        assert!(
            missing.is_some_and(|m| m.contains("needs an invitation")),
            "a missing code says what to do"
        );
        assert!(parse_code(Some("hello")).is_err());
        assert_eq!(
            parse_code(Some(" inv_abc ")).expect("shaped"),
            sha256_hex("inv_abc")
        );
    }
}
