//! The command line, and the run plan it describes.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use switchboard_protocol::parse_server_list;

use crate::error::LoadError;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-load",
    version,
    about = "Load generator for a switchboard server: drives users and agents, measures, and checks every message",
    long_about = "Load generator for a switchboard server.\n\n\
        It opens --users user connections and --agents agent connections to a running server \
        (loopback only), drives the users, and reports acked messages/s, deliveries/s, ack latency \
        (send -> `sent`) and delivery latency (send -> each agent's `message`) at p50/p99/p99.9/max, \
        errors by code and, with --server-pid, the server's memory.\n\n\
        It checks what it measures: every acked message must reach every agent exactly once, in \
        commit order, and be stored: afterwards one agent connection reads every user's \
        conversation back with `history` (over the wire; the database file is never read). Any \
        error or failed check makes the exit status 1; a run that cannot start exits with 2.\n\n\
        Two ways to drive the users:\n  \
        closed loop (default): each user keeps --window sends in flight until it has sent --messages;\n  \
        open loop (--rate): --rate messages/s in total for --duration seconds, on a fixed schedule; \
        latency counts from the scheduled send time, so a slow server cannot hide its backlog.\n\n\
        Agents are provisioned by running `switchboard agent add` on --db, or given with \
        --agent-tokens. Start the server with `--no-send-limits`, or its send limits (per \
        connection, per user, per address) will answer `rate_limited`.\n\n\
        Example:\n  \
        switchboard serve --listen 127.0.0.1:7979 --db /tmp/x.db --no-send-limits &\n  \
        switchboard-load --server 127.0.0.1:7979 --db /tmp/x.db --switchboard target/release/switchboard \\\n      \
        --users 50 --agents 4 --window 1 --messages 200\n  \
        switchboard-load --server 127.0.0.1:7979 --db /tmp/x.db --users 1000 --rate 10000 --duration 5 --json\n\n\
        A cluster of three nodes, users and agents spread over them round-robin:\n  \
        switchboard-load --server 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 \\\n      \
        --agents 2 --agent-tokens alice=T1,bob=T2 --users 200 --window 16 --server-pid P1,P2,P3"
)]
pub struct Args {
    /// Address of the server, e.g. 127.0.0.1:7878; for a cluster, each node's, separated by
    /// commas (127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003): users and agents are spread over
    /// them round-robin (user i and agent i on node i mod N), and the report counts the
    /// connections each node got. Only loopback addresses are accepted.
    #[arg(
        long,
        env = "SWITCHBOARD_LOAD_SERVER",
        default_value = "127.0.0.1:7878"
    )]
    pub server: String,

    /// The server's SQLite file, used only to provision agents (`switchboard agent add`);
    /// results are checked over the wire, never in this file. Without it, give
    /// --agent-tokens.
    #[arg(long, env = "SWITCHBOARD_LOAD_DB")]
    pub db: Option<PathBuf>,

    /// The `switchboard` binary used to provision agents (`switchboard agent add NAME --db FILE`).
    /// Default: the `switchboard` next to this program, else the one on PATH.
    #[arg(long, env = "SWITCHBOARD_LOAD_SWITCHBOARD")]
    pub switchboard: Option<PathBuf>,

    /// Existing agents to connect as, `name=token,name=token`, instead of provisioning
    /// new ones; --agents is then their number.
    #[arg(long, env = "SWITCHBOARD_LOAD_AGENT_TOKENS", value_parser = parse_agent_token, value_delimiter = ',')]
    pub agent_tokens: Vec<(String, String)>,

    /// User connections that send messages.
    #[arg(long, env = "SWITCHBOARD_LOAD_USERS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub users: u32,

    /// Agent connections; each must receive every message.
    #[arg(long, env = "SWITCHBOARD_LOAD_AGENTS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub agents: u32,

    /// Closed loop: sends each user keeps in flight.
    #[arg(long, env = "SWITCHBOARD_LOAD_WINDOW", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub window: u32,

    /// Closed loop: messages each user sends.
    #[arg(long, env = "SWITCHBOARD_LOAD_MESSAGES", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub messages: u32,

    /// Open loop: messages per second offered in total, spread evenly over the users on a
    /// fixed schedule. Selects the open loop.
    #[arg(long, env = "SWITCHBOARD_LOAD_RATE")]
    pub rate: Option<f64>,

    /// Open loop: seconds of offered load (the run sends rate × duration messages).
    #[arg(long, env = "SWITCHBOARD_LOAD_DURATION", default_value_t = 5.0)]
    pub duration: f64,

    /// Extra users that only say hello, subscribe, and hold their connection during the run.
    #[arg(long, env = "SWITCHBOARD_LOAD_IDLE", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub idle: u32,

    /// Extra agents that subscribe and then never read: the server should cut each
    /// off as a slow consumer while everyone else's latency stays as it was (run once
    /// with and once without to compare). Provisioned like --agents (needs --db).
    #[arg(long, env = "SWITCHBOARD_LOAD_STUCK_AGENTS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub stuck_agents: u32,

    /// The server's process id, to report its resident memory (read from /proc/PID/status)
    /// before connecting, once everyone is connected, and at the end, and its CPU time. For a
    /// cluster, every node's, separated by commas: memory and CPU are then their sums.
    #[arg(long, env = "SWITCHBOARD_LOAD_SERVER_PID", value_delimiter = ',')]
    pub server_pid: Vec<u32>,

    /// Give up after this many seconds, whatever is still in flight (counted as `timeout`
    /// errors). Bounds the whole run, connecting included; reading the conversations
    /// back afterwards gets as long again.
    #[arg(long, env = "SWITCHBOARD_LOAD_TIMEOUT", default_value_t = 120.0)]
    pub timeout: f64,

    /// Threads the load generator runs its connections on. 1 (the default): all on one
    /// thread, with no cross-thread wake-ups or work stealing; on a machine it shares with
    /// the server, every cycle it spends is one the server does not get. Raise it only if
    /// the report shows the generator itself short of CPU (its CPU seconds close to the
    /// elapsed seconds, or a send lag in the open loop).
    #[arg(long, env = "SWITCHBOARD_LOAD_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,

    /// Print the report as one JSON object on stdout instead of text.
    #[arg(long, env = "SWITCHBOARD_LOAD_JSON")]
    pub json: bool,
}

