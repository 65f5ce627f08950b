//! A local server speaking GitHub's OAuth and REST wire format (github.com cannot be reached
//! from the test machine): the token endpoint checks the client credentials, the code and
//! the PKCE verifier; `/user` hides the e-mail, `/user/emails` has the primary one.

use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};

use serde_json::json;

use crate::helpers::LocalServer;

pub const CLIENT_ID: &str = "gh-client";
pub const CLIENT_SECRET: &str = "gh-secret";
pub const CODE: &str = "gh-code-123";
const ACCESS_TOKEN: &str = "gho_testtoken";

/// The form bodies the token endpoint received, in order.
type Seen = Mutex<Vec<Vec<(String, String)>>>;

pub struct FakeGithub {
    pub base: String,
    /// Form bodies the token endpoint received.
    pub token_requests: Arc<Seen>,
    _server: LocalServer,
}

impl FakeGithub {
    pub async fn start() -> Self {
        let token_requests = Arc::new(Mutex::new(Vec::new()));
        let data = web::Data::from(token_requests.clone());
        let server = LocalServer::start(move |cfg| {
            cfg.app_data(data.clone())
                .route("/login/oauth/access_token", web::post().to(access_token))
                .route("/api/user", web::get().to(user))
                .route("/api/user/emails", web::get().to(emails));
        });
        FakeGithub {
            base: server.base.clone(),
            token_requests,
            _server: server,
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("WEBSPLAT_GITHUB_CLIENT_ID".into(), CLIENT_ID.into()),
            ("WEBSPLAT_GITHUB_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
            (
                "WEBSPLAT_GITHUB_AUTHORIZE_URL".into(),
                format!("{}/login/oauth/authorize", self.base),
            ),
            (
                "WEBSPLAT_GITHUB_TOKEN_URL".into(),
                format!("{}/login/oauth/access_token", self.base),
            ),
            (
                "WEBSPLAT_GITHUB_API_URL".into(),
                format!("{}/api/", self.base),
            ),
        ]
    }
}

fn authorized(req: &HttpRequest) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(&format!("bearer {ACCESS_TOKEN}")))
}

async fn access_token(
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
    seen: web::Data<Seen>,
) -> HttpResponse {
    let form = form.into_inner();
    seen.lock().expect("seen").push(form.clone());
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // The client authenticates with HTTP Basic (or, as GitHub also accepts, in the form).
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let client_ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(basic.as_str())
        || (field("client_id") == Some(CLIENT_ID) && field("client_secret") == Some(CLIENT_SECRET));
    if !client_ok {
        return HttpResponse::Ok().json(json!({"error": "incorrect_client_credentials"}));
    }
    if field("code") != Some(CODE) || field("code_verifier").is_none_or(|v| v.len() < 43) {
        return HttpResponse::BadRequest().json(json!({"error": "bad_verification_code"}));
    }
    HttpResponse::Ok().json(json!({"access_token": ACCESS_TOKEN, "token_type": "bearer", "scope": "read:user,user:email"}))
}

async fn user(req: HttpRequest) -> HttpResponse {
    if !authorized(&req) {
        return HttpResponse::Unauthorized().json(json!({"message": "Bad credentials"}));
    }
    HttpResponse::Ok()
        .json(json!({"id": 583231, "login": "octocat", "name": "The Octocat", "email": null}))
}

async fn emails(req: HttpRequest) -> HttpResponse {
    if !authorized(&req) {
        return HttpResponse::Unauthorized().json(json!({"message": "Bad credentials"}));
    }
    HttpResponse::Ok().json(json!([
        {"email": "old@example.com", "primary": false, "verified": true},
        {"email": "octocat@example.com", "primary": true, "verified": true},
    ]))
}
