//! The HTTP handlers of sign-in, sign-out and the current user (API tokens and sessions are
//! in `account`). Each parses its input, calls the logic in `auth` (and `users`, `authz`),
//! and maps the result; no SQL here.

use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, Action, Outcome};
use crate::auth::login_state::{self, LoginState};
use crate::auth::providers::{External, ProviderInfo};
use crate::auth::return_to::ReturnTo;
use crate::auth::secret::{constant_time_eq, random_token, sha256_hex};
use crate::auth::{csrf, onboarding, session::Session};
use crate::authz::{access_levels::AccessLevel, roles};
use crate::error::{ApiError, ErrorBody};
use crate::metrics::SignInOutcome;
use crate::ratelimit;
use crate::users::{self, Identity, User};
use crate::web::app::AppState;
use crate::web::extract::{CurrentUser, audit_of, client_key};
use crate::web::guard::capabilities;
use crate::web::pages;

type State = web::Data<AppState>;

/// The signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    #[schema(value_type = String, format = Uuid)]
    pub id: users::UserId,
    pub display_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    /// Every way this account can sign in.
    pub identities: Vec<Identity>,
    /// Roles held besides `member`, which every signed-in user is.
    pub roles: Vec<String>,
    /// How much of the product and the machine this account gets.
    pub access_level: AccessLevel,
    /// What the pages may offer this user, as the policy decides it now (e.g.
    /// `admin_console`, `users.read`, `roles.write`, `audit.read`, `fleet.read`).
    pub capabilities: Vec<String>,
    /// Send as `X-CSRF-Token` on state-changing requests made with the session cookie.
    /// Absent when the request was authenticated with an API token.
    pub csrf_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    pub user: Me,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LoginQuery {
    /// A path on this site to land on after sign-in (default `/dashboard`).
    pub return_to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207: the issuer that sent this response.
    pub iss: Option<String>,
}

/// `access_level` is the user's, as read with the user (the guard's `CurrentUser` has it).
pub(super) async fn me_of(
    state: &AppState,
    user: &User,
    access_level: AccessLevel,
    session: Option<&Session>,
) -> Result<Me, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(Me {
        roles: roles::of_user(&mut conn, user.id).await?,
        access_level,
        capabilities: capabilities(state, user.id)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        id: user.id,
        display_name: user.display_name.clone(),
        email: user.email.clone(),
        email_verified: user.email_verified,
        created_at: user.created_at,
        identities: users::identities_of(&mut conn, user.id).await?,
        csrf_token: session.map(|s| s.record.csrf_token.clone()),
    })
}

pub(super) fn client_ip(state: &AppState, req: &HttpRequest) -> String {
    client_key(req, &state.config.trusted_proxies)
}

pub(super) async fn limit(state: &AppState, bucket: String, max: u32) -> Result<(), ApiError> {
    let window = state.config.rate_limits.window;
    match ratelimit::hit(&state.kv, &bucket, max, window).await? {
        Ok(()) => Ok(()),
        Err(retry_after) => Err(ApiError::RateLimited(retry_after)),
    }
}

pub(super) async fn limit_ip(
    state: &AppState,
    req: &HttpRequest,
    class: &str,
) -> Result<(), ApiError> {
    let bucket = format!("{class}:ip:{}", client_ip(state, req));
    limit(state, bucket, state.config.rate_limits.per_ip).await
}

/// Counts a sign-in attempt in the metrics and writes it to the audit log. `claimed` is
/// the e-mail a local sign-in was attempted with. A success that cannot be audited fails.
pub(super) async fn record_sign_in(
    state: &AppState,
    req: &HttpRequest,
    provider: &str,
    result: &Result<User, ApiError>,
    claimed: Option<&str>,
) -> Result<(), ApiError> {
    record_attempt(state, req, Action::SignIn, provider, result, claimed).await
}

