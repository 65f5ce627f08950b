//! Every route the platform serves, in one table. The same table registers the handlers,
//! tells the authorization guard, for each route, how to find the owner of what it acts on
//! and which rate limits apply — so a route cannot exist without a policy decision — and
//! yields the OpenAPI paths: a route is documented by its handler's `#[utoipa::path]` (it
//! does not compile without one) unless the table marks it `undocumented` (pages, and the
//! document itself); a test checks that the document describes exactly the table's routes.
//!
//! Workspace origins (`{slug}.{workspace domain}`) are not routed here: every request to
//! them goes to the workspace proxy (`web::proxy`), which asks the same enforcer with the
//! object `workspace`.

use actix_web::http::Method;
use actix_web::web;

use super::handlers::{
    account, admin, admin_workspaces, ai, auth, health, invitations, local_accounts, pools, sites,
    workspace,
};
use super::{openapi, pages};

/// Whose thing a route acts on, for casbin's ownership match (`own` rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Nobody's: public pages, probes, platform-wide admin resources.
    Nobody,
    /// The caller's own account (`/api/v1/me`, `/api/v1/tokens`…).
    Caller,
    /// The owner of the API token `{id}`.
    Token,
    /// The owner of the session `{id}`.
    Session,
    /// The user `{id}` itself.
    User,
}

/// Which rate limits apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Health probes and metrics scrapes: never limited.
    Probe,
    /// Pages and their static files: never limited (they call the API, which is).
    Page,
    /// Sign-in and sign-out: limited per address and account by the handlers themselves.
    SignIn,
    /// The API: per user (from their access level) and per address, reads and writes apart.
    Api,
}

#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    pub owner: Owner,
    pub class: Class,
    /// Whether the OpenAPI document describes it.
    pub documented: bool,
}

macro_rules! routes {
    ($( $method:ident $pattern:literal => $($handler:ident)::+ , $owner:ident, $class:ident
        $(, $undocumented:ident)? ; )*) => {
        /// Registers every route.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $( cfg.route($pattern, web::method(Method::$method).to($($handler)::+)); )*
        }

        /// Every route, as the router serves it.
        pub fn table() -> Vec<Route> {
            vec![$( Route {
                method: stringify!($method),
                pattern: $pattern,
                owner: Owner::$owner,
                class: Class::$class,
                documented: documented!($($undocumented)?),
            }, )*]
        }

        /// The OpenAPI paths (and the schemas they use) of every documented route.
        pub fn documented() -> utoipa::openapi::OpenApi {
            let mut doc = utoipa::openapi::OpenApiBuilder::new().build();
            $( document!(doc, $($handler)::+ $(, $undocumented)?); )*
            doc
        }
    };
}

macro_rules! documented {
    () => {
        true
    };
    (undocumented) => {
        false
    };
}

/// Adds the operation of one handler, from its `#[utoipa::path]`, to `doc`.
macro_rules! document {
    ($doc:ident, $($handler:ident)::+) => {{
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler)::+))]
        struct Operation;
        $doc.merge(<Operation as utoipa::OpenApi>::openapi());
    }};
    ($doc:ident, $($handler:ident)::+, undocumented) => {};
}

