//! The HTTP handlers of local accounts: registration, sign-in with e-mail and password, and
//! the e-mail verification link. Registration answers the same for a new address and a
//! taken one (issue #15): `202` with what to do next, never a session, so the answer does
//! not tell which addresses have accounts. With an SMTP server set, a new address gets a
//! verification link and a taken one a notice to its owner; without one, the person signs
//! in next with the same address and password (the sign-in page does it for them).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{SignedIn, client_ip, limit, limit_ip, me_of, record_attempt, record_sign_in};
use crate::audit::Action;
use crate::auth::local::{self, Email, NewAccount, Password, Registered};
use crate::auth::secret::sha256_hex;
use crate::auth::{invitations, verification};
use crate::error::{ApiError, ErrorBody};
use crate::users::{self, MAX_DISPLAY_NAME, User};
use crate::web::app::AppState;

type State = web::Data<AppState>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    /// 12 to 128 characters.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// Defaults to the part of the e-mail address before the `@`.
    pub display_name: Option<String>,
    /// The invitation code an admin gave (`inv_…`), where registration is by invitation
    /// only (`invitation_required` in `/auth/providers`).
    pub invitation: Option<String>,
}

/// What a registration answers, the same whether the address was new or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationAccepted {
    /// `check_email`: follow the link mailed to the address; `sign_in`: sign in now with
    /// the same address and password.
    #[schema(example = "sign_in")]
    pub next: &'static str,
    /// What to do next, in a sentence for people.
    pub message: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct VerifyQuery {
    /// The token of the link mailed at registration.
    pub token: Option<String>,
}

fn display_name_for(raw: Option<&str>, email: &Email) -> Result<String, ApiError> {
    let fallback = email.as_str().split('@').next().unwrap_or_default();
    let name = raw
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(fallback);
    if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "display_name",
            format!("the display name must be 1 to {MAX_DISPLAY_NAME} printable characters"),
        ));
    }
    Ok(name.to_owned())
}

async fn signed_in_response(
    state: &AppState,
    user: &User,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let (token, session) = state.sessions.create(user.id, local::PROVIDER_ID).await?;
    state.tenants.start_after_sign_in(user.id).await;
    let access = {
        let mut conn = state.db.get().await?;
        crate::authz::access_levels::require(&mut conn, &user.access_level).await?
    };
    let me = me_of(state, user, access, Some(&session)).await?;
    Ok(HttpResponse::build(status)
        .insert_header((CACHE_CONTROL, "no-store"))
        .cookie(state.cookies.session(&token, state.sessions.max_lifetime()))
        .json(SignedIn { user: me }))
}

/// Mails a new verification link for `user` (in the background).
async fn mail_verification(
    state: &AppState,
    user: users::UserId,
    to: &Email,
) -> Result<(), ApiError> {
    let (Some(mailer), Some(smtp)) = (&state.mailer, &state.config.smtp) else {
        return Ok(());
    };
    let token = verification::issue(&state.kv, user, smtp.verification_ttl).await?;
    let link = state
        .config
        .public_url
        .join(&format!("{}?token={token}", verification::VERIFY_PATH));
    mailer.send_in_background(verification::verification_mail(
        to.as_str(),
        &link,
        smtp.verification_ttl,
    ));
    Ok(())
}

/// Registers a local account. The answer is the same for a new and a taken address.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 202, body = RegistrationAccepted, description = "Accepted, whether the address was new or not: with e-mail verification, follow the link mailed to it; without, sign in with the same address and password"),
        (status = 400, body = ErrorBody, description = "Invalid e-mail, weak password, missing or unusable invitation…"),
        (status = 403, body = ErrorBody, description = "Registration is closed"),
        (status = 404, body = ErrorBody, description = "Local accounts are turned off"),
        (status = 429, body = ErrorBody)))]
