//! The workspace as a whole: that it is alive, how much storage it uses, and whom the
//! platform vouched for. The routes are declared in `routes`.

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::quota::Quota;
use crate::trust::{Trust, Verified};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

pub async fn usage(quota: web::Data<Quota>) -> HttpResponse {
    HttpResponse::Ok().json(quota.usage())
}

/// The user the platform vouched for (none without a tenant secret), and whether this
/// runtime requires its signature.
pub async fn whoami(req: HttpRequest, trust: web::Data<Trust>) -> HttpResponse {
    let user = req.extensions().get::<Verified>().map(|v| v.user);
    HttpResponse::Ok().json(serde_json::json!({
        "user": user,
        "tenant_secret_required": trust.secret_required(),
    }))
}
