//! `switchboard-tui`: the terminal client, for customers (user mode) and
//! support agents (agent mode). The Elm-style split keeps behaviour testable
//! without a terminal: state and `update` know nothing of sockets or screens,
//! the view only draws, the network task only moves frames.
//!
//! Where a change goes:
//!
//! - **A new key** → [`keymap`] (the table and its help text), then the
//!   [`app::Action`] it produces and what [`app::update`] does with it.
//! - **A new server frame or a change of behaviour** → [`app`]: the state
//!   ([`app::App`]) and [`app::update`], with a unit test there.
//! - **How something looks** → one pane in [`ui`] (`queue`, `conversation`,
//!   `input`, `status`, `help`); `ui::layout` splits the screen, and the
//!   `TestBackend` tests in `ui/tests.rs` pin what is on screen.
//! - **Connecting, reconnecting, backoff** → [`net`]; it turns frames into
//!   [`app::NetEvent`]s and sends what `update` asks for. Frames that do not
//!   fit in the channel to it wait, in order, in [`outbox`].
//! - **Line editing** → [`editor`]; **wrapping, widths, times** → [`text`]
//!   (shared by `update` and the view so scrolling agrees with drawing).
//! - **Where the token is kept** → [`config`]; **raw mode, alternate
//!   screen, restoring on panic** → [`terminal`]; the CLI and the event loop
//!   (a `select!` over keys, network events, a tick and the redraw deadline)
//!   → `main.rs`.

pub mod app;
pub mod config;
pub mod editor;
pub mod keymap;
pub mod layout;
pub mod mode;
pub mod net;
pub mod outbox;
pub mod run;
pub mod terminal;
pub mod text;
pub mod ui;
