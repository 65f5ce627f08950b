//! Every route the platform serves, in one place.

use actix_web::web::{self, delete, get, post};

use crate::{auth::http as auth, health, openapi, web as pages};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", get().to(health::healthz))
        .route("/readyz", get().to(health::readyz))
        .route("/metrics", get().to(health::metrics))
        .service(
            web::scope("/auth")
                .route("/providers", get().to(auth::providers))
                .route("/login/{provider}", get().to(auth::login_start))
                .route("/callback/{provider}", get().to(auth::callback))
                .route("/logout", post().to(auth::logout)),
        )
        .service(
            web::scope("/api/v1")
                .route("/openapi.json", get().to(openapi::document))
                .route("/auth/register", post().to(auth::register))
                .route("/auth/login", post().to(auth::login))
                .route("/me", get().to(auth::me))
                .route("/tokens", get().to(auth::list_tokens))
                .route("/tokens", post().to(auth::create_token))
                .route("/tokens/{id}", delete().to(auth::revoke_token)),
        )
        .route("/", get().to(pages::index))
        .route("/login", get().to(pages::login_page))
        .route("/dashboard", get().to(pages::dashboard_page))
        .route("/api/docs", get().to(pages::docs_page))
        .route("/static/{name}", get().to(pages::asset));
}
