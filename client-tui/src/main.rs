//! `switchboard-tui user NAME` / `switchboard-tui agent NAME --token T`: the
//! CLI, signing in (before the alternate screen, so errors print plainly),
//! the terminal, and the event loop. Everything else is in the library; see
//! its crate documentation for where each kind of change goes.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use crossterm::event::EventStream;
use futures::StreamExt;
use switchboard_protocol::{ClientFrame, Name, Timestamp, Token};
use switchboard_tui::app::{self, App, Effect, Mode, Msg, NetEvent};
use switchboard_tui::keymap::{self, KeyContext};
use switchboard_tui::net::{self, ConnectError, Identity};
use switchboard_tui::outbox::Outbox;
use switchboard_tui::{config, terminal, ui};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Frames the app may queue in the channel to the network task; more wait
/// in the event loop's [`Outbox`], in order.
const OUTGOING_FRAMES: usize = 256;
/// Events the network task may queue for the app before it stops reading.
const INCOMING_EVENTS: usize = 1024;
/// The shortest time between two frames drawn (about 60 per second).
const FRAME_INTERVAL: Duration = Duration::from_millis(16);
/// How often the clock (ages, "today") moves.
const TICK_INTERVAL: Duration = Duration::from_secs(1);
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
    let (conn, welcome) = match net::connect(&endpoint, &identity).await {
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
    let result = event_loop(&mut tui, app, events, to_net).await;
    drop(guard);
    // The sender is gone: the network task says bye and ends.
    let _ = tokio::time::timeout(BYE_TIMEOUT, net).await;
    result
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

async fn event_loop(
    tui: &mut terminal::Tui,
    mut app: App,
    mut events: mpsc::Receiver<Msg>,
    to_net: mpsc::Sender<ClientFrame>,
) -> anyhow::Result<()> {
    let mut outbox = Outbox::new(to_net);
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let size = tui.size()?;
    app::update(&mut app, Msg::Resize(size.width, size.height));
    let mut net_open = true;
    let mut last_draw = Instant::now() - FRAME_INTERVAL;
    // Some(deadline) = something changed and the screen is due for a redraw.
    let mut redraw_at = Some(Instant::now());

    loop {
        let redraw = async {
            match redraw_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let msgs: Vec<Msg> = tokio::select! {
            () = redraw => {
                tui.draw(|frame| ui::draw(frame, &app))?;
                last_draw = Instant::now();
                redraw_at = None;
                continue;
            }
            event = keys.next() => match event {
                Some(Ok(event)) => keymap::terminal_msgs(key_context(&app), event),
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                None => return Ok(()),
            },
            msg = events.recv(), if net_open => match msg {
                Some(msg) => vec![msg],
                None => {
                    net_open = false;
                    continue;
                }
            },
            _ = tick.tick() => vec![Msg::Tick(Timestamp::now())],
            // Frames that did not fit in the channel go as it empties.
            flushed = outbox.flush(), if outbox.is_backed_up() => {
                if flushed.is_ok() {
                    continue; // nothing on screen changed
                }
                network_stopped(&mut app);
                Vec::new()
            }
        };
        for msg in msgs {
            if let Msg::Net(NetEvent::Disconnected { .. } | NetEvent::Connected { .. }) = &msg {
                // Frames meant for the old connection are stale; on
                // `Connected` the app sends again what still matters.
                outbox.forget();
            }
            for effect in app::update(&mut app, msg) {
                match effect {
                    // Never waits on the network (the screen must not freeze)
                    // and never drops a frame: what does not fit waits.
                    Effect::Send(frame) => {
                        if outbox.send(frame).is_err() {
                            network_stopped(&mut app);
                        }
                    }
                    Effect::Repaint => tui.clear()?,
                    Effect::Quit => return Ok(()),
                }
            }
        }
        if redraw_at.is_none() {
            redraw_at = Some((last_draw + FRAME_INTERVAL).max(Instant::now()));
        }
    }
}

/// The network task has ended, so nothing more can be sent. It says why
/// first (`Fatal`) when it gives up; otherwise, say it here.
fn network_stopped(app: &mut App) {
    if !matches!(app.connection, app::Connection::Failed(_)) {
        app.notice = Some(app::Notice {
            text: "the connection task has stopped: nothing more can be sent (Ctrl-C quits)".into(),
            error: true,
            since: app.now,
        });
    }
}

/// What the keymap needs to know of the app.
fn key_context(app: &App) -> KeyContext {
    KeyContext {
        mode: app.mode,
        help_open: app.help_open,
        input_empty: app.editor.is_empty(),
    }
}
