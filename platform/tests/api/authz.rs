//! Authorization: the role × route matrix over every route the router serves, and the proof
//! that no route is served without a policy decision.

use platform::web::routes;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, body};

/// The matrix's columns, in the order each row's expectations are written. The member whose
/// token and session the rows act on goes last, so everyone else tries first.
const SUBJECTS: [&str; 7] = [
    "anonymous",
    "another member",
    "operator",
    "auditor",
    "admin",
    "disabled",
    "member",
];

const PUBLIC: [u16; 7] = [200; 7];
const MEMBER: [u16; 7] = [401, 200, 200, 200, 200, 403, 200];
const MEMBER_CREATES: [u16; 7] = [401, 201, 201, 201, 201, 403, 201];
const MEMBERS_OWN: [u16; 7] = [401, 404, 404, 404, 404, 403, 204];
const ADMIN_READ: [u16; 7] = [401, 403, 403, 200, 200, 403, 403];
const OPERATOR_READ: [u16; 7] = [401, 403, 200, 403, 200, 403, 403];
const CONSOLE: [u16; 7] = [303, 403, 200, 200, 200, 403, 403];
const fn admin_only(status: u16) -> [u16; 7] {
    [401, 403, 403, 403, status, 403, 403]
}

struct Row {
    method: Method,
    pattern: &'static str,
    path: String,
    body: Option<Value>,
    expect: [u16; 7],
}

fn row(method: Method, pattern: &'static str, path: impl Into<String>, expect: [u16; 7]) -> Row {
    Row {
        method,
        pattern,
        path: path.into(),
        body: None,
        expect,
    }
}

fn with_body(mut r: Row, body: Value) -> Row {
    r.body = Some(body);
    r
}

