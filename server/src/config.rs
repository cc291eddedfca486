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
    /// Connections the kernel may hold completed for the accept loop; 0
    /// asks for the system's maximum (`net.core.somaxconn` on Linux), which
    /// a burst of thousands of connects needs (issue 15, finding 9).
    pub const LISTEN_BACKLOG: u32 = 0;
    /// Seconds sessions get, after SIGTERM, to send what they owe and `bye`:
    /// plenty for a client that reads; a peer that does not read is dropped
    /// after it, so it cannot hold the process (issue 15, finding 10).
    pub const SHUTDOWN_GRACE_SECS: u64 = 2;

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
    /// The listen backlog asked of the kernel (0: the system's maximum).
    pub listen_backlog: u32,
    /// How long a shutdown waits for sessions before dropping those left.
    pub shutdown_grace: Duration,
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
            listen_backlog: defaults::LISTEN_BACKLOG,
            shutdown_grace: Duration::from_secs(defaults::SHUTDOWN_GRACE_SECS),
        }
    }
}
