//! `switchboard-tui`: the terminal client, for customers (user mode) and
//! support agents (agent mode). The Elm-style split keeps behaviour testable
//! without a terminal: state and `update` know nothing of sockets or screens,
//! the view only draws, the network task only moves frames, and the event
//! loop only feeds `update` and carries out what it returns.
//!
//! Where a change goes:
//!
//! - **A new key** → [`keymap`] (the table and its help text), then the
//!   [`app::Action`] it produces (`app/msg.rs`) and what it does
//!   (`app/actions.rs`, or `app/navigate.rs` for selection and scrolling).
//! - **A new server frame or a change of behaviour** → [`app`]: the state
//!   ([`app::App`], `app/mod.rs`; one conversation in `app/conversation.rs`)
//!   and the handler (`app/frames.rs` for what the network task reports,
//!   `app/resync.rs` for an agent's waiting queue after a resume), with a
//!   unit test in `app/tests/` under the area it belongs to.
//! - **How something looks** → one pane in [`ui`] (`queue`, `conversation`,
//!   `input`, `status`, `help`); the `TestBackend` tests in `ui/tests.rs` pin
//!   what is on screen. **Where the panes go** → [`layout`], which `update`
//!   also asks for the message area's size; it imports neither `app` nor
//!   `ui`, and nothing in `app` imports `ui`.
//! - **Connecting, reconnecting, backoff, heartbeat, moving between the
//!   nodes of `--server a,b,c`** → [`net`] (`net/mod.rs` the task and a
//!   session, `net/connect.rs` signing in, `net/retry.rs` the first sign-in
//!   and the waits, `net/nodes.rs` which node comes next, `net/endpoint.rs`
//!   TLS); it turns frames into [`app::NetEvent`]s and sends what `update`
//!   asks for. Frames that do not fit in the channel to it wait, in order,
//!   in [`outbox`].
//! - **The event loop** (a `select!` over keys, network events, a tick and
//!   the redraw deadline) → [`run`]; it changes the app only through
//!   [`app::update`], so anything new it notices becomes an [`app::Msg`].
//! - **Line editing** → [`editor`]; **wrapping, widths, times** → [`text`]
//!   (shared by `update` and the view so scrolling agrees with drawing);
//!   **user or agent** → [`mode`].
//! - **Where the token is kept** → [`config`]; **raw mode, alternate
//!   screen, restoring on panic** → [`terminal`]; the CLI, signing in and
//!   wiring the pieces together → `main.rs`.

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
