//! The server's limits, as `switchboard serve` sets them.

use std::time::Duration;

use crate::inflow::Allowance;

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
    /// `send`s a second one user may make across all its connections: the
    /// same as one connection's, so more connections buy nothing.
    pub const USER_SEND_RATE: f64 = SEND_RATE;
    pub const USER_SEND_BURST: u32 = SEND_BURST;
    /// Body bytes a second one user may send across its connections, with
    /// a burst of [`crate::inflow::BYTES_BURST_SECONDS`] seconds' worth: a
    /// few of the longest messages at once; a person types a few bytes a
    /// second. Sized from what one agent connection can take (open point
    /// 30 in docs/protocol.md).
    pub const USER_BYTES_PER_SECOND: u32 = 64 << 10;
    /// What one client address may send, all its users together: room for
    /// an office or a household of customers behind one NAT, still far
    /// below what one agent connection reads.
    pub const ADDRESS_SEND_RATE: f64 = 50.0;
    pub const ADDRESS_SEND_BURST: u32 = 150;
    pub const ADDRESS_BYTES_PER_SECOND: u32 = 256 << 10;
    /// New user names one address may register a minute: a family or a
    /// shop's customers sign up far slower; a script filling the database
    /// far faster.
    pub const SIGNUPS_PER_MINUTE: u32 = 60;
    /// New user names the whole server registers a minute: sign-ups
    /// multiply with addresses (40 addresses registered 2,400 names in
    /// 1.3 s); ten a second is a busy help desk's campaign day.
    pub const SIGNUPS_PER_MINUTE_TOTAL: u32 = 600;
    /// New connections one address may open a second, on average, and at
    /// once. An office behind one NAT opens a connection per person when
    /// people start work, minutes apart; the burst lets a whole office of
    /// 100 reconnect at once after a network blip (and the clients retry
    /// with backoff past it). A script flapping connections for presence
    /// floods, or for `hello` work, is held to 20 a second.
    pub const CONNECTIONS_PER_SECOND_PER_ADDRESS: u32 = 20;
    pub const CONNECTION_BURST_PER_ADDRESS: u32 = 100;
    /// How long a user's last connection may be gone before agents hear
    /// `online: false`: a reconnect within it (a flaky network, a reload)
    /// makes no offline/online pair.
    pub const PRESENCE_GRACE_MS: u64 = 2_000;
    pub const HELLO_TIMEOUT_SECS: u64 = 60;
    /// Five minutes: far longer than a person takes to type a first
    /// message, far shorter than a squatter would like to hold a slot.
    pub const IDLE_TIMEOUT_SECS: u64 = 300;
    pub const RELEASE_AFTER_SECS: u64 = 300;
    pub const OUTBOX_FRAMES: u32 = 8_192;
    pub const OUTBOX_BYTES: u64 = 4 << 20;
    /// Connections the kernel may hold completed for the accept loop; 0
    /// asks for the system's maximum (`net.core.somaxconn` on Linux), which
    /// a burst of thousands of connects needs (issue 15, finding 9).
    pub const LISTEN_BACKLOG: u32 = 0;
    /// Seconds sessions get, after SIGTERM, to send what they owe and `bye`:
    /// plenty for a client that reads; a peer that does not read is dropped
    /// after it, so it cannot hold the process (issue 15, finding 10).
    pub const SHUTDOWN_GRACE_SECS: u64 = 2;
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
    /// What one user may send across all its connections (agents are not
    /// counted); see [`crate::inflow`].
    pub per_user: Allowance,
    /// What one client address may send, all its users together.
    pub per_address: Allowance,
    /// New user names one client address may register a minute, in a burst
    /// of as many (0: no limit).
    pub signups_per_minute: u32,
    /// New user names the whole server registers a minute, in a burst of
    /// as many (0: no limit).
    pub signups_per_minute_total: u32,
    /// New connections one client address may open a second (0: no limit);
    /// past it, a connection gets `server_busy`.
    pub connections_per_second_per_address: u32,
    /// New connections one client address may open at once.
    pub connection_burst_per_address: u32,
    /// How long after a user's last connection closes agents hear it
    /// offline, unless it is back by then (zero: at once).
    pub presence_grace: Duration,
    /// How long a connection may stay anonymous.
    pub hello_timeout: Duration,
    /// How long a signed-in connection that has not subscribed may go
    /// without a `send` or `release` (zero: no limit).
    pub idle_timeout: Duration,
    /// Frames a connection may have queued before it counts as a slow consumer.
    pub outbox_frames: usize,
    /// Bytes a connection may have queued before it counts as a slow consumer.
    pub outbox_bytes: usize,
    /// The listen backlog asked of the kernel (0: the system's maximum).
    pub listen_backlog: u32,
    /// How long a shutdown waits for sessions before dropping those left.
    pub shutdown_grace: Duration,
    /// Bytes of long replies in flight, server-wide (0: no budget); past
    /// it a new long `history` waits briefly, then gets `rate_limited`.
    pub reply_budget_bytes: usize,
    /// Long replies one user may have in flight at once (0: no limit).
    pub replies_per_user: usize,
    /// How long a conversation's holder may have no subscribed connection
    /// before the server releases it (protocol version 2; zero: never).
    pub release_after: Duration,
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
            per_user: Allowance {
                messages_per_second: defaults::USER_SEND_RATE,
                message_burst: defaults::USER_SEND_BURST,
                bytes_per_second: defaults::USER_BYTES_PER_SECOND,
            },
            per_address: Allowance {
                messages_per_second: defaults::ADDRESS_SEND_RATE,
                message_burst: defaults::ADDRESS_SEND_BURST,
                bytes_per_second: defaults::ADDRESS_BYTES_PER_SECOND,
            },
            signups_per_minute: defaults::SIGNUPS_PER_MINUTE,
            signups_per_minute_total: defaults::SIGNUPS_PER_MINUTE_TOTAL,
            connections_per_second_per_address: defaults::CONNECTIONS_PER_SECOND_PER_ADDRESS,
            connection_burst_per_address: defaults::CONNECTION_BURST_PER_ADDRESS,
            presence_grace: Duration::from_millis(defaults::PRESENCE_GRACE_MS),
            hello_timeout: Duration::from_secs(defaults::HELLO_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(defaults::IDLE_TIMEOUT_SECS),
            outbox_frames: defaults::OUTBOX_FRAMES as usize,
            outbox_bytes: defaults::OUTBOX_BYTES as usize,
            listen_backlog: defaults::LISTEN_BACKLOG,
            shutdown_grace: Duration::from_secs(defaults::SHUTDOWN_GRACE_SECS),
            reply_budget_bytes: defaults::REPLY_BUDGET_BYTES as usize,
            replies_per_user: defaults::REPLIES_PER_USER as usize,
            release_after: Duration::from_secs(defaults::RELEASE_AFTER_SECS),
        }
    }
}

impl Config {
    /// The same limits with every send limit off (per connection, per user,
    /// per address): `serve --no-send-limits`, for load tests.
    pub fn without_send_limits(self) -> Self {
        Self {
            send_rate: 0.0,
            per_user: Allowance::OFF,
            per_address: Allowance::OFF,
            ..self
        }
    }
}