/// How users are driven.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Closed { window: u32, messages: u32 },
    Open { rate: f64, total: u64 },
}

/// A validated [`Args`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// The nodes, in the order given; at least one.
    pub servers: Vec<SocketAddr>,
    pub users: u32,
    pub agents: u32,
    pub idle: u32,
    pub stuck_agents: u32,
    pub mode: Mode,
    pub timeout: Duration,
}

impl Plan {
    /// The node connection `index` of a kind (user, agent, idle, stuck
    /// agent) goes to: round-robin, so each kind is spread evenly.
    pub fn node(&self, index: u32) -> SocketAddr {
        self.servers[index as usize % self.servers.len()]
    }

    /// How many of `count` connections of a kind [`Plan::node`] sends to
    /// each node, in the order of [`Plan::servers`].
    pub fn per_node(&self, count: u32) -> Vec<u32> {
        let nodes = self.servers.len() as u32;
        (0..nodes)
            .map(|node| count / nodes + u32::from(node < count % nodes))
            .collect()
    }
}

/// The most messages one open-loop run may offer.
const MAX_OPEN_LOOP_MESSAGES: f64 = 100_000_000.0;

impl Args {
    pub fn plan(&self) -> Result<Plan, LoadError> {
        let servers = parse_server_list(&self.server)
            .map_err(|error| LoadError::Usage(format!("--server: {error}")))?
            .iter()
            .map(|address| loopback_address(address))
            .collect::<Result<Vec<_>, _>>()?;
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 86_400.0) {
            return Err(LoadError::Usage(
                "--timeout must be a number of seconds above 0 (at most a day)".into(),
            ));
        }
        let mode = match self.rate {
            None => Mode::Closed {
                window: self.window,
                messages: self.messages,
            },
            Some(rate) => {
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(LoadError::Usage(
                        "--rate must be messages per second above 0".into(),
                    ));
                }
                if !(self.duration.is_finite() && self.duration > 0.0) {
                    return Err(LoadError::Usage(
                        "--duration must be seconds above 0".into(),
                    ));
                }
                let total = (rate * self.duration).round();
                if !(1.0..=MAX_OPEN_LOOP_MESSAGES).contains(&total) {
                    return Err(LoadError::Usage(format!(
                        "--rate × --duration must be between 1 and {MAX_OPEN_LOOP_MESSAGES} messages"
                    )));
                }
                Mode::Open {
                    rate,
                    total: total as u64,
                }
            }
        };
        if !self.agent_tokens.is_empty() && self.agent_tokens.len() != self.agents as usize {
            return Err(LoadError::Usage(format!(
                "--agent-tokens names {} agents but --agents is {}",
                self.agent_tokens.len(),
                self.agents
            )));
        }
        if self.agent_tokens.is_empty() && self.agents > 0 && self.db.is_none() {
            return Err(LoadError::Usage(
                "give --db (to provision agents) or --agent-tokens".into(),
            ));
        }
        Ok(Plan {
            servers,
            users: self.users,
            agents: self.agents,
            idle: self.idle,
            stuck_agents: self.stuck_agents,
            mode,
            timeout: Duration::from_secs_f64(self.timeout),
        })
    }
}

