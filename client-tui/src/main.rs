//! `switchboard-tui user NAME` / `switchboard-tui agent NAME --token T`: the
//! CLI, signing in (before the alternate screen, so errors print plainly),
//! then wiring the network task, the terminal and the event loop
//! (`switchboard_tui::run`) together. Everything else is in the library; see
//! its crate documentation for where each kind of change goes.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use crossterm::event::EventStream;
use switchboard_protocol::{Name, ServerListError, Timestamp, Token, parse_server_list};
use switchboard_tui::app::{App, Connection, Mode};
use switchboard_tui::net::{self, ConnectError, Identity};
use switchboard_tui::{config, run, terminal};
use tokio::sync::mpsc;

/// Frames the app may queue in the channel to the network task; more wait
/// in the event loop's `Outbox`, in order.
const OUTGOING_FRAMES: usize = 256;
/// Events the network task may queue for the app before it stops reading.
const INCOMING_EVENTS: usize = 1024;
/// How long quitting waits for the `bye` to go out.
const BYE_TIMEOUT: Duration = Duration::from_millis(500);

const DEFAULT_SERVER: &str = "127.0.0.1:7878";

#[derive(Parser)]
#[command(
    name = "switchboard-tui",
    version,
    about = "Terminal client for switchboard"
)]
// Every flag's help says `[env: NAME]`, never `NAME=VALUE`
// (`hide_env_values`): an unset variable reads as a dangling `=`.
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Talk to support as customer NAME (registered on first run; the token is
    /// kept in $XDG_CONFIG_HOME/switchboard/).
    User {
        /// Your name: registered the first time, yours from then on.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
        /// Sign in with this token instead of the stored one.
        #[arg(long)]
        token: Option<String>,
    },
    /// Answer customers as agent NAME (provisioned with `switchboard agent add`).
    Agent {
        /// Your agent name, as `switchboard agent add` was given it.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
        /// The token `switchboard agent add NAME` printed (required; better
        /// in the environment than on the command line, where `ps` shows it).
        #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// No terminal bell and no count in the window title when a new
        /// customer starts waiting or an urgent message comes.
        #[arg(long, env = "SWITCHBOARD_NO_ALERTS", hide_env_values = true)]
        no_alerts: bool,
    },
}

/// How to reach the server, the same for both modes.
#[derive(clap::Args)]
struct ServerArgs {
    /// host:port of the switchboard server; for a help desk of several
    /// nodes, each of them, separated by commas (a:7878,b:7878,c:7878): the
    /// client signs in on one that answers (from a node picked at random,
    /// so clients spread; see --in-order) and, when it loses one, moves to
    /// the next. Every address must be a node of the same help desk.
    #[arg(long, env = "SWITCHBOARD_SERVER", hide_env_values = true, default_value = DEFAULT_SERVER,
          value_parser = ServerList::parse)]
    server: ServerList,
    /// Sign in on the first listed node that answers, not from a random
    /// one: for a list in order of preference.
    #[arg(long, env = "SWITCHBOARD_IN_ORDER", hide_env_values = true)]
    in_order: bool,
    /// Speak TLS (the server runs with --tls-cert/--tls-key).
    #[arg(long, env = "SWITCHBOARD_TLS", hide_env_values = true)]
    tls: bool,
    /// With --tls: trust the PEM certificates in FILE (e.g. a self-signed
    /// server's own) instead of the public certificate authorities.
    #[arg(long, env = "SWITCHBOARD_CA", hide_env_values = true, requires = "tls")]
    ca: Option<std::path::PathBuf>,
}

/// `--server`'s addresses, checked when the command line is read: at least
/// one, each `host:port`, none empty or twice.
#[derive(Debug, Clone)]
struct ServerList(Vec<String>);

impl ServerList {
    fn parse(text: &str) -> Result<Self, ServerListError> {
        parse_server_list(text).map(ServerList)
    }
}

