//! `platform pools …`: the pools from the server's command line, with the same
//! configuration as `serve`, through the same use-cases as `/api/v1/pools` (same checks,
//! same audit records, actor "command line"). Running replicas read pools fresh at every
//! admission, so a change is in force at once.

use clap::{Args, Subcommand};

use crate::audit::Audit;
use crate::config::Config;
use crate::db;

#[derive(Debug, Subcommand)]
pub enum PoolsCommand {
    /// Every pool: its limits, the access levels it serves and what it is doing now.
    List,
    /// One pool.
    Show { name: String },
    /// Create a pool.
    Create {
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Change a pool's settings (only the ones given).
    Set {
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// No new starts in the pool; running workspaces finish.
    Drain { name: String },
    /// Let the pool start workspaces again.
    Undrain { name: String },
    /// Delete a pool nothing runs in (its access levels go back to `default`).
    Delete { name: String },
    /// Move a user's workspace to another machine of its pool's swarm (stop, copy of its
    /// data, new pin), printing each step. <USER> is a user id or an e-mail address;
    /// <NODE> the machine's id or name.
    Move { user: String, node: String },
}

#[derive(Debug, Args)]
pub struct Settings {
    /// Workspaces running, starting or queued at once, at most.
    #[arg(long)]
    pub max_running: Option<i32>,
    /// Workspaces starting at once, at most (more wait in the queue).
    #[arg(long)]
    pub max_starting: Option<i32>,
    /// Starts waiting at most (beyond, a start is refused).
    #[arg(long)]
    pub queue_max: Option<i32>,
    /// Idle timeout override in seconds; 0 removes it.
    #[arg(long)]
    pub idle_timeout_seconds: Option<i32>,
    /// Started, unclaimed runtimes to keep for first sign-ins.
    #[arg(long)]
    pub warm_new: Option<i32>,
    /// Make each returning person's next container as their workspace stops.
    #[arg(long)]
    pub returning_ahead: Option<bool>,
    /// Of those, how many to keep started for people active recently.
    #[arg(long)]
    pub returning_warm: Option<i32>,
    /// How long a returning person's next container waits for them, in seconds.
    #[arg(long)]
    pub returning_ttl_seconds: Option<i32>,
    /// The access levels it serves, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub access_levels: Option<Vec<String>>,
    #[arg(long)]
    pub description: Option<String>,
    /// What runs its workspaces: docker (the platform's own engine) or swarm.
    #[arg(long)]
    pub engine: Option<String>,
    /// A swarm pool's manager API (unix:///path or tcp://host:port); "" removes it.
    #[arg(long)]
    pub endpoint: Option<String>,
}

/// Runs one command; returns what to print (JSON for list and show, a sentence otherwise).
pub async fn run(config: &Config, command: PoolsCommand) -> anyhow::Result<String> {
    db::migrate(&config.database.url).await?;
    let pool = db::pool(&config.database)?;
    let audit = Audit::command_line();
    let text = |e: crate::error::ApiError| anyhow::anyhow!("{e}");
    Ok(match command {
        PoolsCommand::List => {
            let mut conn = pool.get().await?;
            serde_json::to_string_pretty(&super::list(&mut conn).await.map_err(text)?)?
        }
        PoolsCommand::Show { name } => {
            let mut conn = pool.get().await?;
            serde_json::to_string_pretty(&super::show(&mut conn, &name).await.map_err(text)?)?
        }
        PoolsCommand::Create { name, settings } => {
            let (Some(max_running), Some(max_starting)) =
                (settings.max_running, settings.max_starting)
            else {
                anyhow::bail!("a new pool needs --max-running and --max-starting");
            };
            let created = super::create(
                &pool,
                &audit,
                super::NewPool {
                    name,
                    description: settings.description.unwrap_or_default(),
                    access_levels: settings.access_levels.unwrap_or_default(),
                    max_running,
                    max_starting,
                    queue_max: settings.queue_max.unwrap_or_else(super::default_queue_max),
                    idle_timeout_seconds: settings.idle_timeout_seconds.filter(|s| *s != 0),
                    warm_new: settings.warm_new.unwrap_or(0),
                    warm_ttl_seconds: super::default_warm_ttl(),
                    returning_ahead: settings.returning_ahead.unwrap_or(false),
                    returning_warm: settings.returning_warm.unwrap_or(0),
                    returning_ttl_seconds: settings
                        .returning_ttl_seconds
                        .unwrap_or_else(super::default_warm_ttl),
                    engine: settings.engine.unwrap_or_else(super::default_engine),
                    endpoint: settings.endpoint.filter(|e| !e.is_empty()),
                },
            )
            .await
            .map_err(text)?;
            format!("created the pool {}", created.pool.name)
        }
        PoolsCommand::Set { name, settings } => {
            let changed = super::change(
                &pool,
                &audit,
                &name,
                super::PoolChange {
                    description: settings.description,
                    access_levels: settings.access_levels,
                    max_running: settings.max_running,
                    max_starting: settings.max_starting,
                    queue_max: settings.queue_max,
                    idle_timeout_seconds: settings
                        .idle_timeout_seconds
                        .map(|s| (s != 0).then_some(s)),
                    warm_new: settings.warm_new,
                    warm_ttl_seconds: None,
                    returning_ahead: settings.returning_ahead,
                    returning_warm: settings.returning_warm,
                    returning_ttl_seconds: settings.returning_ttl_seconds,
                    engine: settings.engine,
                    endpoint: settings.endpoint.map(|e| (!e.is_empty()).then_some(e)),
                },
            )
            .await
            .map_err(text)?;
            format!("changed the pool {}", changed.pool.name)
        }
        PoolsCommand::Drain { name } => {
            super::set_draining(&pool, &audit, &name, true)
                .await
                .map_err(text)?;
            format!("the pool {name} is draining: no new starts, running workspaces finish")
        }
        PoolsCommand::Undrain { name } => {
            super::set_draining(&pool, &audit, &name, false)
                .await
                .map_err(text)?;
            format!("the pool {name} starts workspaces again")
        }
        PoolsCommand::Delete { name } => {
            super::delete(&pool, &audit, &name).await.map_err(text)?;
            format!("deleted the pool {name}")
        }
        PoolsCommand::Move { user, node } => {
            let user = {
                let mut conn = pool.get().await?;
                crate::admin::cli::resolve_user(&mut conn, &user).await?
            };
            let kv = crate::kv::Kv::new(&config.redis)?;
            let metrics = crate::metrics::Metrics::new()?;
            let tenants = crate::tenants::connect(config, pool.clone(), kv, metrics).await?;
            let moved =
                crate::admin::workspaces::move_to(&pool, &tenants, &audit, user, &node, &|step| {
                    println!("{step}")
                })
                .await
                .map_err(text)?;
            format!("moved: the workspace is on {}", moved.machine.name)
        }
    })
}
