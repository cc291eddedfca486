//! The run's results, as text for people or one JSON object for scripts.

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::check::{Check, Status};
use crate::stats::{ErrorCounts, LatencySummary};

#[derive(Debug, Serialize)]
pub struct Report {
    /// `closed` or `open`.
    pub mode: &'static str,
    /// `--server` as given: one address, or several nodes.
    pub server: String,
    /// Where the connections went, node by node (one entry for one node).
    pub nodes: Vec<NodeShare>,
    pub users: u32,
    pub agents: u32,
    pub idle: u32,
    /// Agents that subscribed and never read.
    pub stuck_agents: u32,
    /// How many of them the server had cut off by the end (slow consumers).
    pub stuck_cut_off: u32,
    /// Closed loop: sends in flight per user.
    pub window: Option<u32>,
    /// Closed loop: messages per user.
    pub messages_per_user: Option<u32>,
    /// Open loop: messages/s offered.
    pub offered_rate: Option<f64>,
    /// Messages the run meant to send.
    pub offered_messages: u64,
    /// From the first send to the last reply or delivery, in seconds.
    pub elapsed_s: f64,
    pub acked: u64,
    pub acked_per_s: f64,
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    /// send → `sent`.
    pub ack_latency: LatencySummary,
    /// send → each agent's `message`.
    pub delivery_latency: LatencySummary,
    /// Open loop: how late the generator wrote each send after its scheduled
    /// time (already included in the latencies above). High values mean the
    /// load generator, not the server, is short of CPU.
    pub send_lag: Option<LatencySummary>,
    pub errors: ErrorCounts,
    /// The part of `errors` seen on agent connections (the rest were users').
    pub agent_errors: ErrorCounts,
    pub server_rss: Option<ServerRss>,
    /// CPU time used while messages were flowing, by this process and the
    /// server: on shared cores every figure above is only meaningful beside it.
    pub cpu: CpuUsed,
    pub checks: Checks,
    /// Every check passed (or was skipped) and there was no error.
    pub passed: bool,
}

/// One node's part of the run: the connections sent to it (round-robin)
/// and the messages its users had acknowledged. Counted per node, never
/// per connection, so spreading costs nothing while messages flow.
#[derive(Debug, Serialize)]
pub struct NodeShare {
    pub server: String,
    pub users: u32,
    pub agents: u32,
    pub idle: u32,
    pub stuck_agents: u32,
    /// Acknowledged sends of the users on this node.
    pub acked: u64,
}

/// The server's resident memory, in KiB (every node's together, given
/// several pids).
#[derive(Debug, Serialize)]
pub struct ServerRss {
    pub pids: Vec<u32>,
    /// Before this run connected anything.
    pub before_kib: Option<u64>,
    /// Once every connection was subscribed, before any message.
    pub connected_kib: Option<u64>,
    /// After the last message, connections still open.
    pub end_kib: Option<u64>,
    /// Connections this run held open (users, agents, idle).
    pub connections: u64,
    /// (connected − before) / connections, in bytes.
    pub per_connection_bytes: Option<f64>,
}

/// CPU seconds (user + system) used from the first send to the last
/// delivery: on a shared machine, whether the server or the generator was
/// short of CPU, and how much of it the generator took from the server.
#[derive(Debug, Serialize)]
pub struct CpuUsed {
    pub load_generator_s: Option<f64>,
    /// `load_generator_s` per acked message, in microseconds.
    pub load_generator_us_per_message: Option<f64>,
    /// Only with --server-pid.
    pub server_s: Option<f64>,
    /// `server_s` per acked message, in microseconds.
    pub server_us_per_message: Option<f64>,
}