impl ServerArgs {
    /// Every node, reached the same way (TLS with the same roots, or not).
    fn nodes(&self) -> Result<net::Nodes, ConnectError> {
        let addrs = &self.server.0;
        let first = addrs.first().cloned().unwrap_or_default();
        let how = if self.tls {
            net::Endpoint::tls(first, self.ca.as_deref())?
        } else {
            net::Endpoint::plain(first)
        };
        let endpoints = addrs.iter().map(|addr| how.at(addr.as_str())).collect();
        let nodes = net::Nodes::new(endpoints)
            .ok_or_else(|| ConnectError::Protocol("no server address given".into()))?;
        // Any node will do; without randomness, the listed order.
        let start = if self.in_order {
            0
        } else {
            usize::try_from(getrandom::u64().unwrap_or(0)).unwrap_or(0)
        };
        Ok(nodes.starting_at(start))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run_cli(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-tui: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_cli(cli: Cli) -> anyhow::Result<()> {
    let (mode, name, server_args, token, token_files, alerts) = match cli.command {
        Command::User {
            name,
            server,
            token,
        } => {
            // Given on the command line, the token is not read from nor
            // written to any file.
            let stored = match (&token, config::config_dir()) {
                (None, Some(dir)) => {
                    let paths = config::token_paths(&dir, &token_keys(&server.server.0), &name);
                    config::load_token_from(&paths)
                        .with_context(|| format!("reading the token in {}", describe(&paths)))?
                }
                _ => None,
            };
            let (stored, files) = match stored {
                Some(stored) => (Some(stored.token), stored.files),
                None => (None, Vec::new()),
            };
            (
                Mode::User,
                name,
                server,
                token.or(stored).map(Token::new),
                files,
                false,
            )
        }
        Command::Agent {
            name,
            server,
            token,
            no_alerts,
        } => {
            // Optional to clap so that its absence is explained here.
            let token = token.ok_or_else(|| {
                anyhow::anyhow!(
                    "no token for agent {name}: set SWITCHBOARD_TOKEN to the token \
                     `switchboard agent add {name}` printed (or pass --token; \
                     `switchboard agent rotate {name}` makes a new one)"
                )
            })?;
            (
                Mode::Agent,
                name,
                server,
                Some(Token::new(token)),
                Vec::new(),
                !no_alerts,
            )
        }
    };
    let name = Name::parse(&name).with_context(|| format!("{name:?} is not a valid name"))?;
    let mut nodes = server_args.nodes()?;
    let servers = server_args.server.0;
    let identity = Identity {
        role: mode.role(),
        name: name.clone(),
        token,
    };

    // Sign in while still on the normal screen, so that errors read plainly.
    // A swamped server can leave a connection silent: say so while trying again.
    let retrying = |retrying: &net::Retrying<'_>| eprintln!("switchboard-tui: {retrying}");
    let (conn, welcome) = match net::connect_retrying(&mut nodes, &identity, retrying).await {
        Ok(ok) => ok,
        Err(e @ ConnectError::Refused { .. }) if !token_files.is_empty() => {
            let (saved, that) = if token_files.len() == 1 {
                ("the token saved in", "that file")
            } else {
                ("the token saved in each of", "those files")
            };
            anyhow::bail!(
                "{e}\n{saved} {} was not accepted; if the server's data was reset, delete \
                 {that} to register {name} again",
                describe(&token_files)
            );
        }
        Err(e) => return Err(e.into()),
    };
    let mut identity = identity;
    if let Some(token) = &welcome.token {
        identity.token = Some(token.clone());
        match config::config_dir() {
            // Under every address: the help desk is the same on each node.
            Some(dir) => {
                for path in config::token_paths(&dir, &token_keys(&servers), name.as_str()) {
                    config::save_token(&path, token.expose())
                        .with_context(|| format!("saving the new token to {}", path.display()))?;
                }
            }
            None => eprintln!(
                "switchboard-tui: no config directory (set XDG_CONFIG_HOME or HOME); \
                 the token will not be kept"
            ),
        }
    }

    let (to_net, outgoing) = mpsc::channel(OUTGOING_FRAMES);
    let (events_tx, events) = mpsc::channel(INCOMING_EVENTS);
    let on = nodes.current().addr.clone();
    let net = tokio::spawn(net::run(
        nodes,
        identity,
        (conn, welcome),
        outgoing,
        events_tx,
        net::Heartbeat::default(),
    ));

    let mut app = App::new(mode, name, on, key_prefix(), Timestamp::now());
    app.alerts = alerts;
    let (mut tui, guard) = terminal::enter().context("setting up the terminal")?;
    let result = run::event_loop(&mut tui, app, EventStream::new(), events, to_net).await;
    drop(guard);
    // The sender is gone: the network task says bye and ends.
    let _ = tokio::time::timeout(BYE_TIMEOUT, net).await;
    match result?.connection {
        // Refused while running (a token rotated or removed): the shell and
        // any script see the failure, with what was on the screen.
        Connection::Failed(reason) => anyhow::bail!("{reason}"),
        _ => Ok(()),
    }
}

/// What a user's token files are named by: each address as typed, then
/// each `ip:port` it resolves to, so that `localhost:7878` and
/// `127.0.0.1:7878` find the same token (first-hour findings: a customer
/// who spelled the server differently was locked out of its own name). An
/// address that does not resolve is kept as typed.
fn token_keys(servers: &[String]) -> Vec<String> {
    use std::net::ToSocketAddrs;
    let mut keys: Vec<String> = servers.to_vec();
    for server in servers {
        for resolved in server.to_socket_addrs().into_iter().flatten() {
            let key = resolved.to_string();
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// `a`, or `a, b and c`: files named in a message.
fn describe(paths: &[std::path::PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// A random prefix that makes this run's idempotency keys unique.
fn key_prefix() -> String {
    let mut bytes = [0u8; 12];
    match getrandom::fill(&mut bytes) {
        Ok(()) => hex::encode(bytes),
        // Still unique enough per run: the clock in microseconds.
        Err(_) => format!("t{}", Timestamp::now().as_micros()),
    }
}
