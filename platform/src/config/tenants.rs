//! The tenants' settings: the image, the workspace domain, the engine, how containers are
//! sized and limited, the reverse proxy's limits and the background loops' intervals.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::settings::{ConfigError, Settings, positive};

/// The shortest `WEBSPLAT_TENANT_KEY` taken.
pub const MIN_TENANT_KEY_CHARS: usize = 32;

/// Tenant runtimes: the image, where workspaces are served, how containers are sized and
/// limited, and the reverse proxy's limits. See README.md, "Workspaces".
#[derive(Debug, Clone)]
pub struct TenantsConfig {
    /// What runs the tenant containers (`WEBSPLAT_ORCHESTRATOR`).
    pub orchestrator: OrchestratorKind,
    /// The tenant image (built locally by `docker/build-tenant-image.sh`).
    pub image: String,
    /// Workspaces are served at `{slug}.{workspace_domain}` on the platform's port.
    pub workspace_domain: String,
    /// Names this deployment's containers and volumes (label `websplat.deployment`), so
    /// deployments sharing one Docker Engine never touch each other's.
    pub deployment: String,
    /// The internal bridge network every tenant joins (no internet, no tenant-to-tenant).
    pub network: String,
    /// Start the user's workspace when they sign in.
    pub start_on_sign_in: bool,
    /// How long a new runtime has to answer `/healthz` before it counts as failed.
    pub ready_timeout: Duration,
    /// Running (and starting) tenants at most, over all users.
    pub max_running: u32,
    /// Running tenants at most per access level (`free:20,pro:50`); absent = no own cap.
    pub max_running_per_level: Vec<(String, u32)>,
    /// Spawns in progress at most, over every replica.
    pub max_concurrent_spawns: u32,
    /// Workspace starts (each sign-in starts a fresh container) per user per hour, at most
    /// (`WEBSPLAT_RATE_LIMIT_WORKSPACE_STARTS`).
    pub starts_per_user_per_hour: u32,
    /// Processes (threads) a tenant may have.
    pub pids_limit: i64,
    /// Size of each tenant's `/tmp` (tmpfs), in MiB.
    pub tmp_mib: u32,
    /// Largest request body the proxy passes to a tenant.
    pub proxy_max_body: u64,
    /// How long the proxy waits to connect to a tenant.
    pub proxy_connect_timeout: Duration,
    /// A proxied exchange with no bytes either way for this long is cut.
    pub proxy_idle_timeout: Duration,
    /// A request body must have arrived whole within this, however steadily it trickles
    /// (408 beyond): the idle timeout alone restarts at every chunk.
    pub proxy_body_deadline: Duration,
    /// Requests in progress at once per workspace on one replica (429 beyond); long
    /// downloads and event streams count until they end.
    pub proxy_max_requests_per_workspace: u32,
    /// WebSockets open at once per workspace on one replica (429 beyond).
    pub proxy_max_websockets_per_workspace: u32,
    /// Requests per minute a workspace may take from one replica (a burst of as many).
    pub proxy_requests_per_minute: u32,
    /// Requests per minute one client address may send to workspace origins, signed in or
    /// not (a burst of as many).
    pub proxy_requests_per_minute_per_ip: u32,
    /// How often the reconciler compares Docker with PostgreSQL (also at start-up).
    pub reconcile_interval: Duration,
    /// How often idle workspaces are looked for.
    pub idle_check_interval: Duration,
    /// The key every tenant's secret is derived from (`WEBSPLAT_TENANT_KEY`, at least 32
    /// characters); without one, a key the platform makes and keeps in PostgreSQL.
    pub tenant_key: Option<SecretString>,
}

/// The engine tenant containers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrchestratorKind {
    /// The machine's Docker Engine (the default; what serves users).
    Docker,
    /// An engine inside the platform's process that runs no code of the tenants': for tests
    /// and development only, never for serving users.
    Memory,
}

/// The tag `docker/build-tenant-image.sh` gives the image it builds.
pub const DEFAULT_TENANT_IMAGE: &str =
    concat!("websplat/tenant-runtime:", env!("CARGO_PKG_VERSION"));

