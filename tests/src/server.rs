//! [`TestServer`]: one `switchboard serve` on `127.0.0.1:0` with its own
//! database in a temporary directory, or in cluster mode ([`crate::store`])
//! [`CLUSTER_NODES`] of them on one database and one bus; and what a test
//! does to it from the outside: the CLI on its database, restarts, SIGTERM,
//! SIGKILL and its log. Killed when dropped, so tests can run in parallel.
//!
//! A test sees one server whatever it is: connections take turns over the
//! nodes, and a restart or a signal reaches every node ([`crate::nodes`]).
//! A test that must choose a node says so ([`TestServer::connect_to`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use crate::bins::switchboard_bin;
use crate::client::TestClient;
use crate::deployment::Deployment;
use crate::nodes::Nodes;
use crate::process::{Launch, parse_metrics_line};
use crate::store::{CLUSTER_NODES, SuiteStore, TEST_STORE_ENV, TestStore};

/// A running `switchboard serve` (or a cluster of them), with its own
/// temporary database.
pub struct TestServer {
    /// Holds the database; removed when the server is dropped.
    dir: tempfile::TempDir,
    /// The SQLite file in `dir`, or a fresh PostgreSQL database.
    store: TestStore,
    /// How every node starts, and starts again.
    launch: Launch,
    nodes: Nodes,
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
    /// `SWITCHBOARD_DB`, `SWITCHBOARD_POSTGRES`, `SWITCHBOARD_LISTEN` or
    /// `SWITCHBOARD_NATS`, the matching flag is left out so that the value
    /// really comes from the environment. A test that names its store that
    /// way gets one node on it, in any mode; one that names its listen
    /// address gets one node there (one address, one node), in cluster mode
    /// still on PostgreSQL and the bus.
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> TestServer {
        TestServer::start_limited(Launch::new(args, envs, None))
    }

    /// A server started with a soft and hard open-file limit of `files`
    /// (through `prlimit`, from util-linux).
    pub fn start_with_open_files(files: u64, args: &[&str]) -> TestServer {
        TestServer::start_limited(Launch::new(args, &[], Some(files)))
    }

    /// One node on a SQLite file in its own directory ([`TestServer::db`]),
    /// whatever [`crate::store::TEST_STORE_ENV`] says: for tests about the
    /// file itself (a lock on it, a broken write into it, `switchboard copy`
    /// reading it), which mean nothing on PostgreSQL.
    pub fn start_on_sqlite(args: &[&str]) -> TestServer {
        TestServer::start_on(Launch::new(args, &[], None), None, 1)
    }

    /// One node on a fresh database of the shared throwaway PostgreSQL,
    /// whatever [`crate::store::TEST_STORE_ENV`] says. `None` only when
    /// PostgreSQL is missing and the cluster tests may be skipped.
    pub fn start_on_postgres(args: &[&str]) -> Option<TestServer> {
        let url = crate::shared_postgres::fresh_database()?;
        Some(TestServer::start_on(
            Launch::new(args, &[], None),
            Some(TestStore::Postgres(url)),
            1,
        ))
    }

    /// One node on the PostgreSQL database at `url` (a test's own
    /// [`crate::TestPostgres`], to stop and start under it).
    pub fn start_on_database(args: &[&str], url: &str) -> TestServer {
        TestServer::start_on(
            Launch::new(args, &[], None),
            Some(TestStore::Postgres(url.to_owned())),
            1,
        )
    }

    /// What a plain `TestServer` is in this run ([`TEST_STORE_ENV`]), unless
    /// the test names its store in the environment (then one node on it).
    fn start_limited(launch: Launch) -> TestServer {
        let suite = SuiteStore::requested();
        if launch.sets_store() {
            return TestServer::start_on(launch, None, 1);
        }
        match suite {
            SuiteStore::Sqlite => TestServer::start_on(launch, None, 1),
            SuiteStore::Postgres => TestServer::start_on(launch, Some(suite_database(suite)), 1),
            SuiteStore::Cluster => {
                let nats = crate::shared_nats::shared_nats().unwrap_or_else(|| {
                    panic!(
                        "{TEST_STORE_ENV}=cluster needs nats-server (apt-get install nats-server)"
                    )
                });
                let count = if launch.fixes_listen() {
                    1
                } else {
                    CLUSTER_NODES
                };
                let launch = launch.on_bus(nats.url());
                TestServer::start_on(launch, Some(suite_database(suite)), count)
            }
        }
    }

    /// `count` nodes from `launch`, on `store` or else on a SQLite file in
    /// a new temporary directory.
    fn start_on(launch: Launch, store: Option<TestStore>, count: usize) -> TestServer {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let store = store.unwrap_or_else(|| TestStore::Sqlite(dir.path().join("switchboard.db")));
        let nodes = Nodes::start(count, &launch, &store);
        TestServer {
            dir,
            store,
            launch,
            nodes,
        }
    }

