//! switchboard's wire format, with no I/O.
//!
//! Every frame is one JSON object on one line, tagged by `"type"`
//! (see `docs/protocol.md`). Clients send [`ClientFrame`]s, the server sends
//! [`ServerFrame`]s; [`FrameCodec`] cuts a byte stream into lines, bounds their
//! length and turns each into a typed frame, or into a [`FrameError`] that the
//! server answers without dropping the connection.
//!
//! - [`message`]: the stored message and the validated values inside frames
//!   (names, priorities, request ids, idempotency keys).
//! - [`body`]: a message body's rules (printable, visible, no reordering).
//! - [`timestamp`]: the fixed-width RFC 3339 time stamps messages carry.
//! - [`frame`]: one enum variant per request and per event; `request.rs`
//!   reads a request, skipping ignored fields of any depth.
//! - [`error`]: the protocol's error codes, and what a bad line is.
//! - [`codec`]: newline framing with a maximum line length.
//! - [`backoff`]: how clients wait between connection attempts, and how
//!   long for the greeting (a rule all clients share; no I/O either).
//! - [`server_list`]: `--server a:7878,b:7878`, the nodes of one help desk
//!   as every client takes them (also shared, also no I/O).

pub mod backoff;
pub mod body;
pub mod codec;
pub mod error;
pub mod frame;
pub mod message;
mod request;
pub mod server_list;
pub mod timestamp;

pub use backoff::{Backoff, GREETING_TIMEOUT};
pub use codec::{ClientCodec, FrameCodec, FromLine, ServerCodec};
pub use error::{ErrorCode, FrameError};
pub use frame::{ClientFrame, ReleaseReason, ServerFrame};
pub use message::{
    Body, BodyError, Key, Message, Name, NameError, Priority, RequestId, Role, Token,
};
pub use server_list::{ServerListError, parse_server_list};
pub use timestamp::Timestamp;

/// The protocol version announced in the greeting: 2, "conversation
/// lifecycle, notes, agent presence" (claim, release, resolve, transfer,
/// supervisors, auto-release, private notes, agent presence), on top of
/// version 1.
pub const PROTOCOL_VERSION: u32 = 2;

/// What the server calls itself in the greeting.
pub const SERVER_NAME: &str = "switchboard";
