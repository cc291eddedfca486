//! One `switchboard serve` child process: the command line it starts with,
//! the thread that drains its stderr, and the `listening on` line that says
//! where it accepts connections. [`crate::TestServer`] starts every one of
//! its nodes ([`crate::nodes`]) from one `Launch`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::bins::switchboard_bin;
use crate::store::TestStore;

/// How long the server may take to print its `listening on` line, or to exit
/// after SIGTERM.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// How many of the server's last stderr lines are kept, to print when a test fails.
const LOG_LINES_KEPT: usize = 200;

/// The server's recent stderr, shared with the thread that drains the pipe.
#[derive(Clone, Default)]
pub(crate) struct ServerLog(Arc<Mutex<VecDeque<String>>>);

impl ServerLog {
    /// The kept lines, oldest first, one per line. A panic in the drain thread
    /// while it held the lock leaves the lines intact, so a poisoned lock is
    /// read anyway: the log is what explains the failure.
    pub(crate) fn text(&self) -> String {
        let log = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Keeps `line`, forgetting the oldest once [`LOG_LINES_KEPT`] are kept.
    fn push(&self, line: String) {
        let mut log = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if log.len() == LOG_LINES_KEPT {
            log.pop_front();
        }
        log.push_back(line);
    }
}

/// How a server is started: its extra `serve` flags, environment,
/// open-file limit and bus. Kept so that a restart starts it the same way,
/// and shared by the nodes of a cluster, which all start the same way.
pub(crate) struct Launch {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// The open-file limit the server starts with (`prlimit`), if set.
    open_files: Option<u64>,
    /// The NATS URL of a cluster's bus (`--nats`), if any.
    bus: Option<String>,
}

impl Launch {
    pub(crate) fn new(args: &[&str], envs: &[(&str, &str)], open_files: Option<u64>) -> Launch {
        Launch {
            args: args.iter().map(|arg| arg.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            open_files,
            bus: None,
        }
    }

    /// The same launch with `--nats URL`: a node of a cluster.
    pub(crate) fn on_bus(self, url: String) -> Launch {
        Launch {
            bus: Some(url),
            ..self
        }
    }

    /// Gives `flag`, one that takes a value as the next argument (`--flag
    /// VALUE`, not `--flag=VALUE`), the value `value`: in place of the one
    /// it had, or added.
    pub(crate) fn set_flag(&mut self, flag: &str, value: &str) {
        match self.args.iter().position(|arg| arg == flag) {
            Some(at) if at + 1 < self.args.len() => self.args[at + 1] = value.to_owned(),
            _ => self.args.extend([flag.to_owned(), value.to_owned()]),
        }
    }

    /// Whether the test names the store itself, through the environment.
    pub(crate) fn sets_store(&self) -> bool {
        self.env_sets("SWITCHBOARD_DB") || self.env_sets("SWITCHBOARD_POSTGRES")
    }

    /// Whether the test names the address to listen on, through the
    /// environment: one address, so one node.
    pub(crate) fn fixes_listen(&self) -> bool {
        self.env_sets("SWITCHBOARD_LISTEN")
    }

    /// Whether the environment sets `key`, whose flag is then left out.
    fn env_sets(&self, key: &str) -> bool {
        self.envs.iter().any(|(k, _)| k == key)
    }

    /// Starts `switchboard serve` on the store `db` and reads its stderr
    /// until `listening on ADDR`. A thread keeps draining stderr afterwards so
    /// the pipe never fills up and blocks the server. When the environment
    /// sets `SWITCHBOARD_DB`, `SWITCHBOARD_POSTGRES`, `SWITCHBOARD_LISTEN` or
    /// `SWITCHBOARD_NATS`, the matching flag is left out so that the value
    /// really comes from the environment. `name` says which server a failure
    /// is about (`switchboard serve`, or one node of several).
    pub(crate) fn spawn(&self, db: &TestStore, name: &str) -> (Child, SocketAddr, ServerLog) {
        let mut command = match self.open_files {
            Some(files) => {
                let mut prlimit = Command::new("prlimit");
                prlimit
                    .arg(format!("--nofile={files}:{files}"))
                    .arg("--")
                    .arg(switchboard_bin());
                prlimit
            }
            None => Command::new(switchboard_bin()),
        };
        command.arg("serve");
        if !self.fixes_listen() {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        if !self.env_sets(db.env_key()) {
            command.args(db.flag());
        }
        if let Some(url) = &self.bus
            && !self.env_sets("SWITCHBOARD_NATS")
        {
            command.args(["--nats", url]);
        }
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start switchboard serve");
        let stderr = child.stderr.take().expect("stderr is piped");

        let log = ServerLog::default();
        let (found, listening) = mpsc::channel();
        let thread_log = log.clone();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { break };
                let line = strip_ansi(&String::from_utf8_lossy(&line));
                let listening = parse_listening(&line);
                // Kept before the address is sent: once `spawn` returns, the
                // `listening on` line is in the log (a cluster's last node
                // had none yet when a test read every node's log at once).
                thread_log.push(line);
                if let Some(addr) = listening
                    && let Some(found) = found.take()
                {
                    let _ = found.send(addr);
                }
            }
        });

        match listening.recv_timeout(PROCESS_TIMEOUT) {
            Ok(addr) => (child, addr, log),
            Err(reason) => {
                let _ = child.kill();
                let status = child.wait().ok();
                // The drain thread may not have read the pipe to its end yet:
                // this prints the lines it has so far.
                panic!(
                    "{name} did not log `listening on 127.0.0.1:PORT` ({reason:?}, \
                     exit status {status:?}); stderr:\n{}",
                    log.text()
                );
            }
        }
    }
}

/// The address in a `... listening on 127.0.0.1:PORT ...` log line.
fn parse_listening(line: &str) -> Option<SocketAddr> {
    let after = &line[line.find("listening on")?..];
    let start = after.find("127.0.0.1:")?;
    let rest = &after[start + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    format!("127.0.0.1:{digits}").parse().ok()
}

/// The address in a `... metrics on http://127.0.0.1:PORT ...` log line.
pub(crate) fn parse_metrics_line(line: &str) -> Option<SocketAddr> {
    let after = &line[line.find("metrics on http://")? + "metrics on http://".len()..];
    let address: String = after
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '/')
        .collect();
    address.parse().ok()
}

/// Removes terminal colour codes, in case the log is coloured anyway.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters final-letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_port_in_a_log_line() {
        let line = "2026-11-24T11:16:27Z  INFO switchboard: listening on 127.0.0.1:40123";
        assert_eq!(
            parse_listening(line),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        let line = "INFO listening on addr=127.0.0.1:7 more";
        assert_eq!(parse_listening(line), Some("127.0.0.1:7".parse().unwrap()));
        assert_eq!(parse_listening("INFO starting"), None);
    }

    #[test]
    fn finds_the_metrics_address_and_not_as_the_protocol_port() {
        let line = "INFO switchboard_server::metrics::endpoint: metrics on http://127.0.0.1:9100 \
                    (GET /metrics, GET /healthz)";
        assert_eq!(
            parse_metrics_line(line),
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(
            parse_listening(line),
            None,
            "not taken for the protocol's port"
        );
    }

    #[test]
    fn strips_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[32mINFO\u{1b}[0m listening"),
            "INFO listening"
        );
    }
}
