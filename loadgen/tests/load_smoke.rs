//! A small `switchboard-load` run against the real server: it checks only
//! correctness (every acked message reached every agent once, in order, and
//! is stored, read back with `history`). No timing is asserted.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long the server may take to print its `listening on` line.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a test's own reads from a server may wait for a line.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// The server binary: `$SWITCHBOARD_BIN`, else the `switchboard` built next
/// to this test (`target/<profile>/`, above its `deps/`). It belongs to
/// another package, so Cargo gives no `CARGO_BIN_EXE_` for it; `cargo test
/// --workspace` builds it before running any test.
fn switchboard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe
        .parent()
        .expect("the test executable lives in a directory");
    let path = deps.join("..").join("switchboard");
    assert!(
        path.exists(),
        "no switchboard binary at {}: run `cargo build -p switchboard-server` first \
         (`cargo test --workspace` builds it), or set SWITCHBOARD_BIN",
        path.display()
    );
    path
}

/// A `switchboard serve` on a free loopback port, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(db: &Path) -> Server {
        let mut child = Command::new(switchboard_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--no-send-limits",
                "--db",
            ])
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the switchboard binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (found, address) = mpsc::channel();
        // Keeps draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, addr)) = line.split_once("listening on ") {
                    let addr = addr.split_whitespace().next().unwrap_or_default();
                    let _ = found.send(addr.to_string());
                }
            }
        });
        let addr = match address.recv_timeout(LISTEN_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not say where it listens");
            }
        };
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway server with its own database, and the arguments that point
/// switchboard-load at it (where to connect, where to add agents).
struct Target {
    server: Server,
    db: PathBuf,
    switchboard: PathBuf,
    _dir: tempfile::TempDir,
}

impl Target {
    fn start() -> Target {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("load.db");
        Target {
            server: Server::start(&db),
            db,
            switchboard: switchboard_bin(),
            _dir: dir,
        }
    }

    /// switchboard-load against this server, with `args` after its address.
    fn load(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--server",
            &self.server.addr,
            "--db",
            self.db.to_str().expect("utf-8 path"),
            "--switchboard",
            self.switchboard.to_str().expect("utf-8 path"),
        ];
        all.extend_from_slice(args);
        load(&all)
    }
}

impl Target {
    /// How many messages this server stored for each user, read over the
    /// wire by an agent provisioned for it: `subscribe` with `since: 0`
    /// replays every conversation before `subscribed`.
    fn messages_by_user(&self, checker: &str) -> BTreeMap<String, usize> {
        let added = Command::new(&self.switchboard)
            .args(["agent", "add", checker, "--db"])
            .arg(&self.db)
            .output()
            .expect("switchboard agent add runs");
        assert!(added.status.success(), "agent add: {added:?}");
        let token = String::from_utf8(added.stdout).expect("utf-8 token");
        let stream = TcpStream::connect(&self.server.addr).expect("connects");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("sets a read timeout");
        let mut lines = BufReader::new(stream.try_clone().expect("clones")).lines();
        let mut next = || -> Value {
            let line = lines
                .next()
                .expect("a line before the timeout")
                .expect("readable");
            serde_json::from_str(&line).expect("a JSON frame")
        };
        let mut writer = stream;
        let hello = serde_json::json!({
            "type": "hello", "role": "agent", "name": checker, "token": token.trim()
        });
        writeln!(writer, "{hello}").expect("writes hello");
        writeln!(writer, r#"{{"type":"subscribe","since":0}}"#).expect("writes subscribe");
        let mut by_user = BTreeMap::new();
        loop {
            let frame = next();
            match frame["type"].as_str() {
                Some("message") => {
                    let user = frame["message"]["user"].as_str().expect("a user");
                    *by_user.entry(user.to_owned()).or_default() += 1;
                }
                Some("subscribed") => return by_user,
                Some("error") => panic!("the server refused: {frame}"),
                _ => {}
            }
        }
    }
}

fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard-load"))
        .args(args)
        .env_clear()
        .output()
        .expect("the switchboard-load binary runs")
}

fn report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "not one JSON object ({error}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn assert_every_check_passed(report: &Value) {
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    for check in ["delivered_exactly_once", "commit_order", "stored"] {
        assert_eq!(
            report["checks"][check]["status"], "passed",
            "{check}: {report:#}"
        );
    }
}

#[test]
fn a_closed_loop_run_checks_out() {
    let target = Target::start();
    let pid = target.server.child.id().to_string();
    let output = target.load(&[
        "--users",
        "10",
        "--agents",
        "3",
        "--window",
        "4",
        "--messages",
        "30",
        "--idle",
        "5",
        "--server-pid",
        &pid,
        "--timeout",
        "60",
        "--json",
    ]);
    let report = report(&output);
    assert!(output.status.success(), "{report:#}");
    assert_every_check_passed(&report);
    assert_eq!(report["acked"], 300);
    assert_eq!(report["deliveries"], 900);
    assert_eq!(report["checks"]["stored"]["checked"], 300);
    assert!(report["server_rss"]["connected_kib"].as_u64().is_some());
}