    /// How many nodes serve: [`CLUSTER_NODES`] for a plain server in
    /// cluster mode, else 1.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The process id of the first node (to read its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.nodes.first_pid()
    }

    /// Where a client connects: the next node's address, round-robin (the
    /// same turns as [`TestServer::connect`]), so that a test that connects
    /// to `addr()` spreads its clients too. Connect to one value as often
    /// as needed to reach the same node again.
    pub fn addr(&self) -> SocketAddr {
        self.nodes.next_addr()
    }

    /// Where the first node serves `/metrics` and `/healthz`: started with
    /// `--metrics-listen 127.0.0.1:0`, it logs `metrics on http://ADDR`.
    pub fn metrics_addr(&self) -> SocketAddr {
        let line = self.nodes.first_log_line("metrics on http://");
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

    /// Opens a connection and checks the greeting, on the next node
    /// round-robin: a test's clients are spread over a cluster's nodes.
    pub async fn connect(&self) -> TestClient {
        TestClient::connect(self.nodes.next_addr()).await
    }

    /// Opens a connection to node `node` (counted from 0, in the order the
    /// nodes started) and checks the greeting: for a test about which node
    /// a client is on.
    pub async fn connect_to(&self, node: usize) -> TestClient {
        TestClient::connect(self.nodes.addr(node)).await
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

    /// Graceful restart: SIGTERM to every node, wait for exit code 0 from
    /// each, then start them again on the same database and flags (on new
    /// ports: use [`TestServer::addr`] again).
    pub fn restart(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "server exited with {status} after SIGTERM"
        );
        self.start_again();
    }

    /// Crash and restart: SIGKILL to every node (no chance to flush
    /// anything), then start them again on the same database. What was
    /// acknowledged must survive.
    pub fn kill9_and_restart(&mut self) {
        self.nodes.kill();
        self.start_again();
    }

    /// Sends SIGTERM to every node and waits for each to exit: the first
    /// status that is not a success, or success.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal_and_wait("TERM")
    }

    /// Sends `kill -<signal>` (e.g. `"TERM"`) to every node and returns at
    /// once: for a test that looks at the server while it stops.
    pub fn signal(&self, signal: &str) {
        self.nodes.signal(signal);
    }

    /// Sends `kill -<signal>` (e.g. `"INT"`) to every node and waits for
    /// each to exit: the first status that is not a success, or success.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        self.nodes.signal_and_wait(signal)
    }

    /// The last lines each node wrote to stderr; with several nodes, node
    /// by node, each line prefixed `[node N] `.
    pub fn recent_log(&self) -> String {
        self.nodes.log()
    }

    /// The first line of [`TestServer::recent_log`] that contains `needle`
    /// (any node's), waiting up to 5 s for it: another thread drains each
    /// pipe, so a line a node just wrote may not be there yet.
    pub fn log_line(&self, needle: &str) -> String {
        self.nodes.log_line(needle)
    }

    /// Starts every node again, one after another, on the same database and
    /// flags after [`TestServer::terminate`] (on new ports).
    pub fn start_again(&mut self) {
        self.nodes.start_again(&self.launch, &self.store);
    }

    /// [`TestServer::start_again`] with `flag` set to `value` from now on:
    /// an operator changing a setting across a restart.
    pub fn start_again_with(&mut self, flag: &str, value: &str) {
        self.launch.set_flag(flag, value);
        self.start_again();
    }
}

/// The fresh database of the shared PostgreSQL a `suite` run puts each
/// plain server on; without PostgreSQL, the test fails with what to install.
fn suite_database(suite: SuiteStore) -> TestStore {
    let url = crate::shared_postgres::fresh_database().unwrap_or_else(|| {
        panic!(
            "{TEST_STORE_ENV}={} needs PostgreSQL (apt-get install postgresql)",
            suite.name()
        )
    });
    TestStore::Postgres(url)
}

/// One node of a [`TestServer`] (the only one, on a single node): for a
/// test about what each node counts for itself (send limits, per-address
/// caps: docs/protocol.md, point 36), whose clients must all reach the
/// same node.
pub struct OneNode<'a> {
    server: &'a TestServer,
    index: usize,
}

impl TestServer {
    /// Node `index` (counted from 0), as a [`Deployment`] of its own.
    pub fn node(&self, index: usize) -> OneNode<'_> {
        assert!(index < self.nodes(), "node {index} of {}", self.nodes());
        OneNode {
            server: self,
            index,
        }
    }
}

impl OneNode<'_> {
    /// Where this node serves.
    pub fn addr(&self) -> SocketAddr {
        self.server.nodes.addr(self.index)
    }
}

impl Deployment for OneNode<'_> {
    fn connect(&self) -> impl Future<Output = TestClient> + Send {
        self.server.connect_to(self.index)
    }

    fn add_agent(&self, name: &str) -> String {
        self.server.add_agent(name)
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
    /// Each node is killed when dropped, after this.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of switchboard's stderr ---\n{}",
                self.recent_log()
            );
        }
    }
}
