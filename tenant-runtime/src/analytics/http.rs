//! The HTTP side of analytics: the beacon (`/a.gif`), which always answers with the pixel so
//! a page never sees an error, and a project's summary. What a beacon counts as a hit is
//! decided by `analytics` (`Hit::from_beacon`, `record`). The routes are declared in `routes`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{BeaconQuery, Hit, Sender, Source};
use crate::error::ApiError;
use crate::extract::project_id;
use crate::store::Store;

type Data = web::Data<Store>;

/// The analytics beacon. It always answers with the pixel: a page never sees an error.
pub async fn beacon(store: Data, req: HttpRequest, q: web::Query<BeaconQuery>) -> HttpResponse {
    count(&store, &req, q.into_inner()).await
}

/// Records what a beacon reports (when it counts) and answers with the pixel.
pub async fn count(store: &Store, req: &HttpRequest, q: BeaconQuery) -> HttpResponse {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let sender = Sender {
        forwarded_for: header(header::HeaderName::from_static("x-forwarded-for")),
        peer: req.peer_addr().map(|a| a.ip().to_string()),
        user_agent: header(header::USER_AGENT),
    };
    if let Some(hit) = Hit::from_beacon(q, sender)
        && let Err(e) = store.run(move |c| super::record(c, hit)).await
    {
        tracing::warn!(error = %e, "a page view was not recorded");
    }
    HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(super::PIXEL)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    from: Option<String>,
    to: Option<String>,
    source: Option<String>,
}

pub async fn analytics(
    store: Data,
    id: web::Path<String>,
    q: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (from, to) = super::range(q.from.as_deref(), q.to.as_deref())?;
    let source = match q.source.as_deref() {
        None => Source::Site,
        Some(raw) => Source::parse(raw)
            .ok_or_else(|| ApiError::validation("source", "source must be site or preview"))?,
    };
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| super::summary(c, &id, source, from, to))
            .await?,
    ))
}
