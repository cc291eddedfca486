//! A newcomer's first mistakes (issue 17, "first-hour findings"): each is
//! told what happened and what to do next, once, and leaves nothing behind.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use switchboard_tests::*;

fn switchboard(args: &[&str]) -> Output {
    Command::new(switchboard_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run switchboard")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().expect("a UTF-8 path").to_owned()
}

/// A second server on a taken port: says another server has it and how to
/// pick another, before it creates (or opens) its database.
#[test]
fn a_taken_port_says_what_to_do_and_creates_no_database() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("its address").to_string();
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = switchboard(&[
        "serve",
        "--listen",
        &address,
        "--db",
        &path(dir.path(), "new.db"),
    ]);
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(
        said.contains(&format!("cannot listen on {address}")),
        "{said}"
    );
    assert!(said.contains("another server"), "{said}");
    assert!(said.contains("--listen HOST:PORT"), "{said}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("reads the directory")
        .collect();
    assert!(left.is_empty(), "nothing created: {left:?}");
}

#[test]
fn a_listen_address_without_a_port_is_explained() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = switchboard(&[
        "serve",
        "--listen",
        "7878",
        "--db",
        &path(dir.path(), "x.db"),
    ]);
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(said.contains("HOST:PORT, e.g. 127.0.0.1:7878"), "{said}");
}

/// The cause of a bad rules file is printed once, not once per layer.
#[test]
fn a_bad_priority_rules_file_says_its_cause_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, r#"{"urgent": "outage"}"#).expect("writes");
    let missing = path(dir.path(), "missing.json");
    for (file, cause) in [
        (rules.to_str().expect("UTF-8"), "expected a sequence"),
        (missing.as_str(), "No such file or directory"),
    ] {
        let output = switchboard(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &path(dir.path(), "x.db"),
            "--priority-rules",
            file,
        ]);
        assert!(!output.status.success());
        let said = stderr(&output);
        assert_eq!(said.matches(cause).count(), 1, "{said}");
    }
}

#[test]
fn an_empty_agent_list_says_how_to_add_one_and_an_unknown_agent_where_to_look() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = path(dir.path(), "x.db");
    assert!(
        switchboard(&["agent", "add", "alice", "--db", &db])
            .status
            .success()
    );
    assert!(
        switchboard(&["agent", "remove", "alice", "--db", &db])
            .status
            .success()
    );
    let listed = switchboard(&["agent", "list", "--db", &db]);
    assert!(listed.status.success());
    assert!(listed.stdout.is_empty(), "no agent on stdout");
    assert!(
        stderr(&listed).contains("no agents yet: add one with `switchboard agent add NAME`"),
        "{}",
        stderr(&listed)
    );
    let unknown = switchboard(&["agent", "rotate", "zed", "--db", &db]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no agent named zed (`switchboard agent list`"),
        "{}",
        stderr(&unknown)
    );
}

/// `bad_json` says what a frame looks like, as `not_authenticated` says
/// what to send first.
#[tokio::test]
async fn bad_json_says_what_a_frame_looks_like() {
    let server = TestServer::start();
    let mut client = server.connect().await;
    client.send_raw(b"hello?\n").await;
    let error = client.recv().await;
    assert_eq!(error["code"], json!("bad_json"), "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(r#"send one JSON object per line, e.g. {"type":"ping"}"#),
        "{message}"
    );
    assert_eq!(error["id"], Value::Null);
}

/// Starts `switchboard serve` with `args` in directory `dir` and returns
/// what it logged up to and including its "listening on" line.
fn log_until_listening(dir: &Path, args: &[&str]) -> String {
    use std::io::{BufRead, BufReader};
    let mut server = Command::new(switchboard_bin())
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .env("SWITCHBOARD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = server.stderr.take().expect("piped");
    let mut said = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("reads the log");
        let listening = line.contains("listening on");
        said.push(line);
        if listening {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    said.join("\n")
}

/// Listening beyond loopback without TLS is said out loud, before the
/// server says it is listening; on loopback it is not.
#[test]
fn plaintext_beyond_loopback_is_warned_of() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (listen, warned) in [("0.0.0.0:0", true), ("127.0.0.1:0", false)] {
        let said = log_until_listening(dir.path(), &["--listen", listen, "--db", "x.db"]);
        assert!(said.contains("listening on"), "{listen}: {said}");
        assert_eq!(
            said.contains("serving plaintext on"),
            warned,
            "{listen}: {said}"
        );
    }
}

/// A server started where there is no database (say, from another
/// directory) says it made a new, empty one, and where, by its absolute
/// path; started again on that file it says nothing of the kind.
#[test]
fn a_new_empty_database_is_pointed_out_with_its_full_path() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let args = ["--listen", "127.0.0.1:0"];
    let full_path = path(dir.path(), "switchboard.db");
    let first = log_until_listening(dir.path(), &args);
    assert!(
        first.contains(&format!("created a new, empty database at {full_path}")),
        "{first}"
    );
    assert!(first.contains(&format!("db={full_path}")), "{first}");
    let again = log_until_listening(dir.path(), &args);
    assert!(again.contains("listening on"), "{again}");
    assert!(!again.contains("new, empty database"), "{again}");
}