/// [`record_sign_in`] for `action` (a sign-in or a registration).
pub(super) async fn record_attempt(
    state: &AppState,
    req: &HttpRequest,
    action: Action,
    provider: &str,
    result: &Result<User, ApiError>,
    claimed: Option<&str>,
) -> Result<(), ApiError> {
    let outcome = match result {
        Ok(_) => SignInOutcome::Success,
        Err(ApiError::RateLimited(_)) => SignInOutcome::RateLimited,
        Err(_) => SignInOutcome::Failure,
    };
    state.metrics.sign_in(provider, outcome);
    let audit = audit_of(req);
    let (audit, target, outcome, detail) = match result {
        Ok(user) => {
            tracing::info!(provider, "sign-in succeeded");
            let label = user.email.as_deref().unwrap_or(&user.display_name);
            (
                audit.as_user(user.id, label),
                Some(audit::user_target(user.id)),
                Outcome::Success,
                serde_json::json!({ "provider": provider }),
            )
        }
        Err(e) => {
            tracing::info!(provider, reason = %e, "sign-in failed");
            (
                audit,
                None,
                Outcome::Failure,
                serde_json::json!({ "provider": provider, "reason": e.to_string(), "email": claimed }),
            )
        }
    };
    let written = async {
        let mut conn = state.db.get().await?;
        audit
            .record(&mut conn, action, target.as_deref(), outcome, detail)
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match (written, result) {
        (Err(e), Ok(_)) => Err(e),
        (Err(e), Err(_)) => {
            tracing::error!(error = %e, "cannot audit a failed sign-in");
            Ok(())
        }
        (Ok(()), _) => Ok(()),
    }
}

/// The sign-in methods offered here.
#[utoipa::path(get, path = "/auth/providers", tag = "auth",
    responses((status = 200, body = Vec<ProviderInfo>)))]
pub async fn providers(state: State) -> web::Json<Vec<ProviderInfo>> {
    web::Json(state.providers.list())
}

/// Starts sign-in with an external provider: redirects the browser there.
#[utoipa::path(get, path = "/auth/login/{provider}", tag = "auth", params(("provider" = String, Path), LoginQuery),
    responses((status = 302, description = "Redirect to the provider"),
        (status = 400, body = ErrorBody, description = "return_to is not a path on this site"),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login_start(
    state: State,
    req: HttpRequest,
    provider_id: web::Path<String>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, ApiError> {
    limit_ip(&state, &req, "sign_in").await?;
    let provider = state.providers.external(&provider_id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no sign-in provider named {provider_id:?}"
        ))
    })?;
    let return_to = ReturnTo::parse(query.return_to.as_deref())?;
    let started = provider.start().await?;
    let binding = random_token(24);
    login_state::save(
        &state.kv,
        &started.state,
        &LoginState {
            provider: provider_id.clone(),
            pkce_verifier: started.pkce_verifier,
            nonce: started.nonce,
            return_to: return_to.as_str().to_owned(),
            browser_binding_hash: sha256_hex(&binding),
        },
    )
    .await?;
    Ok(HttpResponse::Found()
        .insert_header((LOCATION, started.url.as_str()))
        .insert_header((CACHE_CONTROL, "no-store"))
        .cookie(state.cookies.login(&binding))
        .finish())
}

/// Where the provider sends the browser back: validates everything, then signs in.
#[utoipa::path(get, path = "/auth/callback/{provider}", tag = "auth", params(("provider" = String, Path), CallbackQuery),
    responses((status = 303, description = "Signed in; redirect to return_to with the session cookie"),
        (status = 400, body = ErrorBody, description = "Refused: bad state, denied, invalid ID token…"),
        (status = 403, body = ErrorBody, description = "The account is disabled"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn callback(
    state: State,
    req: HttpRequest,
    provider_id: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let provider_id = provider_id.into_inner();
    let Some(provider) = state.providers.external(&provider_id) else {
        return Err(ApiError::NotFound(format!(
            "there is no sign-in provider named {provider_id:?}"
        )));
    };
    let result = finish_external(&state, &req, &provider_id, provider, query.into_inner()).await;
    let (user_result, return_to) = match result {
        Ok((user, return_to)) => (Ok(user), Some(return_to)),
        Err(e) => (Err(e), None),
    };
    record_sign_in(&state, &req, &provider_id, &user_result, None).await?;
    let result = user_result.map(|user| (user, return_to.unwrap_or_default()));
    let (user, return_to) = match result {
        Ok(done) => done,
        // People arrive here by a browser redirect from the provider: show them a page.
        Err(err) if pages::wants_html(&req) => {
            return Ok(pages::sign_in_failed_page(&err));
        }
        Err(err) => return Err(err),
    };
    let (token, _) = state.sessions.create(user.id, &provider_id).await?;
    state.tenants.start_after_sign_in(user.id).await;
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, return_to))
        .insert_header((CACHE_CONTROL, "no-store"))
        .cookie(state.cookies.session(&token, state.sessions.max_lifetime()))
        .cookie(state.cookies.removal(state.cookies.login))
        .finish())
}

