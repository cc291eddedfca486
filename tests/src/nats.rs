//! [`TestNats`]: a throwaway `nats-server` for the cluster tests (issue 16),
//! on a free loopback port with its log in a temporary directory; killed when
//! dropped, so tests can run in parallel.
//!
//! The failure tests treat the bus as something that dies and stalls, so it
//! can be killed ([`TestNats::stop`]), started again on the same port
//! ([`TestNats::start_again`], [`TestNats::restart`]), and frozen with SIGSTOP
//! and thawed with SIGCONT ([`TestNats::freeze`], [`TestNats::thaw`]): a frozen
//! server keeps its connections open and answers nothing, the case a client
//! can only tell by a timeout.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use rustix::process::{Pid, Signal, kill_process};

use crate::throwaway::{
    POLL_INTERVAL, PORT_ATTEMPTS, STARTUP_TIMEOUT, find_program, free_port, port_taken, read_log,
    require,
};

/// The line that installs what this module needs.
const INSTALL: &str = "apt-get install nats-server";

/// What `nats-server` logs once it accepts clients.
const READY_LINE: &str = "Server is ready";

/// A running throwaway `nats-server`.
pub struct TestNats {
    /// Holds the log; removed on drop.
    dir: tempfile::TempDir,
    program: PathBuf,
    port: u16,
    /// `None` after [`TestNats::stop`].
    child: Option<Child>,
}

impl TestNats {
    /// A server accepting clients. `None` only when `nats-server` is missing
    /// and the skip variable is set (see [`crate::throwaway`]); missing
    /// otherwise, the test fails with `apt-get install nats-server`.
    pub fn start() -> Option<TestNats> {
        let program = require("nats-server", find_program("nats-server"), INSTALL)?;
        let dir = tempfile::Builder::new()
            .prefix("switchboard-nats-")
            .tempdir()
            .expect("create a temporary directory for nats-server");
        let mut nats = TestNats {
            dir,
            program,
            port: free_port(),
            child: None,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            match nats.try_start() {
                Ok(()) => return Some(nats),
                Err(log) if port_taken(&log) && attempt < PORT_ATTEMPTS => {
                    nats.port = free_port();
                }
                Err(log) => nats.fail_to_start(&log),
            }
        }
        unreachable!("the last attempt either returns or fails the test")
    }

    /// Where a client connects: `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client address, the same across [`TestNats::restart`].
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Kills the server (SIGKILL) and reaps it: every client loses its
    /// connection, and nothing it held is flushed.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("nats-server is running");
        child.kill().expect("SIGKILL nats-server");
        child.wait().expect("reap nats-server");
    }

    /// Starts the server again on the same port after [`TestNats::stop`],
    /// and waits until it accepts clients.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "nats-server is still running");
        if let Err(log) = self.try_start() {
            self.fail_to_start(&log);
        }
    }

    /// [`TestNats::stop`] then [`TestNats::start_again`]: the same URL
    /// serves again, with no subscriptions (core NATS keeps none).
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Stops the server with SIGSTOP: its connections stay open and it
    /// answers nothing until [`TestNats::thaw`].
    pub fn freeze(&self) {
        self.signal(Signal::STOP);
        self.wait_until_stopped();
    }

    /// SIGSTOP is asynchronous: `kill` returns before every thread of the
    /// server has stopped, and one still running can accept a connection
    /// and greet it (`frozen_nats_says_nothing_until_thawed` saw `INFO`
    /// from a "frozen" server). Waits, up to [`STARTUP_TIMEOUT`], until
    /// /proc shows every thread stopped.
    fn wait_until_stopped(&self) {
        let pid = self.child.as_ref().expect("nats-server is running").id();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while !every_thread_stopped(pid) {
            assert!(
                Instant::now() < deadline,
                "nats-server (pid {pid}) had not stopped {STARTUP_TIMEOUT:?} after SIGSTOP"
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Resumes a [`TestNats::freeze`]d server with SIGCONT.
    pub fn thaw(&self) {
        self.signal(Signal::CONT);
    }

    /// For a server that is never dropped (see [`crate::shared_nats`]): a
    /// watchdog, in a process group of its own so that a Ctrl-C to the tests
    /// does not take it down first, waits for this process to end however it
    /// ends, then kills the server and removes its directory. The server is
    /// still this process's child until then, so its pid is not reused; the
    /// watchdog checks the process's name anyway before it kills.
    pub(crate) fn stop_when_this_process_exits(&self) {
        let server = self.child.as_ref().expect("nats-server is running").id();
        // /proc/PID/comm holds at most 15 bytes of the program's name.
        let name: String = self
            .program
            .file_name()
            .map(|name| name.to_string_lossy().chars().take(15).collect())
            .unwrap_or_default();
        // The shell starts the watchdog in the background and exits at
        // once: waited for here, it leaves no zombie, and the watchdog,
        // orphaned, outlives this process.
        let started = Command::new("sh")
            .arg("-c")
            .arg(
                "pid=$1; server=$2; name=$3; dir=$4; \
                 ( while kill -0 \"$pid\" 2>/dev/null; do sleep 0.5; done; \
                   if [ \"$(cat /proc/$server/comm 2>/dev/null)\" = \"$name\" ]; then \
                     kill -9 \"$server\"; fi; \
                   rm -rf \"$dir\" ) &",
            )
            .arg("watchdog")
            .arg(std::process::id().to_string())
            .arg(server.to_string())
            .arg(name)
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .expect("start the watchdog that stops the shared nats-server");
        assert!(started.success(), "the watchdog's shell failed: {started}");
    }

    /// Everything the server has logged, across restarts.
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// The log after its first `offset` bytes: what the latest run wrote.
    fn log_since(&self, offset: u64) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        let offset = usize::try_from(offset).map_or(log.len(), |offset| offset.min(log.len()));
        String::from_utf8_lossy(&log[offset..]).into_owned()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().expect("nats-server is running");
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(Pid::from_raw)
            .expect("a child's pid is a positive i32");
        kill_process(pid, signal).expect("signal nats-server");
    }

    /// Starts `nats-server` with its output appended to the log, then waits
    /// up to [`STARTUP_TIMEOUT`] until this server logs that it is ready.
    /// Its own log, not a connection: a parallel test's server that won the
    /// race for the port would answer a connection too. On failure the
    /// server is gone and the error holds its log.
    fn try_start(&mut self) -> Result<(), String> {
        let log = self.open_log();
        let earlier_runs = log.metadata().map_or(0, |meta| meta.len());
        let mut child = Command::new(&self.program)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("share the log file"))
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let exited = child.try_wait().expect("check on nats-server");
            if exited.is_none() && self.log_since(earlier_runs).contains(READY_LINE) {
                self.child = Some(child);
                return Ok(());
            }
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let status = child.wait().ok();
                return Err(format!(
                    "nats-server exited with {status:?}; log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn fail_to_start(&self, log: &str) -> ! {
        panic!(
            "nats-server did not accept clients on {} within {STARTUP_TIMEOUT:?}: {log}",
            self.addr()
        );
    }

    fn open_log(&self) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open nats-server's log file")
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        // SIGKILL ends a frozen server too.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- nats-server's log ---\n{}", self.log());
        }
    }
}

/// Whether every thread of process `pid` is stopped (state `T`, or `t`
/// under a tracer), read from /proc/PID/task/*/stat: the state is the
/// field after the command name, which is in parentheses and may hold
/// spaces, so it is read after the last `)`.
fn every_thread_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state == 'T' || state == 't')
        })
    })
}
