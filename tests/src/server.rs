//! [`TestServer`]: one `switchboard serve` on `127.0.0.1:0` with its own
//! database in a temporary directory, and what a test does to it from the
//! outside: the CLI on its database, restarts, SIGTERM, SIGKILL and its log.
//! Killed when dropped, so tests can run in parallel.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::bins::switchboard_bin;
use crate::client::TestClient;
use crate::deployment::Deployment;
use crate::process::{Launch, PROCESS_TIMEOUT, ServerLog, parse_metrics_line};
use crate::store::{TEST_STORE_ENV, TestStore, postgres_requested};

/// How long [`TestServer::log_line`] waits for a line to reach the kept log.
const LOG_LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a wait for the process or for its log looks again. std has no
/// wait with a timeout, so the waits poll; short, as only a test waits.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A running `switchboard serve`, with its own temporary database.
pub struct TestServer {
    /// Holds the database; removed when the server is dropped.
    dir: tempfile::TempDir,
    /// The SQLite file in `dir`, or a fresh PostgreSQL database.
    store: TestStore,
    launch: Launch,
    child: Option<Child>,
    addr: SocketAddr,
    log: ServerLog,
}

impl TestServer {
    /// A server with the default limits.
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    /// A server with extra `serve` flags, e.g. `&["--max-body", "10"]`.
    pub fn start_with(args: &[&str]) -> TestServer {
        TestServer::start_with_env(args, &[])
    }

    /// A server with extra flags and environment variables. When `envs` sets
    /// `SWITCHBOARD_DB` or `SWITCHBOARD_LISTEN`, the matching flag is left out so
    /// that the value really comes from the environment.
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> TestServer {
        TestServer::start_limited(Launch::new(args, envs, None))
    }

    /// A server started with a soft and hard open-file limit of `files`
    /// (through `prlimit`, from util-linux).
    pub fn start_with_open_files(files: u64, args: &[&str]) -> TestServer {
        TestServer::start_limited(Launch::new(args, &[], Some(files)))
    }

    /// A server on a SQLite file in its own directory ([`TestServer::db`]),
    /// whatever [`crate::store::TEST_STORE_ENV`] says: for tests about the
    /// file itself (a lock on it, a broken write into it, `switchboard copy`
    /// reading it), which mean nothing on PostgreSQL.
    pub fn start_on_sqlite(args: &[&str]) -> TestServer {
        TestServer::start_on(Launch::new(args, &[], None), None)
    }

    /// A server on a fresh database of the shared throwaway PostgreSQL,
    /// whatever [`crate::store::TEST_STORE_ENV`] says. `None` only when
    /// PostgreSQL is missing and the cluster tests may be skipped.
    pub fn start_on_postgres(args: &[&str]) -> Option<TestServer> {
        let url = crate::shared_postgres::fresh_database()?;
        Some(TestServer::start_on(
            Launch::new(args, &[], None),
            Some(TestStore::Postgres(url)),
        ))
    }

    /// A server on the PostgreSQL database at `url` (a test's own
    /// [`crate::TestPostgres`], to stop and start under it).
    pub fn start_on_database(args: &[&str], url: &str) -> TestServer {
        TestServer::start_on(
            Launch::new(args, &[], None),
            Some(TestStore::Postgres(url.to_owned())),
        )
    }

    fn start_limited(launch: Launch) -> TestServer {
        // The suite on PostgreSQL, unless the test names its store itself.
        let postgres = (postgres_requested() && !launch.sets_store()).then(|| {
            let url = crate::shared_postgres::fresh_database().unwrap_or_else(|| {
                panic!("{TEST_STORE_ENV}=postgres needs PostgreSQL (apt-get install postgresql)")
            });
            TestStore::Postgres(url)
        });
        TestServer::start_on(launch, postgres)
    }

    fn start_on(launch: Launch, store: Option<TestStore>) -> TestServer {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let store = store.unwrap_or_else(|| TestStore::Sqlite(dir.path().join("switchboard.db")));
        let (child, addr, log) = launch.spawn(&store);
        TestServer {
            dir,
            store,
            launch,
            child: Some(child),
            addr,
            log,
        }
    }

