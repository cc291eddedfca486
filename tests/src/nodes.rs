//! The `switchboard serve` processes behind one [`crate::TestServer`]: one
//! node, or [`crate::store::CLUSTER_NODES`] on one database and one bus in
//! cluster mode ([`crate::store`]). What a test does to its server (a
//! restart, a signal) it does to every node; where a test needs one address,
//! the nodes take turns, so a test's clients are spread over the cluster.
//!
//! Nodes are counted from 0, in the order they start: node 0 is the first,
//! and its log lines read `[node 0] …` when there are several.

use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::process::{Launch, PROCESS_TIMEOUT, ServerLog};
use crate::store::TestStore;

/// How long a wait for a log line gives the line to reach the kept log.
const LOG_LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a wait for a process or for a log looks again. std has no
/// wait with a timeout, so the waits poll; short, as only a test waits.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One `switchboard serve` process; between a stop and the next start, its
/// last address and log.
struct Node {
    /// `switchboard serve`, or `switchboard serve [node N]` in a cluster:
    /// which process a failure is about.
    name: String,
    /// `None` once the process has exited and been reaped.
    child: Option<Child>,
    addr: SocketAddr,
    log: ServerLog,
}

/// Every node of one [`crate::TestServer`], and whose turn it is.
pub(crate) struct Nodes {
    nodes: Vec<Node>,
    /// How many addresses [`Nodes::next_addr`] has handed out: the next
    /// goes to node `turn % nodes.len()`.
    turn: AtomicUsize,
}