impl CpuUsed {
    /// The seconds used, with their cost per message of `acked`.
    pub fn new(load_generator_s: Option<f64>, server_s: Option<f64>, acked: u64) -> CpuUsed {
        let per_message = |seconds: Option<f64>| {
            seconds
                .filter(|_| acked > 0)
                .map(|s| s * 1e6 / acked as f64)
        };
        CpuUsed {
            load_generator_s,
            load_generator_us_per_message: per_message(load_generator_s),
            server_s,
            server_us_per_message: per_message(server_s),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Checks {
    pub delivered_exactly_once: Check,
    pub commit_order: Check,
    /// Read back with `history` after the run.
    pub stored: Check,
}

impl Checks {
    pub fn all(&self) -> [(&'static str, &Check); 3] {
        [
            (
                "every acked message reached every agent exactly once",
                &self.delivered_exactly_once,
            ),
            ("ids increase in commit order", &self.commit_order),
            (
                "every acked message is stored once, with its body (history)",
                &self.stored,
            ),
        ]
    }

    pub fn passed(&self) -> bool {
        self.all().iter().all(|(_, check)| !check.failed())
    }
}

/// `load generator 0.52 s (10.4 µs/message), server 1.20 s (24.0 µs/message)`.
impl fmt::Display for CpuUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = |seconds: Option<f64>, per_message: Option<f64>| match (seconds, per_message) {
            (Some(s), Some(us)) => format!("{s:.2} s ({us:.1} µs/message)"),
            (Some(s), None) => format!("{s:.2} s"),
            _ => "?".to_string(),
        };
        write!(
            f,
            "load generator {}, server {}",
            used(self.load_generator_s, self.load_generator_us_per_message),
            used(self.server_s, self.server_us_per_message)
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.window, self.messages_per_user, self.offered_rate) {
            (Some(window), Some(messages), _) => writeln!(
                f,
                "closed loop on {}: {} users × window {window} × {messages} messages, {} agents, {} idle",
                self.server, self.users, self.agents, self.idle
            )?,
            (_, _, rate) => writeln!(
                f,
                "open loop on {}: {} messages/s offered ({} messages) by {} users, {} agents, {} idle",
                self.server,
                rate.unwrap_or_default(),
                self.offered_messages,
                self.users,
                self.agents,
                self.idle
            )?,
        }
        writeln!(
            f,
            "  acked        {:>9} in {:.2} s   {:>10.0} /s",
            self.acked, self.elapsed_s, self.acked_per_s
        )?;
        writeln!(
            f,
            "  deliveries   {:>9}             {:>10.0} /s",
            self.deliveries, self.deliveries_per_s
        )?;
        if self.nodes.len() > 1 {
            for node in &self.nodes {
                writeln!(
                    f,
                    "  node         {}: {} users, {} agents, {} idle, {} stuck; {} acked",
                    node.server, node.users, node.agents, node.idle, node.stuck_agents, node.acked
                )?;
            }
        }
        writeln!(f, "  CPU          {}", self.cpu)?;
        writeln!(f, "  latency (ms)        p50      p99    p99.9      max")?;
        let rows = [
            ("ack", Some(&self.ack_latency)),
            ("delivery", Some(&self.delivery_latency)),
            ("send lag", self.send_lag.as_ref()),
        ];
        for (name, latency) in rows.into_iter().filter_map(|(n, l)| Some((n, l?))) {
            writeln!(
                f,
                "    {name:<12} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                latency.p50_ms, latency.p99_ms, latency.p99_9_ms, latency.max_ms
            )?;
        }
        if self.errors.total() == 0 {
            writeln!(f, "  errors       none")?;
        } else {
            let mut list = String::new();
            for (code, count) in self.errors.iter() {
                let _ = write!(list, " {code}={count}");
            }
            writeln!(f, "  errors      {list}")?;
            if self.agent_errors.total() > 0 {
                let mut list = String::new();
                for (code, count) in self.agent_errors.iter() {
                    let _ = write!(list, " {code}={count}");
                }
                writeln!(f, "    of which on agent connections:{list}")?;
            }
        }
        if self.stuck_agents > 0 {
            writeln!(
                f,
                "  stuck agents {} that never read; the server cut off {} of them",
                self.stuck_agents, self.stuck_cut_off
            )?;
        }
        if let Some(rss) = &self.server_rss {
            let kib = |v: Option<u64>| v.map_or("?".to_string(), |v| format!("{v} KiB"));
            write!(
                f,
                "  server RSS   before {}, connected {}, end {}",
                kib(rss.before_kib),
                kib(rss.connected_kib),
                kib(rss.end_kib)
            )?;
            match rss.per_connection_bytes {
                Some(bytes) => writeln!(
                    f,
                    "; {:.0} bytes per connection ({} connections)",
                    bytes, rss.connections
                )?,
                None => writeln!(f)?,
            }
        }
        writeln!(f, "  checks")?;
        for (name, check) in self.checks.all() {
            let status = match check.status {
                Status::Passed => "ok",
                Status::Failed => "FAILED",
                Status::Skipped => "skipped",
            };
            write!(f, "    {status:<8} {name} ({} checked)", check.checked)?;
            for (problem, count) in &check.problems {
                write!(f, " {problem}={count}")?;
            }
            writeln!(f)?;
        }
        write!(
            f,
            "  result       {}",
            if self.passed { "PASS" } else { "FAIL" }
        )
    }
}