pub async fn register(
    state: State,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    if !state.providers.local_enabled() {
        return Err(ApiError::NotFound(
            "local accounts are turned off on this platform".to_owned(),
        ));
    }
    if !state.providers.registration_open() {
        return Err(ApiError::Forbidden(
            "registration is closed on this platform; ask an administrator for access".to_owned(),
        ));
    }
    let claimed: String = body.email.chars().take(254).collect();
    let verify = state.mailer.is_some();
    let result = async {
        limit_ip(&state, &req, "register").await?;
        let body = body.into_inner();
        let email = Email::parse(&body.email)?;
        let password = Password::parse(body.password, &email)?;
        let display_name = display_name_for(body.display_name.as_deref(), &email)?;
        let invitation = if state.providers.invitation_only() {
            let mut conn = state.db.get().await?;
            invitations::check(&mut conn, body.invitation.as_deref(), &email).await?;
            body.invitation
        } else {
            None
        };
        // Hashed for a taken address too: the answer takes as long either way.
        let password_hash = state.passwords.hash(&password).await?;
        let mut conn = state.db.get().await?;
        let account = NewAccount {
            email: &email,
            display_name: &display_name,
            password_hash,
            invitation: invitation.as_deref(),
            verification_pending: verify,
        };
        let registered = local::register(&mut conn, account, &state.onboarding).await?;
        match &registered {
            Registered::Created { user, made_admin } => {
                if *made_admin {
                    state.authz.changed().await.map_err(ApiError::internal)?;
                }
                mail_verification(&state, user.id, &email).await?;
            }
            // Not confirmed yet: the link is what they need again.
            Registered::Taken {
                owner,
                pending: true,
            } if verify => {
                mail_verification(&state, *owner, &email).await?;
            }
            Registered::Taken { .. } => {
                if let Some(mailer) = &state.mailer {
                    mailer.send_in_background(verification::attempt_mail(
                        email.as_str(),
                        &state.config.public_url.join("/login"),
                    ));
                }
            }
        }
        Ok::<_, ApiError>((registered, email))
    }
    .await;
    // The audit log (admins only) says what happened; the answer does not.
    let audited: Result<User, ApiError> = match &result {
        Ok((Registered::Created { user, .. }, _)) => Ok(user.clone()),
        Ok((Registered::Taken { .. }, _)) => Err(ApiError::Conflict(
            "the address already has an account".to_owned(),
        )),
        Err(ApiError::RateLimited(d)) => Err(ApiError::RateLimited(*d)),
        Err(e) => Err(ApiError::BadRequest(e.to_string())),
    };
    record_attempt(
        &state,
        &req,
        Action::Register,
        local::PROVIDER_ID,
        &audited,
        Some(&claimed),
    )
    .await?;
    let (_, email) = result?;
    let accepted = if verify {
        RegistrationAccepted {
            next: "check_email",
            message: format!(
                "We sent a message to {}. Follow the link in it to finish creating your account.",
                email.as_str()
            ),
        }
    } else {
        RegistrationAccepted {
            next: "sign_in",
            message: "Now sign in with this e-mail address and your password.".to_owned(),
        }
    };
    Ok(HttpResponse::Accepted()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(accepted))
}

/// Signs in with a local account's e-mail and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = SignedIn, description = "Signed in; sets the session cookie"),
        (status = 401, body = ErrorBody, description = "Wrong e-mail or password (the same answer for both)"),
        (status = 403, body = ErrorBody, description = "The account is disabled, or its address is not confirmed yet"),
        (status = 429, body = ErrorBody, description = "Too many attempts from this address or for this account")))]
pub async fn login(
    state: State,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    if !state.providers.local_enabled() {
        return Err(ApiError::NotFound(
            "local accounts are turned off on this platform".to_owned(),
        ));
    }
    let claimed: String = body.email.chars().take(254).collect();
    let result = async {
        limit_ip(&state, &req, "sign_in").await?;
        let body = body.into_inner();
        let email = Email::parse(&body.email)?;
        // Per account *and* address: failures from elsewhere cannot lock the owner out.
        let account_bucket = format!(
            "sign_in:account:{}:{}",
            sha256_hex(email.as_str()),
            client_ip(&state, &req)
        );
        limit(&state, account_bucket, state.config.rate_limits.per_account).await?;
        let mut conn = state.db.get().await?;
        let credential = local::credential_for(&mut conn, &email).await?;
        let wrong = ApiError::InvalidCredentials("the e-mail address or password is wrong");
        let (hash, credential) = match credential {
            Some(c) => (Some(c.password_hash.clone()), Some(c)),
            None => (None, None),
        };
        if !state.passwords.verify(&body.password, hash).await? {
            return Err(wrong);
        }
        let Some(credential) = credential else {
            return Err(wrong);
        };
        // Said only to whoever knows the password.
        if credential.verification_pending && state.mailer.is_some() {
            return Err(ApiError::Forbidden(
                "confirm your e-mail address first: follow the link we mailed to it (registering again sends a new one)".to_owned(),
            ));
        }
        let user = users::find(&mut conn, credential.user).await?.ok_or(wrong)?;
        if user.is_disabled() {
            return Err(ApiError::Forbidden("this account is disabled".to_owned()));
        }
        local::touch(&mut conn, user.id).await?;
        Ok(user)
    }
    .await;
    record_sign_in(&state, &req, local::PROVIDER_ID, &result, Some(&claimed)).await?;
    signed_in_response(&state, &result?, StatusCode::OK).await
}

fn to_login(query: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("/login?{query}")))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}

/// The link mailed at registration: confirms the address (once), then leads to sign-in.
#[utoipa::path(get, path = "/auth/verify-email", tag = "auth", params(VerifyQuery),
    responses((status = 303, description = "To the sign-in page: `?verified=1` when the address is confirmed, else `?error=…` in words"),
        (status = 429, body = ErrorBody)))]
pub async fn verify_email(
    state: State,
    req: HttpRequest,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ApiError> {
    limit_ip(&state, &req, "verify_email").await?;
    let token = query.token.as_deref().unwrap_or_default();
    let confirmed = match verification::take(&state.kv, token).await? {
        Some(user) => {
            let mut conn = state.db.get().await?;
            local::confirm_email(&mut conn, user).await?
        }
        None => false,
    };
    if confirmed {
        tracing::info!("an e-mail address was confirmed");
        return Ok(to_login("verified=1"));
    }
    let words = "This confirmation link does not work: it was used already or has expired. Register again with the same address to get a new one.";
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("error", words);
    Ok(to_login(&query.finish()))
}
