//! A small `switchboard-load` run against the real server: it checks only
//! correctness (every acked message reached every agent once, in order, and
//! is stored, read back with `history`). No timing is asserted.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long the server may take to print its `listening on` line.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

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