fn level(name: Option<&str>) -> Value {
    let mut v = json!({
        "description": "made by the matrix",
        "features": ["sites", "chat"],
        "cpu_millicores": 250, "memory_mib": 256, "storage_mib": 512, "max_upload_mib": 5,
        "ai_tokens_per_day": 1000, "read_requests_per_minute": 100,
        "write_requests_per_minute": 50, "idle_timeout_seconds": 600
    });
    if let Some(name) = name {
        v["name"] = json!(name);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_exactly_what_the_policy_says_on_every_route() {
    // No workspace may run for the free level: starting one is allowed by the policy and
    // then refused for capacity (429), so the matrix starts no container.
    let app = TestApp::spawn_with(vec![(
        "WEBSPLAT_MAX_RUNNING_TENANTS_PER_LEVEL".to_owned(),
        "free:0".to_owned(),
    )])
    .await;
    // One token per subject; `None` is anonymous.
    let (_, member_client, member_token) = app.user_with_role("member@example.com", None).await;
    let (_, _, other) = app.user_with_role("other@example.com", None).await;
    let (_, _, operator) = app
        .user_with_role("operator@example.com", Some("operator"))
        .await;
    let (_, _, auditor) = app
        .user_with_role("auditor@example.com", Some("auditor"))
        .await;
    let (_, _, admin) = app.user_with_role("admin@example.com", Some("admin")).await;
    let (disabled, _, disabled_token) = app.user_with_role("disabled@example.com", None).await;
    let (victim, _, _) = app.user_with_role("victim@example.com", None).await;
    let (doomed, _, _) = app.user_with_role("doomed@example.com", None).await;
    let doomed = doomed["id"].as_str().expect("id").to_owned();
    // Disabled straight in the database, sessions and tokens left alive: the account check
    // alone must refuse them (the admin API also ends them; see admin.rs).
    app.sql(&format!(
        "UPDATE users SET disabled_at = now() WHERE id = '{}'",
        disabled["id"].as_str().expect("id")
    ))
    .await;
    let tokens = [
        None,
        Some(other),
        Some(operator),
        Some(auditor),
        Some(admin.clone()),
        Some(disabled_token),
        Some(member_token.clone()),
    ];

    // What the member-owned rows act on: a second token and a second session of the member.
    let r = member_client
        .post(app.url("/api/v1/tokens"))
        .header("Origin", &app.base)
        .json(&json!({"name": "doomed"}))
        .send()
        .await
        .expect("token");
    let doomed_token = body(r).await["id"].as_str().expect("id").to_owned();
    let second_browser = crate::support::browser_client();
    let r = second_browser
        .post(app.url("/api/v1/auth/login"))
        .header("Origin", &app.base)
        .json(&json!({"email": "member@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let sessions = reqwest::Client::new()
        .get(app.url("/api/v1/sessions"))
        .bearer_auth(&member_token)
        .send()
        .await
        .expect("sessions");
    let sessions = body(sessions).await;
    let doomed_session = sessions["sessions"][0]["id"]
        .as_str()
        .expect("a session")
        .to_owned();

    let v = victim["id"].as_str().expect("id");
    let rows = vec![
        row(Method::GET, "/healthz", "/healthz", PUBLIC),
        row(Method::GET, "/readyz", "/readyz", PUBLIC),
        row(Method::GET, "/metrics", "/metrics", OPERATOR_READ),
        row(Method::GET, "/auth/providers", "/auth/providers", PUBLIC),
        row(
            Method::GET,
            "/auth/login/{provider}",
            "/auth/login/nowhere",
            [404; 7],
        ),
        row(
            Method::GET,
            "/auth/callback/{provider}",
            "/auth/callback/nowhere",
            [404; 7],
        ),
        row(
            Method::GET,
            "/api/v1/openapi.json",
            "/api/v1/openapi.json",
            PUBLIC,
        ),
        // The body is made per cell (a new address each time); see below.
        row(
            Method::POST,
            "/api/v1/auth/register",
            "/api/v1/auth/register",
            [202; 7],
        ),
        // A link that confirms nothing leads back to the sign-in page, in words.
        row(
            Method::GET,
            "/auth/verify-email",
            "/auth/verify-email?token=nothing",
            [303; 7],
        ),
        with_body(
            row(
                Method::POST,
                "/api/v1/auth/login",
                "/api/v1/auth/login",
                [401; 7],
            ),
            json!({"email": "member@example.com", "password": "not the password at all"}),
        ),
        row(Method::GET, "/api/v1/me", "/api/v1/me", MEMBER),
        row(Method::GET, "/api/v1/tokens", "/api/v1/tokens", MEMBER),
        with_body(
            row(
                Method::POST,
                "/api/v1/tokens",
                "/api/v1/tokens",
                MEMBER_CREATES,
            ),
            json!({"name": "matrix"}),
        ),
        row(
            Method::DELETE,
            "/api/v1/tokens/{id}",
            format!("/api/v1/tokens/{doomed_token}"),
            MEMBERS_OWN,
        ),
        row(Method::GET, "/api/v1/sessions", "/api/v1/sessions", MEMBER),
        row(
            Method::GET,
            "/api/v1/workspace",
            "/api/v1/workspace",
            MEMBER,
        ),
        row(
            Method::POST,
            "/api/v1/workspace/start",
            "/api/v1/workspace/start",
            [401, 429, 429, 429, 429, 403, 429],
        ),
        row(
            Method::POST,
            "/api/v1/workspace/stop",
            "/api/v1/workspace/stop",
            [401, 202, 202, 202, 202, 403, 202],
        ),
        row(
            Method::GET,
            "/api/v1/workspace/events",
            "/api/v1/workspace/events",
            MEMBER,
        ),
        row(
            Method::GET,
            "/api/v1/workspace/projects",
            "/api/v1/workspace/projects",
            MEMBER,
        ),
        // Published sites (issue #14): each member's own. Publishing needs the running
        // workspace (none runs here: 409); taking down a site one does not have is 404.
        row(Method::GET, "/api/v1/sites", "/api/v1/sites", MEMBER),
        with_body(
            row(
                Method::PUT,
                "/api/v1/sites/{name}",
                "/api/v1/sites/matrix-site",
                [401, 409, 409, 409, 409, 403, 409],
            ),
            json!({ "project": "00000000-0000-4000-8000-000000000000" }),
        ),
        row(
            Method::DELETE,
            "/api/v1/sites/{name}",
            "/api/v1/sites/matrix-site",
            [401, 404, 404, 404, 404, 403, 404],
        ),
        row(
            Method::GET,
            "/api/v1/sites/{name}/thumbnail",
            "/api/v1/sites/matrix-site/thumbnail",
            [401, 404, 404, 404, 404, 403, 404],
        ),
        // A browser session's: with an API token it is refused in words (400).
        row(
            Method::GET,
            "/workspace/open",
            "/workspace/open",
            [303, 400, 400, 400, 400, 403, 400],
        ),
        row(
            Method::DELETE,
            "/api/v1/sessions/{id}",
            format!("/api/v1/sessions/{doomed_session}"),
            MEMBERS_OWN,
        ),
        row(
            Method::GET,
            "/api/v1/admin/users",
            "/api/v1/admin/users?q=example",
            ADMIN_READ,
        ),
        row(
            Method::GET,
            "/api/v1/admin/users/{id}",
            format!("/api/v1/admin/users/{v}"),
            ADMIN_READ,
        ),
        row(
            Method::POST,
            "/api/v1/admin/users/{id}/disable",
            format!("/api/v1/admin/users/{v}/disable"),
            admin_only(200),
        ),
        row(
            Method::POST,
            "/api/v1/admin/users/{id}/enable",
            format!("/api/v1/admin/users/{v}/enable"),
            admin_only(204),
        ),
        row(
            Method::PUT,
            "/api/v1/admin/users/{id}/roles/{role}",
            format!("/api/v1/admin/users/{v}/roles/auditor"),
            admin_only(204),
        ),
        row(
            Method::DELETE,
            "/api/v1/admin/users/{id}/roles/{role}",
            format!("/api/v1/admin/users/{v}/roles/auditor"),
            admin_only(204),
        ),
        with_body(
            row(
                Method::PUT,
                "/api/v1/admin/users/{id}/access-level",
                format!("/api/v1/admin/users/{v}/access-level"),
                admin_only(204),
            ),
            json!({"access_level": "pro"}),
        ),
        row(
            Method::GET,
            "/api/v1/admin/roles",
            "/api/v1/admin/roles",
            ADMIN_READ,
        ),
        with_body(
            row(
                Method::PUT,
                "/api/v1/admin/roles/{role}",
                "/api/v1/admin/roles/matrix",
                admin_only(201),
            ),
            json!({"description": "from the matrix", "permissions": [{"object": "/api/v1/admin/fleet", "action": "GET", "scope": "any"}]}),
        ),
        row(
            Method::DELETE,
            "/api/v1/admin/roles/{role}",
            "/api/v1/admin/roles/matrix",
            admin_only(204),
        ),
        row(
            Method::GET,
            "/api/v1/admin/access-levels",
            "/api/v1/admin/access-levels",
            ADMIN_READ,
        ),
        with_body(
            row(
                Method::POST,
                "/api/v1/admin/access-levels",
                "/api/v1/admin/access-levels",
                admin_only(201),
            ),
            level(Some("matrix")),
        ),
        row(
            Method::GET,
            "/api/v1/admin/access-levels/{name}",
            "/api/v1/admin/access-levels/matrix",
            ADMIN_READ,
        ),
        with_body(
            row(
                Method::PUT,
                "/api/v1/admin/access-levels/{name}",
                "/api/v1/admin/access-levels/matrix",
                admin_only(200),
            ),
            level(None),
        ),
        row(
            Method::DELETE,
            "/api/v1/admin/access-levels/{name}",
            "/api/v1/admin/access-levels/matrix",
            admin_only(204),
        ),
        row(
            Method::GET,
            "/api/v1/admin/audit",
            "/api/v1/admin/audit?limit=5",
            ADMIN_READ,
        ),
        row(
            Method::GET,
            "/api/v1/admin/providers",
            "/api/v1/admin/providers",
            admin_only(200),
        ),
        row(
            Method::GET,
            "/api/v1/admin/fleet",
            "/api/v1/admin/fleet",
            OPERATOR_READ,
        ),
        // The console's Workspaces page: operators and admins (nobody here has a workspace
        // that runs, so stopping and reading logs find nothing).
        row(
            Method::GET,
            "/api/v1/admin/workspaces",
            "/api/v1/admin/workspaces",
            OPERATOR_READ,
        ),
        row(
            Method::POST,
            "/api/v1/admin/workspaces/{id}/stop",
            format!("/api/v1/admin/workspaces/{doomed}/stop"),
            [401, 403, 404, 403, 404, 403, 403],
        ),
        row(
            Method::GET,
            "/api/v1/admin/workspaces/{id}/logs",
            format!("/api/v1/admin/workspaces/{doomed}/logs"),
            [401, 403, 404, 403, 404, 403, 403],
        ),
        with_body(
            row(
                Method::POST,
                "/api/v1/admin/workspaces/{id}/move",
                format!("/api/v1/admin/workspaces/{doomed}/move"),
                [401, 403, 404, 403, 404, 403, 403],
            ),
            json!({"node": "node-2"}),
        ),
        row(
            Method::DELETE,
            "/api/v1/admin/users/{id}",
            format!("/api/v1/admin/users/{doomed}"),
            admin_only(200),
        ),
        // Invitations (issue #15): admins only.
        row(
            Method::GET,
            "/api/v1/admin/invitations",
            "/api/v1/admin/invitations",
            admin_only(200),
        ),
        with_body(
            row(
                Method::POST,
                "/api/v1/admin/invitations",
                "/api/v1/admin/invitations",
                admin_only(201),
            ),
            json!({"note": "matrix"}),
        ),
        row(
            Method::DELETE,
            "/api/v1/admin/invitations/{id}",
            format!("/api/v1/admin/invitations/{}", uuid::Uuid::new_v4()),
            admin_only(404),
        ),
        // Pools: operators and admins (the operator creates the pool, so the admin's
        // second create conflicts and the admin's delete finds it gone).
        row(Method::GET, "/api/v1/pools", "/api/v1/pools", OPERATOR_READ),
        with_body(
            row(
                Method::POST,
                "/api/v1/pools",
                "/api/v1/pools",
                [401, 403, 201, 403, 409, 403, 403],
            ),
            json!({"name": "matrix", "max_running": 5, "max_starting": 1}),
        ),
        row(
            Method::GET,
            "/api/v1/pools/{name}",
            "/api/v1/pools/matrix",
            OPERATOR_READ,
        ),
        with_body(
            row(
                Method::PATCH,
                "/api/v1/pools/{name}",
                "/api/v1/pools/matrix",
                OPERATOR_READ,
            ),
            json!({"max_running": 6}),
        ),
        row(
            Method::POST,
            "/api/v1/pools/{name}/drain",
            "/api/v1/pools/matrix/drain",
            OPERATOR_READ,
        ),
        row(
            Method::POST,
            "/api/v1/pools/{name}/undrain",
            "/api/v1/pools/matrix/undrain",
            OPERATOR_READ,
        ),
        row(
            Method::GET,
            "/api/v1/pools/{name}/starts",
            "/api/v1/pools/matrix/starts",
            OPERATOR_READ,
        ),
        row(
            Method::GET,
            "/api/v1/pools/{name}/machines",
            "/api/v1/pools/matrix/machines",
            OPERATOR_READ,
        ),
        row(
            Method::DELETE,
            "/api/v1/pools/{name}",
            "/api/v1/pools/matrix",
            [401, 403, 204, 403, 404, 403, 403],
        ),
        row(
            Method::GET,
            "/operator",
            "/operator",
            [303, 403, 200, 403, 200, 403, 403],
        ),
        row(Method::GET, "/", "/", [302; 7]),
        row(Method::GET, "/login", "/login", PUBLIC),
        row(Method::GET, "/dashboard", "/dashboard", PUBLIC),
        row(Method::GET, "/admin", "/admin", CONSOLE),
        row(Method::GET, "/admin/users", "/admin/users", CONSOLE),
        row(Method::GET, "/admin/roles", "/admin/roles", CONSOLE),
        row(
            Method::GET,
            "/admin/access-levels",
            "/admin/access-levels",
            CONSOLE,
        ),
        row(
            Method::GET,
            "/admin/workspaces",
            "/admin/workspaces",
            CONSOLE,
        ),
        row(Method::GET, "/admin/audit", "/admin/audit", CONSOLE),
        row(
            Method::GET,
            "/admin/sign-in-methods",
            "/admin/sign-in-methods",
            CONSOLE,
        ),
        row(
            Method::GET,
            "/admin/invitations",
            "/admin/invitations",
            CONSOLE,
        ),
        row(Method::GET, "/api/docs", "/api/docs", PUBLIC),
        row(Method::GET, "/static/{name}", "/static/app.css", PUBLIC),
        // The AI gateway as people see it.
        row(
            Method::GET,
            "/api/v1/me/ai-usage",
            "/api/v1/me/ai-usage",
            MEMBER,
        ),
        row(
            Method::GET,
            "/api/v1/admin/ai/providers",
            "/api/v1/admin/ai/providers",
            [401, 403, 200, 200, 200, 403, 403],
        ),
        row(
            Method::GET,
            "/api/v1/admin/ai/usage",
            "/api/v1/admin/ai/usage",
            ADMIN_READ,
        ),
        row(Method::GET, "/admin/ai", "/admin/ai", CONSOLE),
        // Last: with a token and no cookie, signing out ends nothing.
        row(Method::POST, "/auth/logout", "/auth/logout", [204; 7]),
    ];

    // The table above covers every route the router serves, and nothing else.
    let served: Vec<(String, &str)> = routes::table()
        .iter()
        .map(|r| (r.method.to_owned(), r.pattern))
        .collect();
    let covered: Vec<(String, &str)> = rows
        .iter()
        .map(|r| (r.method.to_string(), r.pattern))
        .collect();
    for route in &served {
        assert!(
            covered.contains(route),
            "the matrix has no row for {route:?}: add one"
        );
    }
    for route in &covered {
        assert!(
            served.contains(route),
            "the matrix row {route:?} is not a route"
        );
    }

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut failures = Vec::new();
    let mut fresh = 0;
    for r in &rows {
        for (i, token) in tokens.iter().enumerate() {
            let mut request = client
                .request(r.method.clone(), app.url(&r.path))
                .header("Origin", &app.base);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let body = if r.pattern == "/api/v1/auth/register" {
                fresh += 1;
                Some(json!({"email": format!("fresh{fresh}@example.com"), "password": PASSWORD}))
            } else {
                r.body.clone()
            };
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            if status != r.expect[i] {
                let text = response.text().await.unwrap_or_default();
                failures.push(format!(
                    "{} {} as {}: expected {}, got {status}: {text}",
                    r.method, r.path, SUBJECTS[i], r.expect[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Every route went through the enforcer: each has decisions counted under its pattern.
    let metrics = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics");
    for (method, pattern) in &served {
        let label = format!(
            r#"websplat_authz_decisions_total{{decision="allow",method="{method}",route="{pattern}"}}"#
        );
        let denied = format!(
            r#"websplat_authz_decisions_total{{decision="deny",method="{method}",route="{pattern}"}}"#
        );
        assert!(
            metrics.contains(&label) || metrics.contains(&denied),
            "{method} {pattern} was served without a policy decision"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_or_method_reaches_no_handler() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/v1/admin/no-such-thing").await;
    assert_eq!(r.status(), 404);
    let r = app
        .client
        .put(app.url("/api/v1/me"))
        .header("Origin", &app.base)
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 404, "PUT /api/v1/me is no route");
}