async fn finish_external(
    state: &AppState,
    req: &HttpRequest,
    provider_id: &str,
    provider: External<'_>,
    query: CallbackQuery,
) -> Result<(User, String), ApiError> {
    limit_ip(state, req, "sign_in").await?;
    let Some(state_param) = query.state else {
        // Some providers drop the state when they refuse; their reason is still the news.
        return Err(match query.error {
            Some(error) => provider_refusal(&error, query.error_description.as_deref()),
            None => ApiError::BadRequest(
                "the provider's answer has no state; start the sign-in again".to_owned(),
            ),
        });
    };
    // Taken before anything else is checked: a state is good for one try only.
    let login = login_state::take(&state.kv, &state_param)
        .await?
        .ok_or_else(|| {
            ApiError::BadRequest(
                "this sign-in has expired or was already used; start the sign-in again".to_owned(),
            )
        })?;
    let binding = req
        .cookie(state.cookies.login)
        .map(|c| sha256_hex(c.value()));
    if !binding
        .is_some_and(|b| constant_time_eq(b.as_bytes(), login.browser_binding_hash.as_bytes()))
    {
        return Err(ApiError::BadRequest(
            "this sign-in was started in another browser; start the sign-in again".to_owned(),
        ));
    }
    if login.provider != provider_id {
        return Err(ApiError::BadRequest(
            "this answer is for a sign-in started with another provider; start the sign-in again"
                .to_owned(),
        ));
    }
    if let Some(error) = query.error {
        return Err(provider_refusal(&error, query.error_description.as_deref()));
    }
    if let (Some(iss), Some(expected)) = (query.iss.as_deref(), provider.issuer())
        && iss.trim_end_matches('/') != expected.trim_end_matches('/')
    {
        return Err(ApiError::BadRequest(
            "the answer came from another issuer than the one this sign-in was started with"
                .to_owned(),
        ));
    }
    let code = query
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| {
            ApiError::BadRequest("the provider's answer has no authorization code".to_owned())
        })?;
    let profile = match provider {
        External::Oidc(p) => p.finish(code, login.pkce_verifier, login.nonce).await?,
        External::Github(p) => p.finish(code, login.pkce_verifier).await?,
    };
    let mut conn = state.db.get().await?;
    let (user, made_admin) =
        onboarding::sign_in_with_identity(&mut conn, &profile, &state.onboarding).await?;
    if made_admin {
        state.authz.changed().await.map_err(ApiError::internal)?;
    }
    if user.is_disabled() {
        return Err(ApiError::Forbidden("this account is disabled".to_owned()));
    }
    Ok((user, login.return_to))
}

/// The provider's own refusal (`error=access_denied`…), cleaned for display.
fn provider_refusal(error: &str, description: Option<&str>) -> ApiError {
    let error: String = error
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    let detail: String = description
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    ApiError::Provider(format!("the provider refused the sign-in: {error}{detail}"))
}

/// Ends the current browser session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out (also when there was no session)"),
        (status = 403, body = ErrorBody, description = "Cross-site request refused")))]
pub async fn logout(state: State, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let Some(token) = state.cookies.session_token(&req)
        && let Some(session) = state.sessions.lookup(&token).await?
    {
        csrf::verify_for_session(
            req.method(),
            req.headers(),
            &state.config.public_url.origin(),
            &session,
        )?;
        state
            .sessions
            .revoke(&session.id_hash, session.record.user_id)
            .await?;
        tracing::info!(user_id = %session.record.user_id, "signed out");
        state
            .tenants
            .stop_in_background(session.record.user_id, "signed out");
        let user_id = session.record.user_id;
        let mut conn = state.db.get().await?;
        let label = users::find(&mut conn, user_id)
            .await?
            .map(|u| u.email.unwrap_or(u.display_name))
            .unwrap_or_default();
        audit_of(&req)
            .as_user(user_id, &label)
            .record(
                &mut conn,
                Action::SignOut,
                Some(&audit::user_target(user_id)),
                Outcome::Success,
                serde_json::json!({ "provider": session.record.provider }),
            )
            .await?;
    }
    Ok(HttpResponse::NoContent()
        .cookie(state.cookies.removal(state.cookies.session))
        .finish())
}

/// Who you are.
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn me(state: State, current: CurrentUser) -> Result<web::Json<Me>, ApiError> {
    Ok(web::Json(
        me_of(
            &state,
            &current.user,
            current.access.clone(),
            current.session(),
        )
        .await?,
    ))
}