/// The first address `text` resolves to, refusing anything that is not loopback:
/// this tool floods what it points at.
fn loopback_address(text: &str) -> Result<SocketAddr, LoadError> {
    let addresses: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|error| LoadError::Usage(format!("--server {text}: {error}")))?
        .collect();
    match addresses.first() {
        None => Err(LoadError::Usage(format!(
            "--server {text} resolves to nothing"
        ))),
        Some(_) if addresses.iter().any(|a| !a.ip().is_loopback()) => {
            Err(LoadError::Usage(format!(
                "--server {text} is not a loopback address; switchboard-load only targets this machine"
            )))
        }
        Some(first) => Ok(*first),
    }
}

fn parse_agent_token(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, token)) if !name.is_empty() && !token.is_empty() => {
            Ok((name.to_string(), token.to_string()))
        }
        _ => Err(format!("expected name=token, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["switchboard-load", "--db", "/tmp/x.db"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("parses")
    }

    #[test]
    fn only_loopback_servers_are_accepted() {
        assert!(args(&["--server", "127.0.0.1:1"]).plan().is_ok());
        assert!(args(&["--server", "[::1]:1"]).plan().is_ok());
        assert!(args(&["--server", "10.0.0.1:1"]).plan().is_err());
        assert!(args(&["--server", "8.8.8.8:53"]).plan().is_err());
    }

    #[test]
    fn several_servers_are_kept_in_order_and_each_checked() {
        let plan = args(&["--server", "127.0.0.1:1, 127.0.0.1:2,[::1]:3"])
            .plan()
            .expect("valid");
        let servers: Vec<String> = plan.servers.iter().map(|s| s.to_string()).collect();
        assert_eq!(servers, ["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"]);
        let refused = |list: &str| match args(&["--server", list]).plan() {
            Err(error) => error.to_string(),
            Ok(plan) => panic!("{list}: accepted as {:?}", plan.servers),
        };
        assert!(refused("127.0.0.1:1,,127.0.0.1:2").contains("entry 2"));
        assert!(refused("127.0.0.1:1,127.0.0.1:1").contains("listed twice"));
        assert!(refused("127.0.0.1:1,10.0.0.1:2").contains("not a loopback address"));
    }

    #[test]
    fn connections_go_round_robin_and_are_counted_per_node() {
        let plan = args(&["--server", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"])
            .plan()
            .expect("valid");
        let ports: Vec<u16> = (0..7).map(|i| plan.node(i).port()).collect();
        assert_eq!(ports, [1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(plan.per_node(7), [3, 2, 2]);
        assert_eq!(plan.per_node(2), [1, 1, 0]);
        assert_eq!(plan.per_node(0), [0, 0, 0]);
    }

    #[test]
    fn rate_selects_the_open_loop() {
        let plan = args(&["--rate", "1000", "--duration", "2"])
            .plan()
            .expect("valid");
        assert_eq!(
            plan.mode,
            Mode::Open {
                rate: 1000.0,
                total: 2000
            }
        );
        let plan = args(&["--window", "16", "--messages", "7"])
            .plan()
            .expect("valid");
        assert_eq!(
            plan.mode,
            Mode::Closed {
                window: 16,
                messages: 7
            }
        );
        assert!(args(&["--rate", "0"]).plan().is_err());
    }

    #[test]
    fn agent_tokens_must_match_the_agent_count() {
        let parsed = args(&["--agents", "2", "--agent-tokens", "a=x,b=y"]);
        assert_eq!(
            parsed.agent_tokens,
            vec![("a".into(), "x".into()), ("b".into(), "y".into())]
        );
        assert!(parsed.plan().is_ok());
        assert!(
            args(&["--agents", "3", "--agent-tokens", "a=x"])
                .plan()
                .is_err()
        );
        assert!(Args::try_parse_from(["switchboard-load", "--agent-tokens", "nope"]).is_err());
    }
}
