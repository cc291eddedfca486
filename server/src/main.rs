//! `switchboard`: the server binary. Parses the command line, sets up
//! logging, and hands over to the library; nothing else lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use switchboard_server::admin;
use switchboard_server::store::{self, Location, PostgresUrl};

mod serve_args;

use serve_args::ServeArgs;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Customer-service messaging server: customers and agents talk over newline-delimited JSON on TCP",
    long_about = "Customer-service messaging server.\n\n\
        Customers (users) and support agents connect over TCP and speak one JSON object per line \
        (see docs/protocol.md). Every message is stored in SQLite (or PostgreSQL, with --postgres) before anyone is told it was sent.\n\n\
        Quick start:\n  \
        switchboard serve                      # listen on 127.0.0.1:7878, store in ./switchboard.db\n  \
        switchboard agent add alice            # prints alice's token\n  \
        nc 127.0.0.1 7878                      # then type: {\"type\":\"hello\",\"role\":\"user\",\"name\":\"ana\"}\n\n\
        Every flag can also be set with an environment variable, shown as [env: …]."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. What it logs is set by SWITCHBOARD_LOG (default
    /// `info`; e.g. `warn`, or `info,switchboard_server=debug`), on stderr.
    Serve(Box<ServeArgs>),
    /// Provision support agents (works whether or not the server is running).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Move a help desk from its SQLite file into an empty PostgreSQL database.
    ///
    /// Copies users and agents with their tokens, every message with its id
    /// and ts, assignments, the waiting queue and idempotency keys, in one
    /// transaction. Stop the server first; afterwards serve with --postgres
    /// (docs/cluster.md, "Moving from one SQLite node").
    Copy(CopyArgs),
}

#[derive(Args)]
struct CopyArgs {
    /// The SQLite file to copy from; no server may be serving it.
    #[arg(long, env = "SWITCHBOARD_DB", default_value = "switchboard.db")]
    db: PathBuf,
    /// The empty PostgreSQL database to copy into:
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE. Prefer the environment
    /// variable for a password.
    #[arg(long, env = "SWITCHBOARD_POSTGRES", hide_env_values = true)]
    postgres: String,
}

#[derive(Args)]
struct DbArg {
    /// SQLite database file (`serve` and `agent add` create it if missing).
    #[arg(long, env = "SWITCHBOARD_DB", default_value = "switchboard.db")]
    db: PathBuf,
    /// Store in this PostgreSQL database instead of a SQLite file:
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE (an empty database is set
    /// up on first use). Prefer the environment variable for a password.
    #[arg(
        long,
        env = "SWITCHBOARD_POSTGRES",
        conflicts_with = "db",
        hide_env_values = true
    )]
    postgres: Option<String>,
}

impl DbArg {
    /// Where the data is. The URL is parsed here, not by clap, whose error
    /// would quote it, password and all.
    fn location(self) -> anyhow::Result<Location> {
        Ok(match self.postgres {
            Some(url) => Location::Postgres(url.parse::<PostgresUrl>()?),
            None => Location::Sqlite(self.db),
        })
    }
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent and print its token (only shown once).
    Add {
        /// The new agent's name: letters A-Z a-z, digits, '_', '.' and '-'.
        name: String,
        /// A supervisor may release, resolve and transfer any conversation.
        #[arg(long)]
        supervisor: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Make an agent a supervisor: it may release, resolve and transfer any
    /// conversation (from its next request on).
    Promote {
        /// The agent to make a supervisor (see `agent list`).
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Make a supervisor an ordinary agent again.
    Demote {
        /// The supervisor to make an ordinary agent (see `agent list`).
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List agents and how many conversations each holds.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove an agent: its token stops working, its conversations are released.
    Remove {
        /// The agent to remove (see `agent list`).
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Give an agent a new token (printed); the old one stops working.
    Rotate {
        /// The agent to give a new token (see `agent list`).
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

/// The command line, with `[env: NAME]` in the help for every flag rather
/// than `[env: NAME=VALUE]`: the value the environment happens to hold
/// (a database URL's password) stays out of the help, and an unset one
/// does not read as a dangling `=`.
fn parse_cli() -> Cli {
    let mut command = hide_env_values(Cli::command());
    let matches = command.get_matches_mut();
    Cli::from_arg_matches(&matches)
        .map_err(|error| error.format(&mut command))
        .unwrap_or_else(|error| error.exit())
}

fn hide_env_values(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| arg.hide_env_values(true))
        .mut_subcommands(hide_env_values)
}

fn main() -> ExitCode {
    let cli = parse_cli();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Copy(args) => copy(args),
        Command::Agent(AgentCommand::Add {
            name,
            supervisor,
            db,
        }) => {
            let token = admin::add_agent(&db.location()?, &name, supervisor)?;
            println!("{}", token.expose());
            Ok(())
        }
        Command::Agent(AgentCommand::Promote { name, db }) => {
            admin::set_supervisor(&db.location()?, &name, true)?;
            eprintln!(
                "{name} is a supervisor: it may release, resolve and transfer any conversation"
            );
            Ok(())
        }
        Command::Agent(AgentCommand::Demote { name, db }) => {
            admin::set_supervisor(&db.location()?, &name, false)?;
            eprintln!("{name} is an agent, no longer a supervisor");
            Ok(())
        }
        Command::Agent(AgentCommand::Rotate { name, db }) => {
            println!("{}", admin::rotate_agent(&db.location()?, &name)?.expose());
            Ok(())
        }
        Command::Agent(AgentCommand::Remove { name, db }) => {
            admin::remove_agent(&db.location()?, &name)?;
            eprintln!("removed agent {name}");
            Ok(())
        }
        Command::Agent(AgentCommand::List { db }) => {
            let agents = admin::list_agents(&db.location()?)?;
            if agents.is_empty() {
                // On stderr: a script reading the list still reads none.
                eprintln!("no agents yet: add one with `switchboard agent add NAME`");
            }
            for agent in agents {
                let role = if agent.supervisor { "\tsupervisor" } else { "" };
                println!("{}\t{} conversation(s){role}", agent.name, agent.holds);
            }
            Ok(())
        }
    }
}

/// Progress and the summary on stdout; a failure reaches `main`, which
/// prints it on stderr and exits nonzero. The URL is parsed here, not by
/// clap, whose error would quote it, password and all.
fn copy(args: CopyArgs) -> anyhow::Result<()> {
    let url = args.postgres.parse::<PostgresUrl>()?;
    println!("copying {} to {url}", args.db.display());
    let summary = store::copy_to_postgres(&args.db, &url, &mut |progress| println!("{progress}"))?;
    println!("{summary}");
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let options = args.into_options()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    Ok(runtime.block_on(switchboard_server::run(options, shutdown_signal()))?)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown signal received");
}
