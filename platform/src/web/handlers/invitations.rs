//! Handlers of invitations (admins, as the policy says): list, make (the code is in this
//! answer only), withdraw. The work is `auth::invitations`, which `platform admin invite`
//! calls too.

use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::Audit;
use crate::auth::invitations::{self, Invitation, NewInvitation};
use crate::error::{ApiError, ErrorBody};
use crate::web::app::AppState;

type State = web::Data<AppState>;

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    /// Newest first, at most 200.
    pub invitations: Vec<Invitation>,
    /// Whether registration needs one now (`WEBSPLAT_REGISTRATION_INVITATION_ONLY`).
    pub invitation_only: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MadeInvitation {
    #[serde(flatten)]
    pub invitation: Invitation,
    /// The code, shown this once (only its hash is kept).
    pub code: String,
    /// The sign-in page's registration with the code filled in, to send to the person.
    pub url: String,
}

/// The invitations, newest first.
#[utoipa::path(get, path = "/api/v1/admin/invitations", tag = "admin",
    responses((status = 200, body = InvitationList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list(state: State) -> Result<web::Json<InvitationList>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(web::Json(InvitationList {
        invitations: invitations::list(&mut conn).await?,
        invitation_only: state.providers.invitation_only(),
    }))
}

/// Makes an invitation: one registration may use it, before it expires.
#[utoipa::path(post, path = "/api/v1/admin/invitations", tag = "admin", request_body = NewInvitation,
    responses((status = 201, body = MadeInvitation, description = "Made; the code is in this answer only"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create(
    state: State,
    audit: Audit,
    body: web::Json<NewInvitation>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.get().await?;
    let made = invitations::invite(&mut conn, &audit, &body).await?;
    let code = made.code.expose_secret().to_owned();
    let url = state
        .config
        .public_url
        .join(&invitations::registration_path(&code));
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(MadeInvitation {
            invitation: made.invitation,
            code,
            url,
        }))
}

/// Withdraws an invitation nobody used yet.
#[utoipa::path(delete, path = "/api/v1/admin/invitations/{id}", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The invitation's id")),
    responses((status = 204, description = "Withdrawn"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "It was used already"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn revoke(
    state: State,
    audit: Audit,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.get().await?;
    invitations::withdraw(&mut conn, &audit, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
