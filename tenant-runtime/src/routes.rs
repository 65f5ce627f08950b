//! Every route the runtime serves, in one table: its method, its path, its handler and its
//! OpenAPI documentation. The same table registers the actix services ([`configure`]) and
//! writes the paths of the OpenAPI document ([`document`]), so a route cannot be served
//! without being documented, nor documented without being served; the tests below check
//! that the router sends every route's method and path to that route (no route shadows
//! another) and that the document lists exactly the table's operations.
//!
//! Order matters where patterns overlap: a route comes before the one it would otherwise be
//! taken for (`/api/v1/jobs/events` before `/api/v1/jobs/{id}`). Every `GET` answers `HEAD`
//! too (headers only); a `STREAM` is a `GET` that does not (server-sent events, the
//! WebSocket). Anything else falls to the 404 of [`not_found`].
//!
//! The handlers live beside their capability's logic (`projects::http`, …); this module
//! holds nothing but the table, the document built from it, and the fallback.

use actix_web::{HttpRequest, HttpResponse, Route as Service, guard, web};
use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, ParameterBuilder};
use utoipa::openapi::path::{ParameterIn, PathItem, PathsBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Required, ResponseBuilder, ResponsesBuilder};

use crate::agents::http as agents;
use crate::analytics::http as analytics;
use crate::chat::http as chat;
use crate::documents::http as documents;
use crate::error::ApiError;
use crate::generation::http as generation;
use crate::jobs::http as jobs;
use crate::notes::http as notes;
use crate::projects::http as projects;
use crate::sites::http as sites;
use crate::uploads::http as uploads;
use crate::{ui, workspace, ws};
use websplat_contract::runtime as contract;

/// How a route is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `GET`, and `HEAD` with the same handler (actix sends no body for `HEAD`).
    Get,
    /// `GET` only: a response that streams (server-sent events, the WebSocket).
    Stream,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    /// An actix route for this verb, its handler still to attach.
    fn route(self) -> Service {
        match self {
            Verb::Get => web::route().guard(guard::Any(guard::Get()).or(guard::Head())),
            Verb::Stream => web::get(),
            Verb::Post => web::post(),
            Verb::Put => web::put(),
            Verb::Patch => web::patch(),
            Verb::Delete => web::delete(),
        }
    }

    /// The method the document lists the route under.
    pub fn method(self) -> HttpMethod {
        match self {
            Verb::Get | Verb::Stream => HttpMethod::Get,
            Verb::Post => HttpMethod::Post,
            Verb::Put => HttpMethod::Put,
            Verb::Patch => HttpMethod::Patch,
            Verb::Delete => HttpMethod::Delete,
        }
    }
}

/// Where a parameter is sent.
#[derive(Debug, Clone, Copy)]
enum Place {
    Path,
    Query,
}

/// The type of a parameter's value.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Integer,
}

/// A parameter of a route, as the document describes it.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    name: &'static str,
    place: Place,
    kind: Kind,
    required: bool,
    description: &'static str,
}

const fn in_path(name: &'static str, kind: Kind, description: &'static str) -> Param {
    Param {
        name,
        place: Place::Path,
        kind,
        required: true,
        description,
    }
}

/// A resource's id (a UUID).
const ID: Param = in_path("id", Kind::Text, "The resource's id");
/// A file of a project.
const FILE: Param = in_path(
    "path",
    Kind::Text,
    "A file path in the project, e.g. index.html",
);
/// A version of a project.
const TOKEN: Param = in_path(
    "token",
    Kind::Text,
    "A preview capability, as GET .../preview-link made it",
);
const VERSION: Param = in_path("number", Kind::Integer, "A version number");
/// A note's id (a positive integer).
const NOTE: Param = in_path("id", Kind::Integer, "The note's id");
/// An asset of the web app.
const ASSET: Param = in_path("name", Kind::Text, "The asset's file name, e.g. app.js");
/// The name a staged upload is kept under.
const UPLOAD_NAME: Param = Param {
    name: "name",
    place: Place::Query,
    kind: Kind::Text,
    required: false,
    description: "A display file name: 1 to 255 characters, no '/', '\\' or control characters, \
                  not '.' or '..'",
};

