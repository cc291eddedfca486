//! `switchboard`: the server binary. Parses the command line, sets up
//! logging, and hands over to the library; nothing else lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use switchboard_server::config::defaults;
use switchboard_server::inflow::Allowance;
use switchboard_server::priority::PriorityRules;
use switchboard_server::store::{self, Durability, Location, PostgresUrl};
use switchboard_server::{Config, ServeOptions, admin};

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
    /// Run the server.
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

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the log says which).
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:7878")]
    listen: String,
    #[command(flatten)]
    db: DbArg,
    /// Longest accepted line in bytes; longer lines get `line_too_long`.
    #[arg(long, env = "SWITCHBOARD_MAX_LINE", default_value_t = defaults::MAX_LINE_BYTES,
          value_parser = clap::value_parser!(u32).range(64..))]
    max_line: u32,
    /// Longest message body in characters; longer bodies get `invalid_body`.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY", default_value_t = defaults::MAX_BODY_CHARS,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_body: u32,
    /// Connections served at once; the next one gets `server_busy`. The
    /// open-file limit is raised to fit, or, at its hard maximum, fewer are served.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Connections one client address may hold at once (0: no limit); the
    /// next from it gets `server_busy`, so one host cannot take every slot.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_ADDRESS",
          default_value_t = defaults::MAX_CONNECTIONS_PER_ADDRESS)]
    max_connections_per_address: u32,
    /// JSON file of priority words, e.g. {"urgent":["outage"],"high":["invoice"],"low":["thanks"]}.
    /// Replaces the default rules.
    #[arg(long, env = "SWITCHBOARD_PRIORITY_RULES")]
    priority_rules: Option<PathBuf>,
    /// Messages per second one connection may send on average (0: no limit).
    #[arg(long, env = "SWITCHBOARD_RATE", default_value_t = defaults::SEND_RATE)]
    rate: f64,
    /// Messages one connection may send in a burst.
    #[arg(long, env = "SWITCHBOARD_BURST", default_value_t = defaults::SEND_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    burst: u32,
    /// Messages a second one user may send, all its connections together
    /// (0: no limit); past it, `send` gets `rate_limited`. Agents are not counted.
    #[arg(long, env = "SWITCHBOARD_USER_RATE", default_value_t = defaults::USER_SEND_RATE)]
    user_rate: f64,
    /// Messages one user may send in a burst, all its connections together.
    #[arg(long, env = "SWITCHBOARD_USER_BURST", default_value_t = defaults::USER_SEND_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    user_burst: u32,
    /// Message body bytes a second one user may send, all its connections
    /// together, in a burst of 4 seconds' worth (0: no limit).
    #[arg(long, env = "SWITCHBOARD_USER_BYTES", default_value_t = defaults::USER_BYTES_PER_SECOND)]
    user_bytes: u32,
    /// Messages a second one client address may send, all its users together
    /// (0: no limit); past it, `send` gets `rate_limited`. Agents are not counted.
    #[arg(long, env = "SWITCHBOARD_ADDRESS_RATE", default_value_t = defaults::ADDRESS_SEND_RATE)]
    address_rate: f64,
    /// Messages one client address may send in a burst, all its users together.
    #[arg(long, env = "SWITCHBOARD_ADDRESS_BURST", default_value_t = defaults::ADDRESS_SEND_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    address_burst: u32,
    /// Message body bytes a second one client address may send, all its users
    /// together, in a burst of 4 seconds' worth (0: no limit).
    #[arg(long, env = "SWITCHBOARD_ADDRESS_BYTES", default_value_t = defaults::ADDRESS_BYTES_PER_SECOND)]
    address_bytes: u32,
    /// Turns every send limit off (per connection, per user, per address),
    /// whatever the flags above say: for load tests, never for customers.
    #[arg(long, env = "SWITCHBOARD_NO_SEND_LIMITS")]
    no_send_limits: bool,
    /// New user names one client address may register a minute, in a burst
    /// of as many (0: no limit); past it, a new name's `hello` gets `rate_limited`.
    #[arg(long, env = "SWITCHBOARD_SIGNUPS_PER_MINUTE", default_value_t = defaults::SIGNUPS_PER_MINUTE)]
    signups_per_minute: u32,
    /// New user names the whole server registers a minute, all addresses
    /// together, in a burst of as many (0: no limit); past it, a new name's
    /// `hello` gets `rate_limited`.
    #[arg(long, env = "SWITCHBOARD_SIGNUPS_PER_MINUTE_TOTAL",
          default_value_t = defaults::SIGNUPS_PER_MINUTE_TOTAL)]
    signups_per_minute_total: u32,
    /// New connections one client address may open a second (0: no limit);
    /// past it (and its burst), a connection gets `server_busy`.
    #[arg(long, env = "SWITCHBOARD_CONNECTIONS_PER_SECOND_PER_ADDRESS",
          default_value_t = defaults::CONNECTIONS_PER_SECOND_PER_ADDRESS)]
    connections_per_second_per_address: u32,
    /// New connections one client address may open at once.
    #[arg(long, env = "SWITCHBOARD_CONNECTION_BURST_PER_ADDRESS",
          default_value_t = defaults::CONNECTION_BURST_PER_ADDRESS,
          value_parser = clap::value_parser!(u32).range(1..))]
    connection_burst_per_address: u32,
    /// Milliseconds a user's last connection may be gone before agents hear
    /// it offline; back within it, agents hear nothing (0: at once).
    #[arg(long, env = "SWITCHBOARD_PRESENCE_GRACE_MS", default_value_t = defaults::PRESENCE_GRACE_MS)]
    presence_grace_ms: u64,
    /// Bytes of long replies (`history` pages, backlogs read in chunks) in
    /// flight at once, server-wide (0: no budget); past it a new long
    /// `history` waits briefly, then gets `rate_limited`.
    #[arg(long, env = "SWITCHBOARD_REPLY_BUDGET", default_value_t = defaults::REPLY_BUDGET_BYTES)]
    reply_budget: u64,
    /// Long replies one user may have in flight at once (0: no limit); the
    /// next long `history` gets `rate_limited`.
    #[arg(long, env = "SWITCHBOARD_REPLIES_PER_USER", default_value_t = defaults::REPLIES_PER_USER)]
    replies_per_user: u32,
    /// Seconds a connection may stay without a successful hello.
    #[arg(long, env = "SWITCHBOARD_HELLO_TIMEOUT", default_value_t = defaults::HELLO_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    hello_timeout: u64,
    /// Seconds a signed-in connection that has not subscribed may go without
    /// a `send` or `release` before it is closed (0: no limit).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT", default_value_t = defaults::IDLE_TIMEOUT_SECS)]
    idle_timeout: u64,
    /// Frames queued for one connection before it is cut off as `slow_consumer`.
    #[arg(long, env = "SWITCHBOARD_OUTBOX_FRAMES", default_value_t = defaults::OUTBOX_FRAMES,
          value_parser = clap::value_parser!(u32).range(1..))]
    outbox_frames: u32,
    /// Bytes of events queued for one connection before it is cut off as
    /// `slow_consumer`. Replies (a whole backlog) are not counted.
    #[arg(long, env = "SWITCHBOARD_OUTBOX_BYTES", default_value_t = defaults::OUTBOX_BYTES,
          value_parser = clap::value_parser!(u64).range(1024..))]
    outbox_bytes: u64,
    /// Connections the kernel may hold completed, waiting for the server to
    /// accept them (0: the system's maximum, net.core.somaxconn on Linux).
    /// When a burst overflows it, clients wait for a greeting that never comes.
    #[arg(long, env = "SWITCHBOARD_LISTEN_BACKLOG", default_value_t = defaults::LISTEN_BACKLOG)]
    listen_backlog: u32,
    /// Seconds sessions get after SIGTERM/SIGINT to send what they owe and
    /// `bye`; connections still busy then (a peer that does not read) are dropped.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE", default_value_t = defaults::SHUTDOWN_GRACE_SECS)]
    shutdown_grace: u64,
    /// Serve TLS with this PEM certificate chain (with --tls-key). Plaintext otherwise.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics (GET /metrics) and a health check (GET
    /// /healthz) over HTTP on this address, e.g. 127.0.0.1:9100; port 0
    /// picks a free port (the log says which). Off unless given. Plain HTTP
    /// without authentication: keep it on a private network.
    #[arg(long, env = "SWITCHBOARD_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// `full`: a commit survives power loss. `normal`: faster; survives a
    /// server crash but not a power cut.
    #[arg(long, env = "SWITCHBOARD_DURABILITY", value_enum, default_value_t = DurabilityArg::Full)]
    durability: DurabilityArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Full,
    Normal,
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent and print its token (only shown once).
    Add {
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
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Give an agent a new token (printed); the old one stops working.
    Rotate {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        Command::Agent(AgentCommand::Add { name, db }) => {
            println!("{}", admin::add_agent(&db.location()?, &name)?.expose());
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
            for (name, held) in admin::list_agents(&db.location()?)? {
                println!("{name}\t{held} conversation(s)");
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
    let rules = match &args.priority_rules {
        Some(path) => PriorityRules::load(path)
            .with_context(|| format!("priority rules {}", path.display()))?,
        None => PriorityRules::default(),
    };
    for (flag, rate) in [
        ("--rate", args.rate),
        ("--user-rate", args.user_rate),
        ("--address-rate", args.address_rate),
    ] {
        if !(rate.is_finite() && rate >= 0.0) {
            anyhow::bail!("{flag} must be a number of messages per second, 0 or more");
        }
    }
    let max_connections = fit_open_files(u64::from(args.max_connections));
    let config = Config {
        max_line_bytes: args.max_line as usize,
        max_body_chars: args.max_body as usize,
        max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
        max_connections_per_address: args.max_connections_per_address as usize,
        send_rate: args.rate,
        send_burst: args.burst,
        per_user: Allowance {
            messages_per_second: args.user_rate,
            message_burst: args.user_burst,
            bytes_per_second: args.user_bytes,
        },
        per_address: Allowance {
            messages_per_second: args.address_rate,
            message_burst: args.address_burst,
            bytes_per_second: args.address_bytes,
        },
        signups_per_minute: args.signups_per_minute,
        signups_per_minute_total: args.signups_per_minute_total,
        connections_per_second_per_address: args.connections_per_second_per_address,
        connection_burst_per_address: args.connection_burst_per_address,
        presence_grace: Duration::from_millis(args.presence_grace_ms),
        hello_timeout: Duration::from_secs(args.hello_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        outbox_frames: args.outbox_frames as usize,
        outbox_bytes: usize::try_from(args.outbox_bytes).unwrap_or(usize::MAX),
        listen_backlog: args.listen_backlog,
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        reply_budget_bytes: usize::try_from(args.reply_budget).unwrap_or(usize::MAX),
        replies_per_user: args.replies_per_user as usize,
    };
    let options = ServeOptions {
        listen: args.listen,
        db: args.db.location()?,
        durability: match args.durability {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Normal => Durability::Normal,
        },
        config: if args.no_send_limits {
            config.without_send_limits()
        } else {
            config
        },
        rules,
        tls: args.tls_cert.zip(args.tls_key),
        metrics_listen: args.metrics_listen,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    Ok(runtime.block_on(switchboard_server::run(options, shutdown_signal()))?)
}

/// Raises the open-file limit for `--max-connections`, or serves fewer
/// connections if it cannot (see [`switchboard_server::open_files`]).
fn fit_open_files(max_connections: u64) -> u64 {
    let fitted = switchboard_server::open_files::fit(max_connections);
    if let Some(from) = fitted.raised_from {
        tracing::info!(from, to = fitted.limit, "raised the open-file limit");
    }
    if fitted.max_connections < max_connections {
        tracing::warn!(
            limit = fitted.limit,
            max_connections = fitted.max_connections,
            asked = max_connections,
            "the open-file limit (ulimit -n) holds fewer connections than --max-connections; \
             the rest get server_busy. Raise the hard limit to serve more"
        );
    }
    fitted.max_connections
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
