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
use switchboard_protocol::{Name, Timestamp, Token};
use switchboard_tui::app::{App, Mode};
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
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Talk to support as customer NAME (registered on first run; the token is
    /// kept in $XDG_CONFIG_HOME/switchboard/).
    User {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
        /// Sign in with this token instead of the stored one.
        #[arg(long)]
        token: Option<String>,
    },
    /// Answer customers as agent NAME (provisioned with `switchboard agent add`).
    Agent {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
        /// The token `switchboard agent add NAME` printed.
        #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
        token: String,
    },
}

/// How to reach the server, the same for both modes.
#[derive(clap::Args)]
struct ServerArgs {
    /// host:port of the switchboard server.
    #[arg(long, env = "SWITCHBOARD_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// Speak TLS (the server runs with --tls-cert/--tls-key).
    #[arg(long, env = "SWITCHBOARD_TLS")]
    tls: bool,
    /// With --tls: trust the PEM certificates in FILE (e.g. a self-signed
    /// server's own) instead of the public certificate authorities.
    #[arg(long, env = "SWITCHBOARD_CA", requires = "tls")]
    ca: Option<std::path::PathBuf>,
}

impl ServerArgs {
    fn endpoint(&self) -> Result<net::Endpoint, ConnectError> {
        if self.tls {
            net::Endpoint::tls(self.server.clone(), self.ca.as_deref())
        } else {
            Ok(net::Endpoint::plain(self.server.clone()))
        }
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
    let (mode, name, server_args, token, token_file) = match cli.command {
        Command::User {
            name,
            server,
            token,
        } => {
            let server_args = server;
            let server = &server_args.server;
            let file = config::config_dir().map(|dir| config::token_path(&dir, server, &name));
            let stored = match (&token, &file) {
                (None, Some(path)) => config::load_token(path)
                    .with_context(|| format!("reading the token in {}", path.display()))?,
                _ => None,
            };
            let from_file = stored.is_some();
            (
                Mode::User,
                name,
                server_args,
                token.or(stored).map(Token::new),
                file.filter(|_| from_file),
            )
        }
        Command::Agent {
            name,
            server,
            token,
        } => (Mode::Agent, name, server, Some(Token::new(token)), None),
    };
    let name = Name::parse(&name).with_context(|| format!("{name:?} is not a valid name"))?;
    let endpoint = server_args.endpoint()?;
    let server = server_args.server;
    let identity = Identity {
        role: mode.role(),
        name: name.clone(),
        token,
    };

    // Sign in while still on the normal screen, so that errors read plainly.
    // A swamped server can leave a connection silent: say so while trying again.
    let retrying = |retrying: &net::Retrying<'_>| eprintln!("switchboard-tui: {retrying}");
    let (conn, welcome) = match net::connect_retrying(&endpoint, &identity, retrying).await {
        Ok(ok) => ok,
        Err(e @ ConnectError::Refused { .. }) if token_file.is_some() => {
            let path = token_file
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            anyhow::bail!(
                "{e}\nthe token saved in {path} was not accepted; if the server's data was \
                 reset, delete that file to register {name} again"
            );
        }
        Err(e) => return Err(e.into()),
    };
    let mut identity = identity;
    if let Some(token) = &welcome.token {
        identity.token = Some(token.clone());
        match config::config_dir() {
            Some(dir) => {
                let path = config::token_path(&dir, &server, name.as_str());
                config::save_token(&path, token.expose())
                    .with_context(|| format!("saving the new token to {}", path.display()))?;
            }
            None => eprintln!(
                "switchboard-tui: no config directory (set XDG_CONFIG_HOME or HOME); \
                 the token will not be kept"
            ),
        }
    }

    let (to_net, outgoing) = mpsc::channel(OUTGOING_FRAMES);
    let (events_tx, events) = mpsc::channel(INCOMING_EVENTS);
    let net = tokio::spawn(net::run(
        endpoint,
        identity,
        (conn, welcome),
        outgoing,
        events_tx,
        net::Heartbeat::default(),
    ));

    let app = App::new(mode, name, server, key_prefix(), Timestamp::now());
    let (mut tui, guard) = terminal::enter().context("setting up the terminal")?;
    let result = run::event_loop(&mut tui, app, EventStream::new(), events, to_net).await;
    drop(guard);
    // The sender is gone: the network task says bye and ends.
    let _ = tokio::time::timeout(BYE_TIMEOUT, net).await;
    Ok(result?)
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