/// What the document says about a route.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    tag: &'static str,
    summary: &'static str,
    params: &'static [Param],
    /// The status of a success, and what it carries.
    status: u16,
    answer: &'static str,
    /// Whether it lists the error shape (`4XX`).
    errors: bool,
}

/// A route's documentation: what it is, its parameters, its success.
const fn doc(
    tag: &'static str,
    summary: &'static str,
    params: &'static [Param],
    status: u16,
    answer: &'static str,
) -> Doc {
    Doc {
        tag,
        summary,
        params,
        status,
        answer,
        errors: true,
    }
}

impl Doc {
    /// For a route whose answers the error shape does not describe (an upgrade, this document).
    const fn without_errors(self) -> Doc {
        Doc {
            errors: false,
            ..self
        }
    }
}

/// What every error answer looks like.
const ERROR_SHAPE: &str = "The error shape: {\"error\":{\"code\",\"message\",\"request_id\"}}";

/// One route of the table.
#[derive(Clone, Copy)]
pub struct Route {
    pub verb: Verb,
    /// The actix pattern, e.g. `/api/v1/projects/{id}/pages/{path:.+}`.
    pub pattern: &'static str,
    /// The handler's name: the operation's id in the document.
    pub operation_id: &'static str,
    pub doc: Doc,
    /// Attaches the handler to a route of this verb.
    attach: fn(Service) -> Service,
}

impl Route {
    /// The path as the document writes it: `{path:.+}` becomes `{path}`.
    pub fn openapi_path(&self) -> String {
        self.pattern
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.split_once(':')) {
                    Some((name, _)) => format!("{{{name}}}"),
                    None => segment.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("/")
    }

    fn operation(&self) -> Operation {
        let doc = &self.doc;
        let mut responses = ResponsesBuilder::new().response(
            doc.status.to_string(),
            ResponseBuilder::new().description(doc.answer),
        );
        if doc.errors {
            responses = responses.response("4XX", ResponseBuilder::new().description(ERROR_SHAPE));
        }
        let mut operation = OperationBuilder::new()
            .tag(doc.tag)
            .summary(Some(doc.summary))
            .operation_id(Some(self.operation_id))
            .responses(responses);
        for param in doc.params {
            let schema = match param.kind {
                Kind::Text => ObjectBuilder::new().schema_type(Type::String),
                Kind::Integer => ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
            };
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(param.name)
                    .parameter_in(match param.place {
                        Place::Path => ParameterIn::Path,
                        Place::Query => ParameterIn::Query,
                    })
                    .description(Some(param.description))
                    .required(if param.required {
                        Required::True
                    } else {
                        Required::False
                    })
                    .schema(Some(schema)),
            );
        }
        operation.build()
    }
}

macro_rules! verb {
    (GET) => {
        Verb::Get
    };
    (STREAM) => {
        Verb::Stream
    };
    (POST) => {
        Verb::Post
    };
    (PUT) => {
        Verb::Put
    };
    (PATCH) => {
        Verb::Patch
    };
    (DELETE) => {
        Verb::Delete
    };
}

/// The table: `VERB "pattern" => module::handler, doc(…);` for every route, in match order.
/// The paths the platform probes come from the shared contract.
macro_rules! routes {
    ($( $verb:ident $pattern:expr => $module:ident :: $handler:ident, $doc:expr; )*) => {
        /// Every route, in the order the router tries them.
        pub fn table() -> Vec<Route> {
            vec![$( Route {
                verb: verb!($verb),
                pattern: $pattern,
                operation_id: stringify!($handler),
                doc: $doc,
                attach: |route| route.to($module::$handler),
            }, )*]
        }
    };
}

