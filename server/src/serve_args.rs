//! `switchboard serve`'s flags, and the [`ServeOptions`] they make: every
//! limit's flag, environment variable and default in one place (the
//! defaults themselves are `switchboard_server::config::defaults`, where
//! docs/protocol.md points).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use switchboard_server::config::defaults;
use switchboard_server::inflow::Allowance;
use switchboard_server::priority::PriorityRules;
use switchboard_server::store::{Durability, Location};
use switchboard_server::{Config, ServeOptions};

use crate::DbArg;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the log says which).
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:7878")]
    listen: String,
    #[command(flatten)]
    db: DbArg,
    /// Cluster mode: carry each commit to the other nodes on this NATS
    /// server (nats://[USER:PASSWORD@]HOST:PORT), with --postgres. Every
    /// node given the same two URLs is one help desk (docs/cluster.md).
    /// Without it, nodes on one database still serve correctly, reading
    /// each other's commits from the database, more slowly.
    #[arg(long, env = "SWITCHBOARD_NATS", hide_env_values = true)]
    nats: Option<String>,
    /// Longest accepted line in bytes; longer lines get `line_too_long`.
    #[arg(long, env = "SWITCHBOARD_MAX_LINE", default_value_t = defaults::MAX_LINE_BYTES,
          value_parser = clap::value_parser!(u32).range(64..))]
    max_line: u32,
    /// Longest message body in characters; longer bodies get `invalid_body`.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY", default_value_t = defaults::MAX_BODY_CHARS,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_body: u32,
    /// Connections served at once; the next one gets `server_busy`. The
    /// open-file limit is raised to fit, or, at its hard maximum, fewer are served.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Connections one client address may hold at once (0: no limit); the
    /// next from it gets `server_busy`, so one host cannot take every slot.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_ADDRESS",
          default_value_t = defaults::MAX_CONNECTIONS_PER_ADDRESS)]
    max_connections_per_address: u32,
    /// JSON file of priority words, e.g. {"urgent":["outage"],"high":["invoice"],"low":["thanks"]}.
    /// Replaces the default rules.
    #[arg(long, env = "SWITCHBOARD_PRIORITY_RULES")]
    priority_rules: Option<PathBuf>,
    /// Messages per second one connection may send on average (0: no limit).
    #[arg(long, env = "SWITCHBOARD_RATE", default_value_t = defaults::SEND_RATE)]
    rate: f64,
    /// Messages one connection may send in a burst.
    #[arg(long, env = "SWITCHBOARD_BURST", default_value_t = defaults::SEND_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    burst: u32,
    /// Messages a second one user may send, all its connections together
    /// (0: no limit); past it, `send` gets `rate_limited`. Agents are not counted.
    #[arg(long, env = "SWITCHBOARD_USER_RATE", default_value_t = defaults::USER_SEND_RATE)]
    user_rate: f64,
    /// Messages one user may send in a burst, all its connections together.
    #[arg(long, env = "SWITCHBOARD_USER_BURST", default_value_t = defaults::USER_SEND_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    user_burst: u32,
    /// Message body bytes a second one user may send, all its connections
    /// together, in a burst of 4 seconds' worth (0: no limit).
    #[arg(long, env = "SWITCHBOARD_USER_BYTES", default_value_t = defaults::USER_BYTES_PER_SECOND)]
    user_bytes: u32,
    /// Messages a second one client address may send, all its users together
    /// (0: no limit); past it, `send` gets `rate_limited`. Agents are not counted.
    #[arg(long, env = "SWITCHBOARD_ADDRESS_RATE", default_value_t = defaults::ADDRESS_SEND_RATE)]
    address_rate: f64,
    /// Messages one client address may send in a burst, all its users together.
    #[arg(long, env = "SWITCHBOARD_ADDRESS_BURST", default_value_t = defaults::ADDRESS_SEND_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    address_burst: u32,
    /// Message body bytes a second one client address may send, all its users
    /// together, in a burst of 4 seconds' worth (0: no limit).
    #[arg(long, env = "SWITCHBOARD_ADDRESS_BYTES", default_value_t = defaults::ADDRESS_BYTES_PER_SECOND)]
    address_bytes: u32,
    /// Turns every send limit off (per connection, per user, per address),
    /// whatever the flags above say: for load tests, never for customers.
    #[arg(long, env = "SWITCHBOARD_NO_SEND_LIMITS")]
    no_send_limits: bool,
    /// New user names one client address may register a minute, in a burst
    /// of as many (0: no limit); past it, a new name's `hello` gets `rate_limited`.
    #[arg(long, env = "SWITCHBOARD_SIGNUPS_PER_MINUTE", default_value_t = defaults::SIGNUPS_PER_MINUTE)]
    signups_per_minute: u32,
    /// New user names the whole server registers a minute, all addresses
    /// together, in a burst of as many (0: no limit); past it, a new name's
    /// `hello` gets `rate_limited`.
    #[arg(long, env = "SWITCHBOARD_SIGNUPS_PER_MINUTE_TOTAL",
          default_value_t = defaults::SIGNUPS_PER_MINUTE_TOTAL)]
    signups_per_minute_total: u32,
    /// New connections one client address may open a second (0: no limit);
    /// past it (and its burst), a connection gets `server_busy`.
    #[arg(long, env = "SWITCHBOARD_CONNECTIONS_PER_SECOND_PER_ADDRESS",
          default_value_t = defaults::CONNECTIONS_PER_SECOND_PER_ADDRESS)]
    connections_per_second_per_address: u32,
    /// New connections one client address may open at once.
    #[arg(long, env = "SWITCHBOARD_CONNECTION_BURST_PER_ADDRESS",
          default_value_t = defaults::CONNECTION_BURST_PER_ADDRESS,
          value_parser = clap::value_parser!(u32).range(1..))]
    connection_burst_per_address: u32,
    /// Milliseconds a user's last connection may be gone before agents hear
    /// it offline; back within it, agents hear nothing (0: at once). An
    /// agent's presence is announced at once, always.
    #[arg(long, env = "SWITCHBOARD_PRESENCE_GRACE_MS", default_value_t = defaults::PRESENCE_GRACE_MS)]
    presence_grace_ms: u64,
    /// Bytes of long replies (`history` pages, backlogs read in chunks) in
    /// flight at once, server-wide (0: no budget); past it a new long
    /// `history` waits briefly, then gets `rate_limited`.
    #[arg(long, env = "SWITCHBOARD_REPLY_BUDGET", default_value_t = defaults::REPLY_BUDGET_BYTES)]
    reply_budget: u64,
    /// Long replies one user may have in flight at once (0: no limit); the
    /// next long `history` gets `rate_limited`.
    #[arg(long, env = "SWITCHBOARD_REPLIES_PER_USER", default_value_t = defaults::REPLIES_PER_USER)]
    replies_per_user: u32,
    /// Seconds a connection may stay without a successful hello.
    #[arg(long, env = "SWITCHBOARD_HELLO_TIMEOUT", default_value_t = defaults::HELLO_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    hello_timeout: u64,
    /// Seconds a signed-in connection that has not subscribed may go without
    /// a `send` or `release` before it is closed (0: no limit).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT", default_value_t = defaults::IDLE_TIMEOUT_SECS)]
    idle_timeout: u64,
    /// Seconds a conversation's holder may have no subscribed connection
    /// (on any node) before the server puts the conversation back in the
    /// queue, its questions still waiting (0: never).
    #[arg(long, env = "SWITCHBOARD_RELEASE_AFTER", default_value_t = defaults::RELEASE_AFTER_SECS)]
    release_after: u64,
    /// Frames queued for one connection before it is cut off as `slow_consumer`.
    #[arg(long, env = "SWITCHBOARD_OUTBOX_FRAMES", default_value_t = defaults::OUTBOX_FRAMES,
          value_parser = clap::value_parser!(u32).range(1..))]
    outbox_frames: u32,
    /// Bytes of events queued for one connection before it is cut off as
    /// `slow_consumer`. Replies (a whole backlog) are not counted.
    #[arg(long, env = "SWITCHBOARD_OUTBOX_BYTES", default_value_t = defaults::OUTBOX_BYTES,
          value_parser = clap::value_parser!(u64).range(1024..))]
    outbox_bytes: u64,
    /// Connections the kernel may hold completed, waiting for the server to
    /// accept them (0: the system's maximum, net.core.somaxconn on Linux).
    /// When a burst overflows it, clients wait for a greeting that never comes.
    #[arg(long, env = "SWITCHBOARD_LISTEN_BACKLOG", default_value_t = defaults::LISTEN_BACKLOG)]
    listen_backlog: u32,
    /// Seconds sessions get after SIGTERM/SIGINT to send what they owe and
    /// `bye`; connections still busy then (a peer that does not read) are dropped.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE", default_value_t = defaults::SHUTDOWN_GRACE_SECS)]
    shutdown_grace: u64,
    /// Serve TLS with this PEM certificate chain (with --tls-key). Plaintext otherwise.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics (GET /metrics) and a health check (GET
    /// /healthz) over HTTP on this address, e.g. 127.0.0.1:9100; port 0
    /// picks a free port (the log says which). Off unless given. Plain HTTP
    /// without authentication: keep it on a private network.
    #[arg(long, env = "SWITCHBOARD_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// `full`: a commit survives power loss. `normal`: faster; survives a
    /// server crash but not a power cut.
    #[arg(long, env = "SWITCHBOARD_DURABILITY", value_enum, default_value_t = DurabilityArg::Full)]
    durability: DurabilityArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DurabilityArg {
    Full,
    Normal,
}

