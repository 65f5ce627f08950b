//! `AppState` (everything a handler may need, built once) and `Application` (the HTTP server
//! bound to its listener). The server holds no state another replica would need: sessions,
//! login state and rate limits are in Redis, everything else in PostgreSQL; the enforcer in
//! memory is a cache of the rules in PostgreSQL, reloaded when any replica changes them.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::{Method, header};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;

use super::cookies::CookieNames;
use super::guard::RouteIndex;
use super::{guard, middleware, proxy, routes, sites};
use crate::auth::local::Passwords;
use crate::auth::onboarding::Onboarding;
use crate::auth::providers::Providers;
use crate::auth::session::SessionStore;
use crate::authz::Authz;
use crate::config::Config;
use crate::error::{self, ApiError};
use crate::kv::Kv;
use crate::metrics::Metrics;
use crate::sites::Sites;
use crate::tenants::Tenants;
use crate::{authz, db, tenants};

pub struct AppState {
    pub config: Config,
    pub db: db::Pool,
    pub kv: Kv,
    pub sessions: SessionStore,
    pub providers: Providers,
    pub passwords: Passwords,
    pub cookies: CookieNames,
    pub metrics: Metrics,
    pub authz: Arc<Authz>,
    pub routes: RouteIndex,
    pub onboarding: Onboarding,
    pub tenants: Arc<Tenants>,
    pub gateway: Arc<crate::gateway::Gateway>,
    pub sites: Arc<Sites>,
    pub events: Arc<tenants::events::Events>,
    /// Mail through the configured SMTP server; `None` when none is set.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
}

impl AppState {
    /// Connects, seeds the default policy and loads the enforcer. The database must be
    /// migrated.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let kv = Kv::new(&config.redis)?;
        let db = db::pool(&config.database)?;
        let metrics = Metrics::new()?;
        let authz = Authz::start(&config, db.clone(), kv.clone(), metrics.clone()).await?;
        let onboarding = Onboarding {
            access_level: config.authz.default_access_level.clone(),
            bootstrap_admins: config.authz.bootstrap_admins.clone(),
        };
        let mut conn = db.get().await.context("no PostgreSQL connection")?;
        if authz::access_levels::get(&mut conn, &onboarding.access_level)
            .await?
            .is_none()
        {
            anyhow::bail!(
                "WEBSPLAT_DEFAULT_ACCESS_LEVEL is {:?}, which is not an access level; create it or name an existing one (free, standard and pro come built in)",
                onboarding.access_level
            );
        }
        crate::pools::seed(&mut conn, &config.tenants).await?;
        drop(conn);
        let tenants = tenants::connect(&config, db.clone(), kv.clone(), metrics.clone()).await?;
        let gateway = crate::gateway::Gateway::new(
            config.ai.clone(),
            db.clone(),
            kv.clone(),
            config.redis.url.clone(),
            tenants.clone(),
            &metrics,
        )?;
        let sites = Sites::new(
            config.sites.clone(),
            config.public_url.clone(),
            db.clone(),
            kv.clone(),
            &metrics,
        )?;
        let events = Arc::new(tenants::events::Events::new(
            config.redis.url.clone(),
            tenants.routing.channels(),
        ));
        let sessions = SessionStore::new(kv.clone(), config.session.clone())
            .forgetting_in(tenants.routing.hot());
        let mailer = match &config.smtp {
            Some(smtp) => Some(crate::mail::Mailer::new(smtp, metrics.registry())?),
            None => None,
        };
        Ok(AppState {
            mailer,
            events,
            gateway,
            tenants,
            sites,
            sessions,
            providers: Providers::new(&config)?,
            passwords: Passwords::new()?,
            cookies: CookieNames::for_url(&config.public_url),
            routes: RouteIndex::new(),
            db,
            kv,
            metrics,
            authz,
            onboarding,
            config,
        })
    }
}

pub struct Application {
    server: Server,
    addr: SocketAddr,
    /// The AI gateway's door: a listener of its own, for tenants only.
    door: actix_web::dev::ServerHandle,
    door_addr: SocketAddr,
    watcher: tokio::task::JoinHandle<()>,
    /// Hears route and session changes for the workspace proxy's cache.
    routing_watcher: tokio::task::JoinHandle<()>,
    keeper: tokio::task::JoinHandle<()>,
    state: web::Data<AppState>,
}

