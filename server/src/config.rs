//! The server's limits, as `switchboard serve` sets them.

use std::time::Duration;

/// Each limit's default, in one place: `switchboard serve`'s flags and
/// [`Config::default`] (what tests and embedders start from) both read them.
pub mod defaults {
    /// Longest accepted line, in bytes: the protocol's.
    pub const MAX_LINE_BYTES: u32 = 65_536;
    /// Longest message body, in characters.
    pub const MAX_BODY_CHARS: u32 = 4_096;
    pub const MAX_CONNECTIONS: u32 = 10_000;
    /// A tenth of the connections: far more than one office's agents or
    /// one household's customers, far fewer than it takes to lock
    /// everyone else out.
    pub const MAX_CONNECTIONS_PER_ADDRESS: u32 = 1_000;
    /// `send`s a second per connection: far above what a person types.
    pub const SEND_RATE: f64 = 10.0;
    pub const SEND_BURST: u32 = 30;
    /// New user names one address may register a minute: a family or a
    /// shop's customers sign up far slower; a script filling the database
    /// far faster.
    pub const SIGNUPS_PER_MINUTE: u32 = 60;
    pub const HELLO_TIMEOUT_SECS: u64 = 60;
    pub const OUTBOX_FRAMES: u32 = 8_192;
    pub const OUTBOX_BYTES: u64 = 4 << 20;
    /// Bytes of long replies in flight, server-wide: 64 MiB is 256 replies
    /// streaming at once (one 256 KiB chunk each), far more than agents and
    /// honest customers page through at once, far less than the machine has.
    pub const REPLY_BUDGET_BYTES: u64 = 64 << 20;
    /// Long replies one user may have in flight at once: a person pages one
    /// history at a time; four leave room for a few tabs, not for taking
    /// the whole budget.
    pub const REPLIES_PER_USER: u32 = 4;

    // The codec's own default must be the same line limit.
    const _: () =
        assert!(MAX_LINE_BYTES as usize == switchboard_protocol::codec::DEFAULT_MAX_LINE_BYTES);
}

/// Limits and knobs for one server. Defaults are the protocol's.
#[derive(Debug, Clone)]
pub struct Config {
    /// Longest accepted line, in bytes (without its line ending).
    pub max_line_bytes: usize,
    /// Longest message body, in characters, after trimming.
    pub max_body_chars: usize,
    /// Connections served at once; the next is answered `server_busy`.
    pub max_connections: usize,
    /// Connections one client address may hold at once (0: no limit); the
    /// next from it is answered `server_busy`.
    pub max_connections_per_address: usize,
    /// `send` requests a second per connection (0: unlimited).
    pub send_rate: f64,
    /// `send` requests a connection may make at once.
    pub send_burst: u32,
    /// New user names one client address may register a minute, in a burst
    /// of as many (0: no limit).
    pub signups_per_minute: u32,
    /// How long a connection may stay anonymous.
    pub hello_timeout: Duration,
    /// Frames a connection may have queued before it counts as a slow consumer.
    pub outbox_frames: usize,
    /// Bytes a connection may have queued before it counts as a slow consumer.
    pub outbox_bytes: usize,
    /// Bytes of long replies in flight, server-wide (0: no budget); past
    /// it a new long `history` waits briefly, then gets `rate_limited`.
    pub reply_budget_bytes: usize,
    /// Long replies one user may have in flight at once (0: no limit).
    pub replies_per_user: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_line_bytes: defaults::MAX_LINE_BYTES as usize,
            max_body_chars: defaults::MAX_BODY_CHARS as usize,
            max_connections: defaults::MAX_CONNECTIONS as usize,
            max_connections_per_address: defaults::MAX_CONNECTIONS_PER_ADDRESS as usize,
            send_rate: defaults::SEND_RATE,
            send_burst: defaults::SEND_BURST,
            signups_per_minute: defaults::SIGNUPS_PER_MINUTE,
            hello_timeout: Duration::from_secs(defaults::HELLO_TIMEOUT_SECS),
            outbox_frames: defaults::OUTBOX_FRAMES as usize,
            outbox_bytes: defaults::OUTBOX_BYTES as usize,
            reply_budget_bytes: defaults::REPLY_BUDGET_BYTES as usize,
            replies_per_user: defaults::REPLIES_PER_USER as usize,
        }
    }
}