impl Nodes {
    /// `count` nodes (at least one) started from `launch` on `store`, one
    /// after another: each once the one before logged `listening on`, so
    /// that a node that fails to start is named and a cluster's first node
    /// has set the database up before the next one opens it.
    pub(crate) fn start(count: usize, launch: &Launch, store: &TestStore) -> Nodes {
        assert!(count > 0, "a server has at least one node");
        let nodes = (0..count)
            .map(|index| Node::start(node_name(index, count), launch, store))
            .collect();
        Nodes {
            nodes,
            turn: AtomicUsize::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The address of the node whose turn it is; the next call gets the
    /// next node's, round-robin.
    pub(crate) fn next_addr(&self) -> SocketAddr {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        self.nodes[turn % self.nodes.len()].addr
    }

    /// The address of node `node` (counted from 0).
    pub(crate) fn addr(&self, node: usize) -> SocketAddr {
        match self.nodes.get(node) {
            Some(found) => found.addr,
            None => panic!(
                "there is no node {node}: this server has {} (counted from 0)",
                self.nodes.len()
            ),
        }
    }

    /// The first node's process id.
    pub(crate) fn first_pid(&self) -> u32 {
        self.nodes[0].pid()
    }

    /// Starts every node again, one after another, on `store` (on new
    /// ports), once every node has stopped.
    pub(crate) fn start_again(&mut self, launch: &Launch, store: &TestStore) {
        assert!(
            self.nodes.iter().all(|node| node.child.is_none()),
            "the server is still running"
        );
        for node in &mut self.nodes {
            *node = Node::start(std::mem::take(&mut node.name), launch, store);
        }
    }

    /// SIGKILL to every node (no chance to flush anything), and reaps them.
    pub(crate) fn kill(&mut self) {
        for node in &mut self.nodes {
            let mut child = node.child.take().expect("the server is running");
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the killed server");
        }
    }

    /// Sends `kill -<signal>` (e.g. `"TERM"`) to every node, without waiting.
    pub(crate) fn signal(&self, signal: &str) {
        for node in &self.nodes {
            send(signal, node.pid());
        }
    }

    /// Sends `kill -<signal>` to every node, then waits, up to
    /// [`PROCESS_TIMEOUT`], for every one to exit: all stop at once, as when
    /// an operator stops a cluster. The first node's status that is not a
    /// success, or success.
    pub(crate) fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        self.signal(signal);
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let statuses: Vec<ExitStatus> = self
            .nodes
            .iter_mut()
            .map(|node| node.wait(signal, deadline))
            .collect();
        first_failure(&statuses)
    }

    /// Every node's last lines of stderr; with several nodes, node by node,
    /// each line prefixed `[node N] `.
    pub(crate) fn log(&self) -> String {
        let logs: Vec<String> = self.nodes.iter().map(|node| node.log.text()).collect();
        combined_log(&logs)
    }

    /// The first line of [`Nodes::log`] that contains `needle`, waiting for it.
    pub(crate) fn log_line(&self, needle: &str) -> String {
        wait_for_line(needle, || self.log())
    }

    /// The first line of the first node's log that contains `needle`,
    /// waiting for it.
    pub(crate) fn first_log_line(&self, needle: &str) -> String {
        wait_for_line(needle, || self.nodes[0].log.text())
    }
}

impl Node {
    fn start(name: String, launch: &Launch, store: &TestStore) -> Node {
        let (child, addr, log) = launch.spawn(store, &name);
        Node {
            name,
            child: Some(child),
            addr,
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Waits until the process exits, failing the test with its log if it
    /// is still running at `deadline` (it is then killed when dropped): a
    /// server that never exits must fail the test, not hang it.
    fn wait(&mut self, signal: &str, deadline: Instant) -> ExitStatus {
        let child = self.child.as_mut().expect("the server is running");
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running {PROCESS_TIMEOUT:?} after SIG{signal}; stderr:\n{}",
                self.name,
                self.log.text()
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What failures call node `index` of `count`.
fn node_name(index: usize, count: usize) -> String {
    if count == 1 {
        "switchboard serve".to_owned()
    } else {
        format!("switchboard serve [node {index}]")
    }
}

/// `kill -<signal> <pid>`, failing the test if `kill` fails.
fn send(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// The first status that is not a success, or the first (a success).
fn first_failure(statuses: &[ExitStatus]) -> ExitStatus {
    statuses
        .iter()
        .find(|status| !status.success())
        .or(statuses.first())
        .copied()
        .expect("a server has at least one node")
}

/// One node's log as it is; several nodes' one after another, each line
/// prefixed `[node N] ` so that a failure says which node wrote what.
fn combined_log(logs: &[String]) -> String {
    if let [only] = logs {
        return only.clone();
    }
    logs.iter()
        .enumerate()
        .flat_map(|(node, log)| log.lines().map(move |line| format!("[node {node}] {line}")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first line of `read()` that contains `needle`, reading again for up
/// to [`LOG_LINE_TIMEOUT`]: another thread drains each pipe, so a line a
/// server just wrote may not be in its kept log yet.
fn wait_for_line(needle: &str, read: impl Fn() -> String) -> String {
    let deadline = Instant::now() + LOG_LINE_TIMEOUT;
    loop {
        let log = read();
        if let Some(line) = log.lines().find(|line| line.contains(needle)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needle:?} in the log:\n{log}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    /// Nodes that were never started, at ports 1, 2, …: enough for the turns.
    fn stopped(count: u16) -> Nodes {
        let nodes = (1..=count)
            .map(|port| Node {
                name: node_name(usize::from(port - 1), usize::from(count)),
                child: None,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                log: ServerLog::default(),
            })
            .collect();
        Nodes {
            nodes,
            turn: AtomicUsize::new(0),
        }
    }

    #[test]
    fn addresses_go_round_robin() {
        let nodes = stopped(3);
        let ports: Vec<u16> = (0..7).map(|_| nodes.next_addr().port()).collect();
        assert_eq!(ports, [1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(nodes.addr(2).port(), 3, "counted from 0");
        let one = stopped(1);
        assert_eq!(one.next_addr(), one.next_addr());
    }

    #[test]
    fn a_node_past_the_last_is_refused_with_the_count() {
        let nodes = stopped(3);
        let missing = std::panic::catch_unwind(|| nodes.addr(3));
        let panic = missing.expect_err("there is no node 3");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(
            message.contains("this server has 3 (counted from 0)"),
            "{message}"
        );
    }

    #[test]
    fn a_cluster_stopped_well_only_if_every_node_did() {
        let ok = ExitStatus::from_raw(0);
        let exit_1 = ExitStatus::from_raw(1 << 8);
        let killed = ExitStatus::from_raw(9);
        assert_eq!(first_failure(&[ok]), ok);
        assert_eq!(first_failure(&[ok, ok, ok]), ok);
        assert_eq!(first_failure(&[ok, exit_1, killed]), exit_1);
        assert_eq!(first_failure(&[killed, exit_1]), killed);
    }

    #[test]
    fn several_logs_name_their_node_on_every_line() {
        let one = ["INFO listening on 127.0.0.1:1\nINFO stopped".to_owned()];
        assert_eq!(combined_log(&one), one[0], "one node's log as it is");
        let three = ["a\nb".to_owned(), String::new(), "c".to_owned()];
        assert_eq!(combined_log(&three), "[node 0] a\n[node 0] b\n[node 2] c");
    }

    #[test]
    fn a_line_is_found_in_any_nodes_log() {
        let log = combined_log(&["x".to_owned(), "y needle".to_owned()]);
        assert_eq!(wait_for_line("needle", || log.clone()), "[node 1] y needle");
    }
}