impl Application {
    /// Migrates the database, then binds `config.listen`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {} (WEBSPLAT_LISTEN)", config.listen))?;
        Self::with_listener(config, listener).await
    }

    /// Migrates the database, then serves on an already bound listener (tests bind port 0).
    pub async fn with_listener(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let applied = db::migrate(&config.database.url).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied database migrations");
        }
        let state = web::Data::new(AppState::new(config).await?);
        let watcher = state
            .authz
            .spawn_watcher(state.config.authz.policy_reload_interval);
        let routing_watcher = state
            .tenants
            .routing
            .spawn_watcher(state.config.redis.url.clone());
        let keeper = state.tenants.spawn_keeper();
        let addr = listener.local_addr()?;
        let (door, door_addr) = serve_door(&state).await?;
        let app_state = state.clone();
        let limits = proxy::Limits::new(&state.config.tenants);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::Data::new(proxy::Upstream::new(
                    &state.config.tenants,
                    limits.clone(),
                )))
                .app_data(error::json_config())
                .app_data(error::query_config())
                .app_data(error::path_config())
                .configure(routes::configure)
                .default_service(web::to(not_found))
                .wrap(from_fn(guard::guard))
                .wrap(from_fn(middleware::refuse_cross_origin))
                .wrap(
                    DefaultHeaders::new()
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((header::X_FRAME_OPTIONS, "DENY"))
                        .add((header::REFERRER_POLICY, "same-origin")),
                )
                // Workspace origins never reach the platform's routes or headers above.
                .wrap(from_fn(proxy::dispatch))
                // Published sites' origins likewise: served from storage, to anyone.
                .wrap(from_fn(sites::dispatch))
                .wrap(from_fn(middleware::observe))
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
        tracing::info!(%addr, "listening");
        Ok(Application {
            server,
            addr,
            door,
            door_addr,
            watcher,
            routing_watcher,
            keeper,
            state: app_state,
        })
    }

    /// The state handlers see (tests use it to change roles as an admin would).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Where the AI gateway's door listens.
    pub fn door_addr(&self) -> SocketAddr {
        self.door_addr
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.door.stop(true).await;
        // The door has drained: the ledger rows of its last calls are written before exit.
        self.state.gateway.flush().await;
        self.watcher.abort();
        self.routing_watcher.abort();
        self.keeper.abort();
        result
    }
}

/// Connections the door's listener queues before it accepts them.
const DOOR_BACKLOG: u32 = 4096;

/// Binds and starts the AI gateway's door (`WEBSPLAT_GATEWAY_LISTEN`; by default the
/// tenant network's gateway address on `WEBSPLAT_GATEWAY_PORT`, or loopback when tenants
/// run in memory), and tells the tenants where it is.
async fn serve_door(
    state: &web::Data<AppState>,
) -> anyhow::Result<(actix_web::dev::ServerHandle, SocketAddr)> {
    let ai = &state.config.ai;
    let host = match state.tenants.orchestrator.host_address().await {
        Ok(Some(ip)) => ip,
        Ok(None) => std::net::IpAddr::from([127, 0, 0, 1]),
        Err(e) => {
            tracing::error!(error = %e, "cannot find the tenant network's gateway address; the AI gateway's door listens on loopback, out of tenants' reach");
            std::net::IpAddr::from([127, 0, 0, 1])
        }
    };
    if state.config.listen.ip().is_unspecified() && !host.is_loopback() {
        tracing::warn!(
            listen = %state.config.listen,
            "WEBSPLAT_LISTEN is every interface, so tenants can reach the platform's main listener on {host}; listen on a specific address or firewall it (README, \"The AI gateway\")"
        );
    }
    let wanted = ai.listen.unwrap_or(SocketAddr::new(host, ai.port));
    let gateway = web::Data::from(state.gateway.clone());
    let app_state = state.clone();
    // Bound by actix with a listen backlog of its own: the 128 of a plain `TcpListener`
    // would drop the SYNs of a burst of new connections (each retried a second later).
    let server = HttpServer::new(move || {
        // Built on the worker's own thread (see `Gateway::worker_client`).
        let client = crate::gateway::door::WorkerClient(gateway.worker_client());
        App::new()
            .app_data(gateway.clone())
            .app_data(web::Data::new(client))
            .app_data(app_state.clone())
            .configure(crate::gateway::door::configure)
            .wrap(from_fn(middleware::observe))
    })
    .backlog(DOOR_BACKLOG)
    .bind(wanted)
    .with_context(|| {
        format!("the AI gateway's door cannot listen on {wanted} (WEBSPLAT_GATEWAY_LISTEN / WEBSPLAT_GATEWAY_PORT)")
    })?;
    let bound = *server
        .addrs()
        .first()
        .context("the AI gateway's door bound no address")?;
    let reachable = if bound.ip().is_unspecified() {
        SocketAddr::new(host, bound.port())
    } else {
        bound
    };
    let _ = state.tenants.gateway_url.set(format!("http://{reachable}"));
    let server = server.shutdown_timeout(10).run();
    let handle = server.handle();
    tokio::spawn(server);
    tracing::info!(addr = %bound, "the AI gateway's door is listening");
    Ok((handle, bound))
}

/// 404 for an address the platform does not have: a page for a browser, the JSON error
/// for a program.
async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD) && super::pages::wants_html(&req) {
        return Ok(super::pages::not_found_page(&ApiError::NotFound(
            "There is no page at this address. Check the address, or start again from your dashboard.".to_owned(),
        )));
    }
    Err(ApiError::NotFound(format!(
        "there is no {} {} on this platform; see /api/docs",
        req.method(),
        req.path()
    )))
}
