//! Storage faults (issue 4, point 5): the disk fills up, another process
//! locks the database. The server answers `internal`, acknowledges nothing
//! it did not commit, keeps serving reads, stays up, and recovers once the
//! fault is gone. A database it cannot write at all is refused at start.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_tests::missing::skip_or_fail;
use switchboard_tests::*;
use tempfile::TempDir;

/// Skips the full-disk tests where a tmpfs cannot be mounted, saying so in
/// the test summary. CI never sets it: there a missing mount is a failure,
/// not a pass that tested nothing.
const SKIP_ROOT_TESTS_ENV: &str = "SWITCHBOARD_SKIP_ROOT_TESTS";

/// A tmpfs of a given size, so the disk can really fill up. Mounting needs
/// root (CI runs as root); elsewhere the test fails, unless skipped on
/// purpose ([`SKIP_ROOT_TESTS_ENV`]).
struct TinyDisk {
    dir: TempDir,
}

impl TinyDisk {
    fn mount(size: &str) -> Option<TinyDisk> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match mounted {
            Ok(output) if output.status.success() => return Some(TinyDisk { dir }),
            Ok(output) => format!(
                "cannot mount a tmpfs (it needs root): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => format!("no mount command: {error}"),
        };
        skip_or_fail(
            &format!("a tmpfs, and {why}"),
            "run the tests as root (CI does)",
            SKIP_ROOT_TESTS_ENV,
        )
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        self.remount(&format!("size={size}"));
    }

    fn make_read_only(&self) {
        self.remount("ro");
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount with {options}");
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn db_on(disk: &TinyDisk) -> PathBuf {
    disk.path().join("switchboard.db")
}

#[tokio::test]
async fn a_full_disk_answers_internal_keeps_reads_and_recovers() {
    let Some(disk) = TinyDisk::mount("256k") else {
        return;
    };
    let db = db_on(&disk);
    let server = TestServer::start_with_env(
        NO_SEND_LIMITS,
        &[("SWITCHBOARD_DB", db.to_str().expect("utf-8 path"))],
    );
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;

    let mut acknowledged = Vec::new();
    let mut internal = 0;
    for i in 0..200 {
        ana.send(&json!({"type":"send","id":i,"body":"x".repeat(4_000)}))
            .await;
        let reply = ana.recv().await;
        assert_eq!(reply["id"], i);
        match reply["type"].as_str() {
            Some("sent") => acknowledged.push(reply["message"]["id"].clone()),
            Some("error") => {
                assert_eq!(reply["code"], "internal", "{reply}");
                internal += 1;
            }
            _ => panic!("unexpected reply {reply}"),
        }
    }
    assert!(!acknowledged.is_empty(), "some messages fit");
    assert!(
        internal > 0,
        "the disk filled up ({} stored)",
        acknowledged.len()
    );

    // Reads still work and hold exactly what was acknowledged.
    let stored: Vec<Value> = ana
        .history(None, json!({"limit": 1000}))
        .await
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(stored, acknowledged);
    ana.barrier().await;

    // Room again: the same connection sends again.
    disk.resize("8m");
    let back = ana.send_message("back again").await;
    assert_eq!(back["body"], "back again");
    drop(server);
}

#[tokio::test]
async fn a_locked_database_answers_internal_then_recovers() {
    let server = TestServer::start_on_sqlite(NO_SEND_LIMITS);
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let before = ana.send_message("before the lock").await;

    // Another process takes the write lock and keeps it past the server's
    // busy timeout (5 s).
    let locker = SqliteWriteLock::take(&server);
    let reply = locker.send_during(&mut ana).await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "internal");
    assert_eq!(reply["id"], "locked");

    // Reads go on while the lock is held (WAL), and show nothing of the
    // refused message.
    let stored = ana.history(None, json!({})).await;
    assert_eq!(stored, vec![before]);

    locker.release();
    let after = ana.send_message("after the lock").await;
    assert_eq!(after["body"], "after the lock");
}

/// Runs `switchboard ARGS --db DB`, killing it if it has not ended within
/// 10 s (a server that wrongly starts would run for ever).
fn run_briefly(args: &[&str], db: &Path) -> Output {
    let mut child = Command::new(switchboard_bin())
        .args(args)
        .arg("--db")
        .arg(db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("switchboard starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("waits").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collects");
            panic!(
                "`switchboard {args:?}` still running after 10 s: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collects")
}

/// A database on a read-only file system is refused at start with the
/// reason, by the server and the agent commands alike. Before, the server
/// listened and then answered every message `internal`, or stopped with
/// SQLite's "unable to open database file" said three times over.
#[test]
fn a_read_only_database_is_refused_with_the_reason() {
    let Some(disk) = TinyDisk::mount("4m") else {
        return;
    };
    let db = db_on(&disk);
    let created = run_briefly(&["agent", "add", "alice"], &db);
    assert!(created.status.success(), "{created:?}");
    disk.make_read_only();
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["agent", "add", "bob"][..],
    ] {
        let output = run_briefly(args, &db);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
        assert!(
            stderr.contains(&format!("cannot write to the database {}", db.display()))
                && stderr.contains("Read-only file system"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            stderr.matches("Read-only file system").count(),
            1,
            "said once: {stderr}"
        );
    }
}
