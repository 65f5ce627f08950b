//! The OpenAPI document, served at `/api/v1/openapi.json` and rendered by `/api/docs`: the
//! title, tags and security schemes are here; the paths come from the route table
//! (`routes::documented`), generated from the handlers' annotations and the types they use.
//! The answers the layers in front of every handler can give (the guard's 401, 403 and 429,
//! the JSON extractor's 400, 413 and 415, a dependency's 503) are added here to each
//! operation they apply to, from its route's class, so no handler has to repeat them and no
//! client meets a status the document does not list (the fuzz tests check it).

use actix_web::web;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{AdditionalProperties, Object, Schema};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use super::routes::{self, Class};

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
    add_common_answers(&mut doc);
    merge_flattened(&mut doc);
    doc
}

/// A struct that `#[serde(flatten)]`s a closed one (`deny_unknown_fields`) is generated as an
/// `allOf` of the closed object and its own fields, which no value can satisfy (the closed
/// part forbids the other's fields). Such a schema is written as the one object it is on the
/// wire: every property and requirement of its parts, closed only if every part is (serde
/// does not enforce `deny_unknown_fields` through `flatten`).
fn merge_flattened(doc: &mut utoipa::openapi::OpenApi) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let known = components.schemas.clone();
    for schema in components.schemas.values_mut() {
        let RefOr::T(Schema::AllOf(all)) = schema else {
            continue;
        };
        let mut merged = Object::new();
        let mut closed = true;
        for item in &all.items {
            let part = match item {
                RefOr::T(Schema::Object(o)) => o,
                RefOr::Ref(r) => match r
                    .ref_location
                    .strip_prefix("#/components/schemas/")
                    .and_then(|name| known.get(name))
                {
                    Some(RefOr::T(Schema::Object(o))) => o,
                    _ => return,
                },
                _ => return,
            };
            merged.properties.extend(part.properties.clone());
            merged.required.extend(part.required.clone());
            closed &= matches!(
                part.additional_properties.as_deref(),
                Some(AdditionalProperties::FreeForm(false))
            );
            if merged.description.is_none() {
                merged.description.clone_from(&part.description);
            }
        }
        if closed {
            merged.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
        *schema = RefOr::T(Schema::Object(merged));
    }
}

/// Adds to each operation the answers its route's layers can give, where its handler's
/// annotation does not already describe them.
fn add_common_answers(doc: &mut utoipa::openapi::OpenApi) {
    let table = routes::table();
    for (path, item) in &mut doc.paths.paths {
        let operations = [
            ("GET", item.get.as_mut()),
            ("PUT", item.put.as_mut()),
            ("POST", item.post.as_mut()),
            ("DELETE", item.delete.as_mut()),
            ("PATCH", item.patch.as_mut()),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let Some(route) = table
                .iter()
                .find(|r| r.method == method && r.pattern == path.as_str())
            else {
                continue;
            };
            for (status, description) in common_answers(route.class, operation) {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            }
        }
    }
}

/// `(status, description)` of what the layers before `operation`'s handler may answer.
fn common_answers(class: Class, operation: &Operation) -> Vec<(&'static str, &'static str)> {
    let mut answers = Vec::new();
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let has_path = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    if has_path {
        answers.extend([
            (
                "400",
                "A path parameter is not a valid name or id (the message says which)",
            ),
            ("404", "Nothing is there"),
        ]);
    }
    if operation.request_body.is_some() {
        answers.extend([
            (
                "400",
                "The body is not valid JSON for this operation (the message says where)",
            ),
            ("413", "The body is larger than this operation accepts"),
            (
                "415",
                "The body is not sent as JSON (Content-Type: application/json)",
            ),
        ]);
    } else if has_query {
        answers.push(("400", "The query string is not valid for this operation"));
    }
    match class {
        Class::Api => answers.extend([
            (
                "401",
                "Not signed in, or the session or API token is no longer valid",
            ),
            (
                "403",
                "Refused: the policy does not allow it, or a cross-site write",
            ),
            (
                "429",
                "Too many requests; Retry-After says when to try again",
            ),
            (
                "503",
                "PostgreSQL or Redis is unavailable; try again shortly",
            ),
        ]),
        Class::SignIn => answers.extend([
            (
                "429",
                "Too many attempts; Retry-After says when to try again",
            ),
            (
                "503",
                "PostgreSQL or Redis is unavailable; try again shortly",
            ),
        ]),
        Class::Page | Class::Probe => {}
    }
    answers
}

/// A response with the one error body every refusal has.
fn error(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        "application/json".to_owned(),
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    response
}

pub async fn document() -> web::Json<utoipa::openapi::OpenApi> {
    web::Json(build())
}