impl ServeArgs {
    /// What `run` needs, from the flags: checked, with the open-file limit
    /// raised to fit `--max-connections` (or fewer connections if it
    /// cannot).
    pub(crate) fn into_options(self) -> anyhow::Result<ServeOptions> {
        let rules = match &self.priority_rules {
            Some(path) => PriorityRules::load(path)
                .with_context(|| format!("priority rules {}", path.display()))?,
            None => PriorityRules::default(),
        };
        for (flag, rate) in [
            ("--rate", self.rate),
            ("--user-rate", self.user_rate),
            ("--address-rate", self.address_rate),
        ] {
            if !(rate.is_finite() && rate >= 0.0) {
                anyhow::bail!("{flag} must be a number of messages per second, 0 or more");
            }
        }
        let max_connections = fit_open_files(u64::from(self.max_connections));
        let config = Config {
            max_line_bytes: self.max_line as usize,
            max_body_chars: self.max_body as usize,
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            max_connections_per_address: self.max_connections_per_address as usize,
            send_rate: self.rate,
            send_burst: self.burst,
            per_user: Allowance {
                messages_per_second: self.user_rate,
                message_burst: self.user_burst,
                bytes_per_second: self.user_bytes,
            },
            per_address: Allowance {
                messages_per_second: self.address_rate,
                message_burst: self.address_burst,
                bytes_per_second: self.address_bytes,
            },
            signups_per_minute: self.signups_per_minute,
            signups_per_minute_total: self.signups_per_minute_total,
            connections_per_second_per_address: self.connections_per_second_per_address,
            connection_burst_per_address: self.connection_burst_per_address,
            presence_grace: Duration::from_millis(self.presence_grace_ms),
            hello_timeout: Duration::from_secs(self.hello_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            outbox_frames: self.outbox_frames as usize,
            outbox_bytes: usize::try_from(self.outbox_bytes).unwrap_or(usize::MAX),
            listen_backlog: self.listen_backlog,
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            reply_budget_bytes: usize::try_from(self.reply_budget).unwrap_or(usize::MAX),
            replies_per_user: self.replies_per_user as usize,
            release_after: Duration::from_secs(self.release_after),
        };
        let db = self.db.location()?;
        if self.nats.is_some() && !matches!(db, Location::Postgres(_)) {
            anyhow::bail!(
                "--nats needs --postgres: the nodes of a cluster share one PostgreSQL \
                 database, and the bus only carries its commits between them \
                 (docs/cluster.md)"
            );
        }
        Ok(ServeOptions {
            listen: self.listen,
            db,
            nats: self.nats,
            durability: match self.durability {
                DurabilityArg::Full => Durability::Full,
                DurabilityArg::Normal => Durability::Normal,
            },
            config: if self.no_send_limits {
                config.without_send_limits()
            } else {
                config
            },
            rules,
            tls: self.tls_cert.zip(self.tls_key),
            metrics_listen: self.metrics_listen,
        })
    }
}

/// Raises the open-file limit for `--max-connections`, or serves fewer
/// connections if it cannot (see [`switchboard_server::open_files`]).
fn fit_open_files(max_connections: u64) -> u64 {
    let fitted = switchboard_server::open_files::fit(max_connections);
    if let Some(from) = fitted.raised_from {
        tracing::info!(from, to = fitted.limit, "raised the open-file limit");
    }
    if fitted.max_connections < max_connections {
        tracing::warn!(
            limit = fitted.limit,
            max_connections = fitted.max_connections,
            asked = max_connections,
            "the open-file limit (ulimit -n) holds fewer connections than --max-connections; \
             the rest get server_busy. Raise the hard limit to serve more"
        );
    }
    fitted.max_connections
}
