//! The event loop: one `select!` over terminal events, the network task's
//! events, a clock tick, frames waiting for room in the channel to the
//! network task, and the redraw deadline. Every change to the app goes
//! through [`update`](app::update); this loop only feeds it and carries out its
//! [`Effect`]s.
//!
//! Generic over the terminal's backend and the stream of terminal events,
//! so that it can run against ratatui's `TestBackend` and a scripted stream
//! instead of a real terminal.

use std::io;
use std::ops::ControlFlow;
use std::time::Duration;

use crossterm::event::Event;
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use switchboard_protocol::{ClientFrame, Timestamp};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::app::{self, App, Effect, Msg, NetEvent};
use crate::keymap::{self, KeyContext};
use crate::outbox::Outbox;
use crate::ui;

/// The shortest time between two frames drawn (about 60 per second).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(16);
/// How often the clock (ages, "today") moves.
pub const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Why the loop stopped other than by the user quitting. `E` is the
/// terminal backend's error.
#[derive(Debug, Error)]
pub enum RunError<E> {
    /// Measuring, drawing or clearing the terminal failed.
    #[error(transparent)]
    Terminal(E),
    #[error("reading the terminal")]
    Keys(#[source] io::Error),
}

/// Runs until the user quits or the terminal's events end, and hands back
/// the app as it ended (whether the server refused it, for the exit
/// status). `events` comes from the network task; `to_net` goes to it.
pub async fn event_loop<B, K>(
    tui: &mut Terminal<B>,
    mut app: App,
    mut keys: K,
    mut events: mpsc::Receiver<Msg>,
    to_net: mpsc::Sender<ClientFrame>,
) -> Result<App, RunError<B::Error>>
where
    B: Backend,
    K: Stream<Item = io::Result<Event>> + Unpin,
{
    let mut outbox = Outbox::new(to_net);
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let size = tui.size().map_err(RunError::Terminal)?;
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
                tui.draw(|frame| ui::draw(frame, &app)).map_err(RunError::Terminal)?;
                last_draw = Instant::now();
                redraw_at = None;
                continue;
            }
            event = keys.next() => match event {
                Some(Ok(event)) => keymap::terminal_msgs(key_context(&app), event),
                Some(Err(e)) => return Err(RunError::Keys(e)),
                None => return Ok(app),
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
                vec![Msg::NetworkStopped]
            }
        };
        for msg in msgs {
            if let Msg::Net(NetEvent::Disconnected { .. } | NetEvent::Connected { .. }) = &msg {
                // Frames meant for the old connection are stale; on
                // `Connected` the app sends again what still matters.
                outbox.forget();
            }
            if step(tui, &mut app, &mut outbox, msg)?.is_break() {
                return Ok(app);
            }
        }
        if redraw_at.is_none() {
            redraw_at = Some((last_draw + FRAME_INTERVAL).max(Instant::now()));
        }
    }
}

/// Applies `msg` and carries out its effects; `Break` when the app quits.
fn step<B: Backend>(
    tui: &mut Terminal<B>,
    app: &mut App,
    outbox: &mut Outbox,
    msg: Msg,
) -> Result<ControlFlow<()>, RunError<B::Error>> {
    for effect in app::update(app, msg) {
        match effect {
            // Never waits on the network (the screen must not freeze)
            // and never drops a frame: what does not fit waits.
            Effect::Send(frame) => {
                if outbox.send(frame).is_err()
                    && step(tui, app, outbox, Msg::NetworkStopped)?.is_break()
                {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Effect::Repaint => tui.clear().map_err(RunError::Terminal)?,
            Effect::Bell => crate::terminal::ring_bell(),
            Effect::Title(title) => crate::terminal::set_title(&title),
            Effect::Quit => return Ok(ControlFlow::Break(())),
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// What the keymap needs to know of the app.
fn key_context(app: &App) -> KeyContext {
    KeyContext {
        mode: app.mode,
        help_open: app.help_open,
        input_empty: app.editor.is_empty(),
        asking: app.question.is_some(),
        picking: app.picker.is_some(),
    }
}