routes! {
    GET "/" => ui::index,
        doc(
            "ui",
            "The workspace's web app: one page; its scripts route by the URL's fragment",
            &[],
            200,
            "text/html",
        );
    GET "/static/{name}" => ui::asset,
        doc(
            "ui",
            "A script, style sheet or icon of the web app (revalidated by ETag: 304 when \
             unchanged)",
            &[ASSET],
            200,
            "The asset",
        );
    GET contract::HEALTH_PATH => workspace::healthz,
        doc("workspace", "The runtime is alive", &[], 200, "Alive");
    GET "/api/v1/openapi.json" => self::openapi,
        doc("workspace", "This document", &[], 200, "OpenAPI 3.1").without_errors();
    GET contract::USAGE_PATH => workspace::usage,
        doc("workspace", "Storage used and allowed", &[], 200, "Usage");
    GET "/api/v1/whoami" => workspace::whoami,
        doc(
            "workspace",
            "The user the platform vouched for (null without a tenant secret) and whether this \
             runtime requires its signature",
            &[],
            200,
            "{user, tenant_secret_required}",
        );
    GET "/api/v1/notes" => notes::list_notes,
        doc(
            "notes",
            "Notes, newest first (?limit= 1 to 100, default 100; ?offset=)",
            &[],
            200,
            "{items: [{id, text, created_at}]}",
        );
    POST "/api/v1/notes" => notes::create_note,
        doc(
            "notes",
            "Write a note ({\"text\"}: 1 to 10000 characters, trimmed)",
            &[],
            201,
            "The note: {id, text, created_at}",
        );
    GET "/api/v1/notes/{id}" => notes::get_note,
        doc("notes", "Show a note", &[NOTE], 200, "The note");
    DELETE "/api/v1/notes/{id}" => notes::delete_note,
        doc("notes", "Delete a note", &[NOTE], 204, "Deleted");
    GET "/api/v1/uploads" => uploads::list_uploads,
        doc(
            "uploads",
            "Staged uploads, newest first",
            &[],
            200,
            "{items: [{id, name, bytes, sha256, content_type, created_at}]}",
        );
    POST "/api/v1/uploads" => uploads::stage_upload,
        doc(
            "uploads",
            "Stage a large file of any type: the raw body is streamed to the workspace volume and \
             hashed (SHA-256); 413, leaving nothing, past the storage quota or the largest upload \
             (WEBSPLAT_RUNTIME_MAX_STAGED_UPLOAD)",
            &[UPLOAD_NAME],
            201,
            "{id, name, bytes, sha256, content_type (as sent, or application/octet-stream), \
             created_at}",
        );
    GET "/api/v1/uploads/{id}" => uploads::get_upload,
        doc(
            "uploads",
            "Download a staged upload (its content type, Content-Length, Content-Disposition: \
             attachment with its name)",
            &[ID],
            200,
            "The file",
        );
    DELETE "/api/v1/uploads/{id}" => uploads::delete_upload,
        doc("uploads", "Delete a staged upload", &[ID], 204, "Deleted");
    GET "/api/v1/projects" => projects::list_projects,
        doc("projects", "List projects (?page=&per_page=)", &[], 200, "A page of projects");
    POST "/api/v1/projects" => projects::create_project,
        doc("projects", "Create a project", &[], 201, "The project");
    GET "/api/v1/projects/{id}" => projects::get_project,
        doc("projects", "Show a project at its current version", &[ID], 200, "The project");
    PATCH "/api/v1/projects/{id}" => projects::update_project,
        doc(
            "projects",
            "Rename or change settings (a settings change is a version)",
            &[ID],
            200,
            "The project",
        );
    DELETE "/api/v1/projects/{id}" => projects::delete_project,
        doc("projects", "Delete a project and its history", &[ID], 204, "Deleted");
    GET "/api/v1/projects/{id}/pages" => projects::list_pages,
        doc("pages", "The pages with their ETags", &[ID], 200, "Pages");
    GET "/api/v1/projects/{id}/pages/{path:.+}" => projects::get_page,
        doc(
            "pages",
            "Read a page (raw, with ETag); the same handler serves assets",
            &[ID, FILE],
            200,
            "The page",
        );
    PUT "/api/v1/projects/{id}/pages/{path:.+}" => projects::put_page,
        doc(
            "pages",
            "Write a page as raw text; If-Match for existing pages (409 with `current` when \
             stale, 428 without)",
            &[ID, FILE],
            200,
            "Saved as a new version (201 when created)",
        );
    DELETE "/api/v1/projects/{id}/pages/{path:.+}" => projects::delete_page,
        doc("pages", "Delete a page (If-Match)", &[ID, FILE], 204, "Deleted (a new version)");
    GET "/api/v1/projects/{id}/assets" => projects::list_assets,
        doc("pages", "Images and fonts with their ETags", &[ID], 200, "Assets");
    GET "/api/v1/projects/{id}/assets/{path:.+}" => projects::get_asset,
        doc("pages", "Read an image or font (raw, with ETag)", &[ID, FILE], 200, "The asset");
    PUT "/api/v1/projects/{id}/assets/{path:.+}" => projects::put_asset,
        doc(
            "pages",
            "Write an image or font (raw bytes, checked by content)",
            &[ID, FILE],
            200,
            "Saved (201 when created)",
        );
    DELETE "/api/v1/projects/{id}/assets/{path:.+}" => projects::delete_asset,
        doc(
            "pages",
            "Delete an image or font (If-Match)",
            &[ID, FILE],
            204,
            "Deleted (a new version)",
        );
    GET "/api/v1/projects/{id}/versions" => projects::versions,
        doc("versions", "History, newest first", &[ID], 200, "History");
    POST "/api/v1/projects/{id}/versions/{number}/restore" => projects::restore,
        doc("versions", "Commit a copy of an old version", &[ID, VERSION], 200, "The project");
    GET "/api/v1/projects/{id}/diff" => projects::diff,
        doc("versions", "Unified diffs between two versions (?from=&to=)", &[ID], 200, "Changes");
    POST "/api/v1/projects/{id}/undo" => projects::undo,
        doc("versions", "Move back to the previous version", &[ID], 200, "The project");
    POST "/api/v1/projects/{id}/redo" => projects::redo,
        doc("versions", "Move forward again", &[ID], 200, "The project");
    GET "/api/v1/projects/{id}/seo" => projects::seo,
        doc("seo", "SEO report with findings and scores (?page=)", &[ID], 200, "The report");
    GET "/api/v1/projects/{id}/sitemap.xml" => projects::sitemap,
        doc("seo", "sitemap.xml from the site URL", &[ID], 200, "XML");
    GET "/api/v1/projects/{id}/robots.txt" => projects::robots,
        doc("seo", "robots.txt", &[ID], 200, "Text");
    GET "/api/v1/projects/{id}/export.zip" => sites::export_zip,
        doc(
            "publishing",
            "The current version as a static-site zip, built in the request (the UI exports \
             through a job: POST .../exports)",
            &[ID],
            200,
            "application/zip",
        );
    GET "/api/v1/projects/{id}/export/markdown.zip" => sites::export_markdown,
        doc(
            "publishing",
            "The pages as Markdown (zip), built in the request (the UI exports through a job: \
             POST .../exports)",
            &[ID],
            200,
            "application/zip",
        );
    POST "/api/v1/projects/{id}/exports" => sites::start_export,
        doc(
            "publishing",
            "Export the current version as a job ({\"format\": \"site\" | \"markdown\"}); the \
             finished job's result names the zip to download (`artifact`)",
            &[ID],
            202,
            "The queued job",
        );
    POST "/api/v1/projects/{id}/publish" => sites::publish,
        doc(
            "publishing",
            "Publish the current version to /sites/{id}/ as a job; its result has the `url`",
            &[ID],
            202,
            "The queued job",
        );
    POST "/api/v1/projects/{id}/generate" => generation::generate,
        doc("generation", "Generate a site from a brief (a job)", &[ID], 202, "The queued job");
    GET "/api/v1/projects/{id}/proposals" => generation::list_proposals,
        doc("generation", "Proposed versions", &[ID], 200, "Proposals");
    GET "/api/v1/projects/{id}/analytics" => analytics::analytics,
        doc("analytics", "Page views by range (?from=&to=&source=)", &[ID], 200, "The summary");
    GET "/api/v1/projects/{id}/sessions" => chat::list_sessions,
        doc("chat", "A project's chat sessions", &[ID], 200, "Sessions");
    POST "/api/v1/projects/{id}/sessions" => chat::create_session,
        doc("chat", "Start a chat session", &[ID], 201, "The session");
    GET "/api/v1/jobs" => jobs::list_jobs,
        doc("jobs", "Recent jobs", &[], 200, "Jobs");
    STREAM "/api/v1/jobs/events" => jobs::all_job_events,
        doc("jobs", "Every job's progress as server-sent events", &[], 200, "text/event-stream");
    GET "/api/v1/jobs/{id}" => jobs::get_job,
        doc(
            "jobs",
            "A job's state, with its steps in order (`steps`: name, label, state, message)",
            &[ID],
            200,
            "The job",
        );
    GET "/api/v1/jobs/{id}/artifact" => jobs::job_artifact,
        doc(
            "jobs",
            "The zip a finished export job made (410 once removed: kept 24 hours, until the next \
             export)",
            &[ID],
            200,
            "application/zip",
        );
    STREAM "/api/v1/jobs/{id}/events" => jobs::job_events,
        doc("jobs", "A job's progress as server-sent events", &[ID], 200, "text/event-stream");
    GET "/api/v1/documents" => documents::list_documents,
        doc(
            "documents",
            "List documents, each with its status (indexing, indexed, failed with `error`)",
            &[],
            200,
            "Documents",
        );
    POST "/api/v1/documents" => documents::upload_documents,
        doc(
            "documents",
            "Upload documents (multipart/form-data): checked and stored at once, indexed by a job",
            &[],
            202,
            "{documents (status indexing), job}: the documents become searchable as the job \
             indexes them",
        );
    GET "/api/v1/documents/search" => documents::search_documents,
        doc("documents", "Search passages (?q=&limit=), highlighted", &[], 200, "Hits");
    POST "/api/v1/documents/query" => documents::query_documents,
        doc("documents", "The best passages for a question, with sources", &[], 200, "Passages");
    GET "/api/v1/documents/{id}" => documents::get_document,
        doc("documents", "Show a document", &[ID], 200, "The document");
    DELETE "/api/v1/documents/{id}" => documents::delete_document,
        doc(
            "documents",
            "Delete a document and its passages (also while it waits to be indexed)",
            &[ID],
            204,
            "Deleted",
        );
    GET "/api/v1/sessions/{id}" => chat::get_session,
        doc("chat", "Show a session", &[ID], 200, "The session");
    PATCH "/api/v1/sessions/{id}" => chat::rename_session,
        doc("chat", "Rename a session", &[ID], 200, "The session");
    DELETE "/api/v1/sessions/{id}" => chat::delete_session,
        doc("chat", "Delete a session", &[ID], 204, "Deleted");
    GET "/api/v1/sessions/{id}/messages" => chat::list_messages,
        doc("chat", "Messages, oldest first (?before=&limit=)", &[ID], 200, "Messages");
    POST "/api/v1/sessions/{id}/messages" => chat::send_message,
        doc(
            "chat",
            "Send a message; the reply streams as server-sent events",
            &[ID],
            200,
            "text/event-stream",
        );
    GET "/api/v1/proposals/{id}" => generation::get_proposal,
        doc(
            "generation",
            "A proposal with the files it proposes (path -> content)",
            &[ID],
            200,
            "The proposal",
        );
    POST "/api/v1/proposals/{id}/accept" => generation::accept_proposal,
        doc(
            "generation",
            "Apply a proposal (?force=true over later edits)",
            &[ID],
            200,
            "The new version",
        );
    POST "/api/v1/proposals/{id}/reject" => generation::reject_proposal,
        doc("generation", "Reject a proposal", &[ID], 200, "Rejected");
    GET "/api/v1/agents" => agents::list_agents,
        doc("agents", "List agents", &[], 200, "A page of agents");
    POST "/api/v1/agents" => agents::create_agent,
        doc("agents", "Create an agent", &[], 201, "The agent");
    GET "/api/v1/agents/{id}" => agents::get_agent,
        doc("agents", "Show an agent", &[ID], 200, "The agent");
    PUT "/api/v1/agents/{id}" => agents::replace_agent,
        doc("agents", "Replace an agent's configuration", &[ID], 200, "The agent");
    DELETE "/api/v1/agents/{id}" => agents::delete_agent,
        doc("agents", "Delete an agent", &[ID], 204, "Deleted");
    GET "/a.gif" => analytics::beacon,
        doc("analytics", "The analytics beacon (always a 1x1 GIF)", &[], 200, "image/gif");
    STREAM "/ws" => ws::connect,
        doc(
            "workspace",
            "WebSocket of live events (job progress); pings every 10 s",
            &[],
            101,
            "Switching protocols",
        ).without_errors();
    GET "/preview/{id}/{path:.*}" => sites::preview,
        doc(
            "publishing",
            "Preview a page of the current version, sandboxed",
            &[ID, FILE],
            200,
            "The file",
        );
    GET "/api/v1/projects/{id}/preview-link" => sites::preview_link,
        doc(
            "publishing",
            "A short-lived, read-only address of the project's preview (?page=path): the \
             page and the files it loads are served under it without the workspace cookie, \
             sandboxed",
            &[ID],
            200,
            "{url, expires_at}",
        );
    GET "/_preview/{token}/{path:.*}" => sites::preview_capability,
        doc(
            "publishing",
            "A file of the project's current version under a preview capability (or its \
             analytics beacon, `.beacon.gif`), sandboxed",
            &[TOKEN, FILE],
            200,
            "The file",
        );
    GET "/sites/{id}/{path:.*}" => sites::site,
        doc("publishing", "A published site, sandboxed", &[ID, FILE], 200, "The file");
}