routes! {
    GET "/healthz" => health::healthz, Nobody, Probe;
    GET "/readyz" => health::readyz, Nobody, Probe;
    GET "/metrics" => health::metrics, Nobody, Probe;

    GET "/auth/providers" => auth::providers, Nobody, SignIn;
    GET "/auth/login/{provider}" => auth::login_start, Nobody, SignIn;
    GET "/auth/callback/{provider}" => auth::callback, Nobody, SignIn;
    POST "/auth/logout" => auth::logout, Nobody, SignIn;
    GET "/auth/verify-email" => local_accounts::verify_email, Nobody, SignIn;

    GET "/api/v1/openapi.json" => openapi::document, Nobody, Page, undocumented;
    POST "/api/v1/auth/register" => local_accounts::register, Nobody, SignIn;
    POST "/api/v1/auth/login" => local_accounts::login, Nobody, SignIn;
    GET "/api/v1/me" => auth::me, Caller, Api;
    GET "/api/v1/tokens" => account::list_tokens, Caller, Api;
    POST "/api/v1/tokens" => account::create_token, Caller, Api;
    DELETE "/api/v1/tokens/{id}" => account::revoke_token, Token, Api;
    GET "/api/v1/sessions" => account::list_sessions, Caller, Api;
    DELETE "/api/v1/sessions/{id}" => account::revoke_session, Session, Api;
    GET "/api/v1/workspace" => workspace::status, Caller, Api;
    POST "/api/v1/workspace/start" => workspace::start, Caller, Api;
    POST "/api/v1/workspace/stop" => workspace::stop, Caller, Api;
    GET "/api/v1/workspace/events" => workspace::events, Caller, Api;
    GET "/api/v1/workspace/projects" => workspace::projects, Caller, Api;
    GET "/workspace/open" => workspace::open, Caller, Page;

    GET "/api/v1/admin/users" => admin::list_users, Nobody, Api;
    GET "/api/v1/admin/users/{id}" => admin::show_user, User, Api;
    DELETE "/api/v1/admin/users/{id}" => admin::delete_user, User, Api;
    POST "/api/v1/admin/users/{id}/disable" => admin::disable_user, User, Api;
    POST "/api/v1/admin/users/{id}/enable" => admin::enable_user, User, Api;
    PUT "/api/v1/admin/users/{id}/roles/{role}" => admin::grant_role, User, Api;
    DELETE "/api/v1/admin/users/{id}/roles/{role}" => admin::revoke_role, User, Api;
    PUT "/api/v1/admin/users/{id}/access-level" => admin::assign_access_level, User, Api;
    GET "/api/v1/admin/roles" => admin::list_roles, Nobody, Api;
    PUT "/api/v1/admin/roles/{role}" => admin::define_role, Nobody, Api;
    DELETE "/api/v1/admin/roles/{role}" => admin::delete_role, Nobody, Api;
    GET "/api/v1/admin/access-levels" => admin::list_access_levels, Nobody, Api;
    POST "/api/v1/admin/access-levels" => admin::create_access_level, Nobody, Api;
    GET "/api/v1/admin/access-levels/{name}" => admin::show_access_level, Nobody, Api;
    PUT "/api/v1/admin/access-levels/{name}" => admin::update_access_level, Nobody, Api;
    DELETE "/api/v1/admin/access-levels/{name}" => admin::delete_access_level, Nobody, Api;
    GET "/api/v1/admin/audit" => admin::audit_log, Nobody, Api;
    GET "/api/v1/admin/providers" => admin::providers, Nobody, Api;
    GET "/api/v1/admin/fleet" => admin::fleet, Nobody, Api;
    GET "/api/v1/admin/workspaces" => admin_workspaces::list, Nobody, Api;
    POST "/api/v1/admin/workspaces/{id}/stop" => admin_workspaces::stop, User, Api;
    GET "/api/v1/admin/workspaces/{id}/logs" => admin_workspaces::logs, User, Api;
    // Invitations (issue #15): admins make them for invitation-only registration.
    GET "/api/v1/admin/invitations" => invitations::list, Nobody, Api;
    POST "/api/v1/admin/invitations" => invitations::create, Nobody, Api;
    DELETE "/api/v1/admin/invitations/{id}" => invitations::revoke, Nobody, Api;
    POST "/api/v1/admin/workspaces/{id}/move" => admin_workspaces::move_to, User, Api;

    GET "/" => pages::index, Nobody, Page, undocumented;
    GET "/login" => pages::login_page, Nobody, Page, undocumented;
    GET "/dashboard" => pages::dashboard_page, Nobody, Page, undocumented;
    GET "/admin" => pages::admin_page, Nobody, Page, undocumented;
    // The console's sub-pages (issue #14): one page each, the same document showing one part.
    GET "/admin/users" => pages::admin_page, Nobody, Page, undocumented;
    GET "/admin/roles" => pages::admin_page, Nobody, Page, undocumented;
    GET "/admin/access-levels" => pages::admin_page, Nobody, Page, undocumented;
    GET "/admin/workspaces" => pages::admin_page, Nobody, Page, undocumented;
    GET "/admin/audit" => pages::admin_page, Nobody, Page, undocumented;
    GET "/admin/sign-in-methods" => pages::admin_page, Nobody, Page, undocumented;
    GET "/admin/invitations" => pages::admin_page, Nobody, Page, undocumented;
    GET "/api/docs" => pages::docs_page, Nobody, Page, undocumented;
    GET "/static/{name}" => pages::asset, Nobody, Page, undocumented;

    // Pools (issue #13): operators size capacity live.
    GET "/api/v1/pools" => pools::list, Nobody, Api;
    POST "/api/v1/pools" => pools::create, Nobody, Api;
    GET "/api/v1/pools/{name}" => pools::show, Nobody, Api;
    PATCH "/api/v1/pools/{name}" => pools::change, Nobody, Api;
    DELETE "/api/v1/pools/{name}" => pools::delete, Nobody, Api;
    POST "/api/v1/pools/{name}/drain" => pools::drain, Nobody, Api;
    POST "/api/v1/pools/{name}/undrain" => pools::undrain, Nobody, Api;
    GET "/api/v1/pools/{name}/starts" => pools::starts, Nobody, Api;
    GET "/api/v1/pools/{name}/machines" => pools::machines, Nobody, Api;
    GET "/operator" => pages::operator_page, Nobody, Page, undocumented;

    // Published sites (issue #14): the signed-in user's own. The sites themselves are
    // served on their own origins (`web::sites`), never through this table.
    GET "/api/v1/sites" => sites::list, Caller, Api;
    PUT "/api/v1/sites/{name}" => sites::publish, Caller, Api;
    DELETE "/api/v1/sites/{name}" => sites::unpublish, Caller, Api;
    GET "/api/v1/sites/{name}/thumbnail" => sites::thumbnail, Caller, Api;

    // The AI gateway as people see it (tenants call the gateway at its door: gateway::door).
    GET "/api/v1/me/ai-usage" => ai::my_usage, Caller, Api;
    GET "/api/v1/admin/ai/providers" => ai::providers, Nobody, Api;
    GET "/api/v1/admin/ai/usage" => ai::usage, Nobody, Api;
    GET "/admin/ai" => pages::admin_ai_page, Nobody, Page, undocumented;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `(METHOD, path)` of every operation in `doc`.
    fn operations(doc: &utoipa::openapi::OpenApi) -> BTreeSet<(String, String)> {
        let value = serde_json::to_value(doc).expect("the document serializes");
        let mut ops = BTreeSet::new();
        for (path, item) in value["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                if ["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    ops.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        ops
    }

    #[test]
    fn the_document_describes_exactly_the_documented_routes() {
        let routes: BTreeSet<(String, String)> = table()
            .into_iter()
            .filter(|r| r.documented)
            .map(|r| (r.method.to_owned(), r.pattern.to_owned()))
            .collect();
        let documented = operations(&super::super::openapi::build());
        let missing: Vec<_> = routes.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "routes without documentation: {missing:?}; documentation without a route: {extra:?}"
        );
        assert_eq!(
            documented.len(),
            table().iter().filter(|r| r.documented).count()
        );
    }

    #[test]
    fn only_pages_and_the_document_itself_go_undocumented() {
        for route in table().into_iter().filter(|r| !r.documented) {
            assert!(
                route.class == Class::Page && route.method == "GET",
                "{} {} is an API route and must be documented",
                route.method,
                route.pattern
            );
        }
    }
}
