//! A route a tenant refused: the runtime at its address answered 401 to a request signed
//! with its secret, and Redis holds that very route. So the address answers for something
//! else now (another container took it) or the route's secret is not the tenant's: either
//! way the workspace cannot be reached through it. The route is dropped (every replica
//! forgets it) and, if its tenant is still counted as ready, that tenant is failed, so the
//! next request starts a new one on the same volume. It must never touch a route that has
//! moved on to another tenant since.

use super::lifecycle::Tenants;
use super::routing::Route;
use super::{Slug, State, store};

impl Tenants {
    #[tracing::instrument(skip_all, fields(tenant = %route.tenant, %slug))]
    pub async fn route_refused(&self, slug: &Slug, route: &Route) {
        tracing::warn!("the workspace's runtime refused its route; replacing the workspace");
        if let Err(e) = self.routing.drop_route(slug, route.tenant).await {
            tracing::warn!(error = %e, "cannot drop a refused route");
        }
        let tenant = match self.db.get().await {
            Ok(mut conn) => store::get(&mut conn, route.tenant).await.ok().flatten(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the tenant of a refused route");
                None
            }
        };
        if let Some(tenant) = tenant.filter(|t| t.state == State::Ready) {
            self.fail(
                &tenant,
                "stale_route",
                "it no longer answered as this workspace (its route was out of date)",
            )
            .await;
        }
    }
}