pub(super) fn tenants(s: &Settings) -> Result<TenantsConfig, ConfigError> {
    let workspace_domain = s
        .raw("workspace_domain")
        .unwrap_or("ws.localhost")
        .trim_matches('.')
        .to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !workspace_domain.split('.').all(label_ok) {
        return Err(s.invalid(
            "workspace_domain",
            format!(
                "{workspace_domain:?} is not a host name (e.g. ws.localhost or ws.example.com)"
            ),
        ));
    }
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 40
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let deployment = s.raw("deployment").unwrap_or("default").to_owned();
    if !name_ok(&deployment) {
        return Err(s.invalid(
            "deployment",
            "must be 1 to 40 lowercase letters, digits or dashes",
        ));
    }
    let network = s
        .raw("tenant_network")
        .unwrap_or("websplat-tenants")
        .to_owned();
    if !name_ok(&network) {
        return Err(s.invalid(
            "tenant_network",
            "must be 1 to 40 lowercase letters, digits or dashes",
        ));
    }
    let max_running_per_level = s
        .raw("max_running_tenants_per_level")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .split_once(':')
                .and_then(|(level, n)| Some((level.trim().to_owned(), n.trim().parse().ok()?)))
                .filter(|(level, _)| !level.is_empty())
                .ok_or_else(|| {
                    s.invalid(
                        "max_running_tenants_per_level",
                        format!("{entry:?} is not <access level>:<count> (e.g. free:20,pro:50)"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tmp_mib: u32 = positive(s, "tenant_tmp_mib", 64)?;
    let orchestrator = match s.raw("orchestrator").unwrap_or("docker") {
        "docker" => OrchestratorKind::Docker,
        "memory" => OrchestratorKind::Memory,
        other => {
            return Err(s.invalid(
                "orchestrator",
                format!("{other:?} is not docker or memory (memory is for tests and development)"),
            ));
        }
    };
    let tenant_key = s
        .raw("tenant_key")
        .map(|k| SecretString::from(k.to_owned()));
    if tenant_key
        .as_ref()
        .is_some_and(|k| k.expose_secret().chars().count() < MIN_TENANT_KEY_CHARS)
    {
        return Err(s.invalid(
            "tenant_key",
            format!(
                "must be at least {MIN_TENANT_KEY_CHARS} characters (e.g. `head -c 32 /dev/urandom | base64`)"
            ),
        ));
    }
    Ok(TenantsConfig {
        orchestrator,
        image: s
            .raw("tenant_image")
            .unwrap_or(DEFAULT_TENANT_IMAGE)
            .to_owned(),
        workspace_domain,
        deployment,
        network,
        start_on_sign_in: s.bool("workspace_start_on_sign_in", true)?,
        ready_timeout: s.duration("tenant_ready_timeout", Duration::from_secs(30))?,
        max_running: positive(s, "max_running_tenants", 100)?,
        max_running_per_level,
        max_concurrent_spawns: positive(s, "max_concurrent_spawns", 8)?,
        starts_per_user_per_hour: positive(s, "rate_limit_workspace_starts", 30)?,
        pids_limit: positive(s, "tenant_pids_limit", 256)?,
        tmp_mib,
        proxy_max_body: positive(s, "proxy_max_body_bytes", 512 * 1024 * 1024)?,
        proxy_connect_timeout: s.duration("proxy_connect_timeout", Duration::from_secs(5))?,
        proxy_idle_timeout: s.duration("proxy_idle_timeout", Duration::from_secs(120))?,
        proxy_body_deadline: s.duration("proxy_body_deadline", Duration::from_secs(600))?,
        proxy_max_requests_per_workspace: positive(s, "proxy_max_requests_per_workspace", 64)?,
        proxy_max_websockets_per_workspace: positive(s, "proxy_max_websockets_per_workspace", 16)?,
        proxy_requests_per_minute: positive(s, "proxy_requests_per_minute", 6000)?,
        proxy_requests_per_minute_per_ip: positive(s, "proxy_requests_per_minute_per_ip", 12000)?,
        reconcile_interval: s.duration("tenant_reconcile_interval", Duration::from_secs(60))?,
        idle_check_interval: s.duration("tenant_idle_check_interval", Duration::from_secs(30))?,
        tenant_key,
    })
}