    /// The server process's id (to read its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the server serves `/metrics` and `/healthz`: started with
    /// `--metrics-listen 127.0.0.1:0`, it logs `metrics on http://ADDR`.
    pub fn metrics_addr(&self) -> SocketAddr {
        let line = self.log_line("metrics on http://");
        parse_metrics_line(&line).unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// The database file (shared by the server and the `agent` CLI).
    ///
    /// Only for a server on SQLite ([`TestServer::start_on_sqlite`] when
    /// the suite may run on PostgreSQL): a test that reaches into the file
    /// is about SQLite, and says so rather than opening an empty file.
    pub fn db(&self) -> PathBuf {
        match &self.store {
            TestStore::Sqlite(path) => path.clone(),
            TestStore::Postgres(_) => panic!(
                "this test reaches into the SQLite file: start its server with \
                 TestServer::start_on_sqlite"
            ),
        }
    }

    /// The temporary directory that holds the database; tests may put other
    /// files (priority rules) there.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens a connection and checks the greeting.
    pub async fn connect(&self) -> TestClient {
        TestClient::connect(self.addr).await
    }

    /// Where this server's data is.
    pub fn store(&self) -> &TestStore {
        &self.store
    }

    /// Runs `switchboard <args> --db <this server's db>` (or `--postgres
    /// <its database>`) and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(switchboard_bin())
            .args(args)
            .args(self.store.flag())
            .stdin(Stdio::null())
            .output()
            .expect("run the switchboard CLI")
    }

    /// Provisions an agent with `switchboard agent add NAME` and returns its token.
    pub fn add_agent(&self, name: &str) -> String {
        let output = self.cli(&["agent", "add", name]);
        assert!(
            output.status.success(),
            "`switchboard agent add {name}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let token = String::from_utf8(output.stdout).expect("the token is UTF-8");
        let token = token.trim().to_string();
        assert!(!token.is_empty(), "`agent add` printed no token");
        token
    }

    /// Graceful restart: SIGTERM, wait for exit code 0, then start again on the
    /// same database and flags (on a new port: use [`TestServer::addr`] again).
    pub fn restart(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "server exited with {status} after SIGTERM"
        );
        self.respawn();
    }

    /// Crash and restart: SIGKILL (no chance to flush anything), then start again
    /// on the same database. What was acknowledged must survive.
    pub fn kill9_and_restart(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().expect("SIGKILL the server");
        child.wait().expect("reap the killed server");
        self.respawn();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal_and_wait("TERM")
    }

    /// Sends `kill -<signal>` (e.g. `"TERM"`) and returns at once: for a
    /// test that looks at the server while it stops.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Sends `kill -<signal>` (e.g. `"INT"`) and waits for the process to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        // Polling `try_wait` against a deadline: std has no wait with a timeout,
        // and a server that never exits must fail the test, not hang it.
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server still running {PROCESS_TIMEOUT:?} after SIG{signal}; stderr:\n{}",
                    self.recent_log()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The last lines the server wrote to stderr.
    pub fn recent_log(&self) -> String {
        self.log.text()
    }

    /// The first line of the server's recent stderr that contains `needle`,
    /// waiting up to `LOG_LINE_TIMEOUT` (5 s) for it: another thread drains the
    /// pipe, so a line the server just wrote may not be there yet.
    pub fn log_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + LOG_LINE_TIMEOUT;
        loop {
            let log = self.recent_log();
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

    /// Starts the server again on the same database and flags after
    /// [`TestServer::terminate`] (on a new port).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.respawn();
    }

    fn respawn(&mut self) {
        let (child, addr, log) = self.launch.spawn(&self.store);
        self.child = Some(child);
        self.addr = addr;
        self.log = log;
    }
}

impl Deployment for TestServer {
    fn connect(&self) -> impl Future<Output = TestClient> + Send {
        TestServer::connect(self)
    }

    fn add_agent(&self, name: &str) -> String {
        TestServer::add_agent(self, name)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of switchboard's stderr ---\n{}",
                self.recent_log()
            );
        }
    }
}
