//! The OpenAPI document, served at `/api/v1/openapi.json` and rendered by `/api/docs`: the
//! title, tags and security schemes are here; the paths come from the route table
//! (`routes::documented`), generated from the handlers' annotations and the types they use.

use actix_web::web;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "WebSplat Platform API", description = "Sign-in, account, API tokens, workspaces and administration of the WebSplat control plane. Every route is authorized by the platform's casbin policy; /api/v1/admin/… needs the admin, operator or auditor role as each route says."),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Signing in and out"),
        (name = "account", description = "The signed-in user"),
        (name = "tokens", description = "Personal API tokens for programs"),
        (name = "operations", description = "Health, readiness and metrics (metrics: operators)"),
        (name = "workspace", description = "Your workspace: its state, start and stop, live progress, and opening it in the browser"),
        (name = "pools", description = "Pools of workspace capacity, sized live (operators and admins)"),
        (name = "admin", description = "Users, roles, access levels, the audit log and the fleet (admins, auditors read-only, operators the fleet)"),
        (name = "sites", description = "Your published sites: publish a project of your workspace under a name, list, take down"),
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

/// The whole document: this module's description with every documented route's path.
pub fn build() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(routes::documented());
    doc
}

pub async fn document() -> web::Json<utoipa::openapi::OpenApi> {
    web::Json(build())
}
