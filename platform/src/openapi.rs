//! The OpenAPI document, generated from the handlers' annotations and the types they use,
//! served at `/api/v1/openapi.json` and rendered by `/api/docs`.

use actix_web::web;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{auth, health};

#[derive(OpenApi)]
#[openapi(
    info(title = "WebSplat Platform API", description = "Sign-in, account and API tokens of the WebSplat control plane."),
    paths(
        health::healthz, health::readyz, health::metrics,
        auth::http::providers, auth::http::login_start, auth::http::callback, auth::http::logout,
        auth::http::register, auth::http::login, auth::http::me,
        auth::http::list_tokens, auth::http::create_token, auth::http::revoke_token,
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Signing in and out"),
        (name = "account", description = "The signed-in user"),
        (name = "tokens", description = "Personal API tokens for programs"),
        (name = "operations", description = "Health, readiness and metrics"),
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