/// Registers every route, then the 404 for everything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for route in table() {
        cfg.route(route.pattern, (route.attach)(route.verb.route()));
    }
    cfg.default_service(web::to(not_found));
}

/// The document's header: what the API is and who may call it.
#[derive(OpenApi)]
#[openapi(info(
    title = "WebSplat workspace API",
    description = "The API of a user's WebSplat workspace (tenant-runtime). When the runtime has a tenant secret (`WEBSPLAT_TENANT_SECRET`), every request must carry `X-Websplat-Identity: v1;user=<uuid>;ts=<unix seconds>;sig=<hex HMAC-SHA256 of \"v1\\n{user}\\n{ts}\\n{METHOD}\\n{path_and_query}\">`, which the platform adds to the requests it relays; any other request is answered 401."
))]
struct ApiDoc;

/// The runtime's OpenAPI document: its header, and a path for every route of the table.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.paths = table()
        .iter()
        .fold(PathsBuilder::new(), |paths, route| {
            paths.path(
                route.openapi_path(),
                PathItem::new(route.verb.method(), route.operation()),
            )
        })
        .build();
    document
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "there is no {} {} in this workspace",
        req.method(),
        req.path()
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use actix_web::App;
    use actix_web::http::{Method, StatusCode};
    use actix_web::test::{TestRequest, call_service, init_service, read_body};

    use super::*;

    /// A path the pattern matches, each parameter filled with a plausible value.
    fn sample(pattern: &str) -> String {
        pattern
            .split('/')
            .map(|segment| match segment.strip_prefix('{') {
                Some(param) if param.starts_with("path") => "blog/first-post.html".to_owned(),
                Some(param) if param.starts_with("number") => "3".to_owned(),
                Some(param) if param.starts_with("name") => "app.js".to_owned(),
                Some(_) => "0b7f4f5e-8a9c-4d2e-9b1a-3c5d7e9f1a2b".to_owned(),
                None => segment.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn method(verb: Verb) -> Method {
        match verb {
            Verb::Get | Verb::Stream => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }

    /// The table registered as `configure` does, each handler replaced by one that names its
    /// route, so a request shows which route the router chose.
    fn probe(cfg: &mut web::ServiceConfig) {
        for (i, route) in table().into_iter().enumerate() {
            cfg.route(
                route.pattern,
                route
                    .verb
                    .route()
                    .to(move || async move { HttpResponse::Ok().body(i.to_string()) }),
            );
        }
        cfg.default_service(web::to(not_found));
    }

    #[actix_web::test]
    async fn every_route_is_reached_by_its_method_and_path() {
        let app = init_service(App::new().configure(probe)).await;
        for (i, route) in table().into_iter().enumerate() {
            let path = sample(route.pattern);
            let mut methods = vec![method(route.verb)];
            if route.verb == Verb::Get {
                methods.push(Method::HEAD);
            }
            for m in methods {
                let req = TestRequest::default()
                    .method(m.clone())
                    .uri(&path)
                    .to_request();
                let res = call_service(&app, req).await;
                assert_eq!(res.status(), StatusCode::OK, "{m} {path}");
                if m != Method::HEAD {
                    let body = read_body(res).await;
                    assert_eq!(body, i.to_string(), "{m} {path} reached another route");
                }
            }
        }
        for (m, path) in [
            (Method::HEAD, "/ws"),
            (Method::PUT, "/api/v1/notes"),
            (Method::GET, "/api/v1/nothing"),
            (Method::GET, "/api/v1/projects/"),
        ] {
            let req = TestRequest::default()
                .method(m.clone())
                .uri(path)
                .to_request();
            let res = call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{m} {path}");
        }
    }

    #[test]
    fn the_document_lists_exactly_the_served_routes() {
        let served: BTreeSet<(String, String)> = table()
            .iter()
            .map(|r| {
                let m = serde_json::to_value(r.verb.method()).expect("a method");
                let m = m.as_str().expect("a method name").to_owned();
                (r.openapi_path(), m)
            })
            .collect();
        assert_eq!(served.len(), table().len(), "a route is in the table twice");
        let document = serde_json::to_value(document()).expect("the document");
        let documented: BTreeSet<(String, String)> = document["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().expect("a path item").keys();
                methods.map(|m| (path.clone(), m.clone()))
            })
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn every_operation_is_named_once_and_says_what_it_does() {
        let document = serde_json::to_value(document()).expect("the document");
        let mut ids = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (m, operation) in item.as_object().expect("a path item") {
                let id = operation["operationId"].as_str().expect("an id");
                assert!(ids.insert(id.to_owned()), "{id} names two operations");
                assert!(
                    operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{m} {path} has no summary"
                );
                let params: Vec<&str> = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                let in_path: Vec<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                assert_eq!(params, in_path, "{m} {path} documents other parameters");
            }
        }
    }

    #[test]
    fn patterns_are_written_as_the_document_writes_them() {
        let route = table()
            .into_iter()
            .find(|r| r.pattern == "/api/v1/projects/{id}/pages/{path:.+}")
            .expect("the page route");
        assert_eq!(route.openapi_path(), "/api/v1/projects/{id}/pages/{path}");
    }
}
