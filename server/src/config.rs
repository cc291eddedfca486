//! The server's limits, as `switchboard serve` sets them.

use std::time::Duration;

/// Limits and knobs for one server. Defaults are the protocol's.
#[derive(Debug, Clone)]
pub struct Config {
    /// Longest accepted line, in bytes (without its line ending).
    pub max_line_bytes: usize,
    /// Longest message body, in characters, after trimming.
    pub max_body_chars: usize,
    /// Connections served at once; the next is answered `server_busy`.
    pub max_connections: usize,
    /// `send` requests a second per connection (0: unlimited).
    pub send_rate: f64,
    /// `send` requests a connection may make at once.
    pub send_burst: u32,
    /// How long a connection may stay anonymous.
    pub hello_timeout: Duration,
    /// Frames a connection may have queued before it counts as a slow consumer.
    pub outbox_frames: usize,
    /// Bytes a connection may have queued before it counts as a slow consumer.
    pub outbox_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_line_bytes: 65_536,
            max_body_chars: 4_096,
            max_connections: 10_000,
            send_rate: 10.0,
            send_burst: 30,
            hello_timeout: Duration::from_secs(60),
            outbox_frames: 8_192,
            outbox_bytes: 4 << 20,
        }
    }
}