#[test]
fn an_open_loop_run_checks_out() {
    let target = Target::start();
    let output = target.load(&[
        "--users",
        "20",
        "--agents",
        "2",
        "--rate",
        "400",
        "--duration",
        "0.5",
        "--timeout",
        "60",
        "--json",
    ]);
    let report = report(&output);
    assert!(output.status.success(), "{report:#}");
    assert_every_check_passed(&report);
    assert_eq!(report["mode"], "open");
    assert_eq!(report["acked"], 200);
    assert_eq!(report["deliveries"], 400);
}

#[test]
fn a_run_without_agents_still_checks_what_is_stored() {
    let target = Target::start();
    let output = target.load(&[
        "--users",
        "3",
        "--agents",
        "0",
        "--messages",
        "10",
        "--timeout",
        "60",
        "--json",
    ]);
    let report = report(&output);
    assert!(output.status.success(), "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["checks"]["stored"]["status"], "passed", "{report:#}");
    assert_eq!(report["checks"]["stored"]["checked"], 30);
    assert_eq!(
        report["checks"]["delivered_exactly_once"]["status"], "skipped",
        "{report:#}"
    );
}

/// `--server a,b`: users go to the nodes round-robin and the report counts
/// each node's part. A cluster is not built yet, so two single servers on
/// separate databases stand in for its nodes; what each one stored shows
/// where the connections really went. Two things a cluster gives for free
/// are arranged: no agents (on separate stores an agent would see only its
/// own node's users), and ids that no two nodes share (the second store is
/// filled first, so its ids start past the first one's).
#[test]
fn users_are_spread_over_the_nodes_round_robin() {
    let first = Target::start();
    let second = Target::start();
    let filled = second.load(&[
        "--users",
        "2",
        "--agents",
        "0",
        "--messages",
        "50",
        "--json",
    ]);
    assert!(filled.status.success(), "{:#}", report(&filled));
    let before = second.messages_by_user("before");
    let servers = format!("{},{}", first.server.addr, second.server.addr);
    let pids = [first.server.child.id(), second.server.child.id()];
    let output = load(&[
        "--server",
        &servers,
        "--server-pid",
        &format!("{},{}", pids[0], pids[1]),
        "--users",
        "4",
        "--agents",
        "0",
        "--messages",
        "5",
        "--timeout",
        "60",
        "--json",
    ]);
    let report = report(&output);
    assert!(output.status.success(), "{report:#}");
    assert_eq!(report["acked"], 20, "{report:#}");
    // Both nodes' memory, added up.
    assert_eq!(
        report["server_rss"]["pids"],
        serde_json::json!(pids),
        "{report:#}"
    );
    assert!(
        report["server_rss"]["connected_kib"].as_u64().is_some(),
        "{report:#}"
    );
    assert!(report["cpu"]["server_s"].as_f64().is_some(), "{report:#}");
    let nodes = report["nodes"].as_array().expect("a list of nodes");
    assert_eq!(nodes.len(), 2, "{report:#}");
    for (node, target) in nodes.iter().zip([&first, &second]) {
        assert_eq!(node["server"], target.server.addr.as_str(), "{report:#}");
        assert_eq!(node["users"], 2, "{report:#}");
        assert_eq!(node["acked"], 10, "{report:#}");
    }
    // User i went to node i mod 2, and each stored its own users' messages.
    for (target, indexes) in [(&first, ["u0", "u2"]), (&second, ["u1", "u3"])] {
        let mut stored = target.messages_by_user("after");
        stored.retain(|user, _| !before.contains_key(user));
        assert_eq!(stored.len(), 2, "{}: {stored:?}", target.server.addr);
        for (index, (user, count)) in indexes.iter().zip(&stored) {
            assert!(user.ends_with(index), "{user} on {}", target.server.addr);
            assert_eq!(*count, 5, "{user}");
        }
    }
}

#[test]
fn only_loopback_servers_are_targeted() {
    let output = load(&["--server", "192.0.2.1:7878", "--agents", "0"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}

#[test]
fn help_documents_every_flag() {
    let output = load(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--server",
        "--db",
        "--switchboard",
        "--agent-tokens",
        "--users",
        "--agents",
        "--window",
        "--messages",
        "--rate",
        "--duration",
        "--idle",
        "--server-pid",
        "--timeout",
        "--threads",
        "--json",
        "Example:",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}
