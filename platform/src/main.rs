//! `platform`: the WebSplat control plane. `platform serve` (the default) migrates and
//! serves; `platform migrate` only migrates; `platform admin grant|revoke <user> <role>`
//! changes a user's roles from the server (how the first admin is made), and
//! `platform admin disable|enable|delete <user>` does what the admin API does to an account
//! (and `platform admin invite` makes an invitation);
//! `platform pools …` sizes the pools of workspace capacity.
//! Configuration: defaults, then the TOML file
//! given by `--config` / `WEBSPLAT_CONFIG`, then `WEBSPLAT_*` variables (see the README).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use platform::{Application, Config, db, telemetry};

#[derive(Parser)]
#[command(name = "platform", version, about = "WebSplat Platform control plane")]
struct Cli {
    /// A TOML configuration file; WEBSPLAT_* environment variables override it.
    #[arg(long, env = "WEBSPLAT_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending database migrations, then serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Serve the local model (SmolLM2 chat, MiniLM embeddings) as an OpenAI-compatible
    /// upstream; needs no database (WEBSPLAT_MODELS_LISTEN, WEBSPLAT_MODELS_DIR).
    Models,
    /// Manage roles and accounts from the server's command line (e.g. make the first admin).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Size the pools of workspace capacity (list, show, create, set, drain, undrain, delete).
    Pools {
        #[command(subcommand)]
        command: platform::pools::cli::PoolsCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Give a user a role. <USER> is a user id or an e-mail address.
    Grant { user: String, role: String },
    /// Take a role from a user (the last admin keeps theirs).
    Revoke { user: String, role: String },
    /// Disable an account: its sessions and API tokens end, its workspace stops.
    Disable { user: String },
    /// Enable a disabled account (its old sessions and tokens stay ended).
    Enable { user: String },
    /// Delete an account; its workspace volume stays unless --delete-volume.
    Delete {
        user: String,
        /// Also delete the user's workspace volume (their sites, documents…) — for good.
        #[arg(long)]
        delete_volume: bool,
    },
    /// Make an invitation for invitation-only registration; prints its code and link once.
    Invite {
        /// Only this e-mail address may register with it.
        #[arg(long)]
        email: Option<String>,
        /// Days it lasts (1 to 90, default 14).
        #[arg(long)]
        days: Option<u32>,
        /// A note for the admins (who it is for).
        #[arg(long)]
        note: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Models)) {
        return websplat_models::main_cli();
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("platform: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("platform: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Migrate => {
                let applied = db::migrate(&config.database.url).await?;
                println!(
                    "applied {} migration(s){}",
                    applied.len(),
                    if applied.is_empty() {
                        "; the database is up to date"
                    } else {
                        ""
                    }
                );
                for version in applied {
                    println!("  {version}");
                }
                Ok(())
            }
            Command::Admin { command } => {
                use platform::admin::cli::{AccountChange, change_account, change_role, invite};
                let done = match command {
                    AdminCommand::Grant { user, role } => {
                        change_role(&config, &user, &role, true).await?
                    }
                    AdminCommand::Revoke { user, role } => {
                        change_role(&config, &user, &role, false).await?
                    }
                    AdminCommand::Disable { user } => {
                        change_account(&config, &user, AccountChange::Disable).await?
                    }
                    AdminCommand::Enable { user } => {
                        change_account(&config, &user, AccountChange::Enable).await?
                    }
                    AdminCommand::Delete {
                        user,
                        delete_volume,
                    } => {
                        change_account(&config, &user, AccountChange::Delete { delete_volume })
                            .await?
                    }
                    AdminCommand::Invite { email, days, note } => {
                        invite(&config, email, days, note).await?
                    }
                };
                println!("{done}");
                Ok(())
            }
            Command::Pools { command } => {
                println!("{}", platform::pools::cli::run(&config, command).await?);
                Ok(())
            }
            Command::Models => unreachable!("served above, without the platform's configuration"),
            Command::Serve => {
                let app = Application::build(config).await?;
                app.run_until_stopped().await.map_err(anyhow::Error::from)
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = ?e, "platform stopped with an error");
            eprintln!("platform: {e:#}");
            ExitCode::FAILURE
        }
    }
}
