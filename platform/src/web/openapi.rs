//! The OpenAPI document, generated from the handlers' annotations and the types they use,
//! served at `/api/v1/openapi.json` and rendered by `/api/docs`.

use actix_web::web;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{admin, auth, health, tenants};

#[derive(OpenApi)]
#[openapi(
    info(title = "WebSplat Platform API", description = "Sign-in, account, API tokens, workspaces and administration of the WebSplat control plane. Every route is authorized by the platform's casbin policy; /api/v1/admin/… needs the admin, operator or auditor role as each route says."),
    paths(
        health::healthz, health::readyz, health::metrics,
        auth::http::providers, auth::http::login_start, auth::http::callback, auth::http::logout,
        auth::http::register, auth::http::login, auth::http::me,
        auth::http::list_tokens, auth::http::create_token, auth::http::revoke_token,
        auth::http::list_sessions, auth::http::revoke_session,
        admin::http::list_users, admin::http::show_user, admin::http::disable_user,
        admin::http::enable_user, admin::http::grant_role, admin::http::revoke_role,
        admin::http::assign_access_level, admin::http::list_roles, admin::http::define_role,
        admin::http::delete_role, admin::http::list_access_levels, admin::http::create_access_level,
        admin::http::show_access_level, admin::http::update_access_level,
        admin::http::delete_access_level, admin::http::audit_log, admin::http::providers,
        admin::http::fleet, admin::http::delete_user,
        tenants::http::status, tenants::http::start, tenants::http::stop, tenants::http::events,
        tenants::http::open,
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Signing in and out"),
        (name = "account", description = "The signed-in user"),
        (name = "tokens", description = "Personal API tokens for programs"),
        (name = "operations", description = "Health, readiness and metrics (metrics: operators)"),
        (name = "workspace", description = "Your workspace: its state, start and stop, live progress, and opening it in the browser"),
        (name = "admin", description = "Users, roles, access levels, the audit log and the fleet (admins, auditors read-only, operators the fleet)"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "websplat_session",
                "The browser session cookie (`__Host-websplat_session` over https). State-changing requests also need a same-origin `Origin` or the `X-CSRF-Token` header.",
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A personal API token, `wsp_…`"))
                    .build(),
            ),
        );
    }
}

pub async fn document() -> web::Json<utoipa::openapi::OpenApi> {
    web::Json(ApiDoc::openapi())
}
