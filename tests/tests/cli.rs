//! The `switchboard` command line: `agent add/list/remove/rotate`, settings
//! from `SWITCHBOARD_*` environment variables, `--help`, and bad usage.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;
use switchboard_tests::*;

/// Runs `switchboard ARGS` with extra environment variables.
fn run(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    Command::new(switchboard_bin())
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run switchboard")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// The agent names `agent list` shows: the first column of each line.
fn listed(server: &TestServer) -> Vec<String> {
    let output = server.cli(&["agent", "list"]);
    assert!(output.status.success(), "agent list failed: {output:?}");
    stdout(&output)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Asserts that `hello` as this agent gets `unauthorized`.
async fn assert_refused(server: &TestServer, name: &str, token: &str) {
    let mut client = server.connect().await;
    let hello = json!({"type":"hello","id":"h","role":"agent","name":name,"token":token});
    client.send(&hello).await;
    client.recv_error(json!("h"), "unauthorized").await;
}

#[tokio::test]
async fn agent_add_prints_only_a_token_and_list_shows_the_agent() {
    let server = TestServer::start();
    let output = server.cli(&["agent", "add", "alice"]);
    assert!(output.status.success(), "{output:?}");
    let printed = stdout(&output);
    assert_eq!(
        printed.trim_end().lines().count(),
        1,
        "only the token: {printed:?}"
    );
    let alice = printed.trim().to_string();
    assert!(alice.len() >= 22, "at least 128 bits: {alice:?}");
    assert!(!alice.contains(char::is_whitespace));
    let bob = server.add_agent("bob");
    assert_ne!(alice, bob);

    let names = listed(&server);
    assert!(
        names.contains(&"alice".to_string()) && names.contains(&"bob".to_string()),
        "{names:?}"
    );
    let list = stdout(&server.cli(&["agent", "list"]));
    assert!(
        !list.contains(&alice) && !list.contains(&bob),
        "tokens are never shown again"
    );

    // The running server accepts the new agents.
    server.connect().await.hello_agent("alice", &alice).await;
    server.connect().await.hello_agent("bob", &bob).await;
}

#[tokio::test]
async fn agent_add_refuses_an_existing_agent_and_invalid_names() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let again = server.cli(&["agent", "add", "alice"]);
    assert!(!again.status.success(), "adding alice twice must fail");
    // The first token still works.
    server.connect().await.hello_agent("alice", &token).await;

    let too_long = "a".repeat(33);
    for name in ["", "a b", "ané", "a/b", too_long.as_str()] {
        let output = server.cli(&["agent", "add", name]);
        assert!(!output.status.success(), "agent add {name:?} must fail");
    }
    assert_eq!(listed(&server), ["alice"]);
    let longest = "Az09_.-Az09_.-Az09_.-Az09_.-Az09";
    server.add_agent(longest);
}

#[tokio::test]
async fn a_removed_agent_can_no_longer_log_in() {
    let server = TestServer::start();
    let alice = server.add_agent("alice");
    let bob = server.add_agent("bob");
    let output = server.cli(&["agent", "remove", "alice"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(listed(&server), ["bob"]);
    assert_refused(&server, "alice", &alice).await;
    server.connect().await.hello_agent("bob", &bob).await;
    assert!(!server.cli(&["agent", "remove", "alice"]).status.success());
    assert!(!server.cli(&["agent", "remove", "nobody"]).status.success());
}

#[tokio::test]
async fn rotate_prints_a_new_token_and_the_old_one_stops_working() {
    let server = TestServer::start();
    let old = server.add_agent("alice");
    let output = server.cli(&["agent", "rotate", "alice"]);
    assert!(output.status.success(), "{output:?}");
    let new = stdout(&output).trim().to_string();
    assert!(new.len() >= 22, "{new:?}");
    assert_ne!(new, old);
    assert_refused(&server, "alice", &old).await;
    server.connect().await.hello_agent("alice", &new).await;
    assert!(!server.cli(&["agent", "rotate", "nobody"]).status.success());
}

#[tokio::test]
async fn settings_can_come_from_switchboard_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-env.db");
    // `agent add` with the database named only by SWITCHBOARD_DB (a fresh file).
    let output = run(&["agent", "add", "alice"], &[("SWITCHBOARD_DB", &db)]);
    assert!(output.status.success(), "{output:?}");
    let token = stdout(&output).trim().to_string();
    let output = run(&["agent", "list", "--db", db.to_str().unwrap()], &[]);
    assert!(stdout(&output).contains("alice"));

    // `serve` with the address, database and body limit from the environment.
    let db = db.to_str().unwrap();
    let envs = [
        ("SWITCHBOARD_LISTEN", "127.0.0.1:0"),
        ("SWITCHBOARD_DB", db),
        ("SWITCHBOARD_MAX_BODY", "5"),
    ];
    let server = TestServer::start_with_env(&[], &envs);
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &token).await;
    let mut ana = server.connect().await;
    ana.hello_new_user("ana").await;
    ana.send(&json!({"type":"send","id":"long","body":"123456"}))
        .await;
    ana.recv_error(json!("long"), "invalid_body").await;
    assert_eq!(ana.send_message("12345").await["body"], "12345");
}

#[test]
fn help_exits_zero() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["agent", "--help"],
        &["agent", "add", "--help"],
    ] {
        let output = run(args, &[]);
        assert!(output.status.success(), "switchboard {args:?}: {output:?}");
        assert!(
            !output.stdout.is_empty(),
            "switchboard {args:?} printed no help"
        );
    }
    let serve_help = stdout(&run(&["serve", "--help"], &[]));
    for flag in [
        "--listen",
        "--db",
        "--max-line",
        "--max-body",
        "--max-connections",
    ] {
        assert!(
            serve_help.contains(flag),
            "serve --help does not mention {flag}"
        );
    }
    for flag in [
        "--priority-rules",
        "--rate",
        "--burst",
        "--hello-timeout",
        "--outbox-frames",
    ] {
        assert!(
            serve_help.contains(flag),
            "serve --help does not mention {flag}"
        );
    }
}

/// The help names each flag's environment variable, never the value the
/// environment holds: a database URL's password stays out of it, and an
/// unset variable does not read as `[env: NAME=]` (first-hour findings).
#[test]
fn help_names_environment_variables_without_their_values() {
    let secret = Path::new("postgres://desk:s3cret-pw@db.example:5432/desk");
    let output = run(&["serve", "--help"], &[("SWITCHBOARD_POSTGRES", secret)]);
    let help = stdout(&output);
    assert!(help.contains("[env: SWITCHBOARD_POSTGRES]"), "{help}");
    assert!(
        !help.contains("s3cret-pw"),
        "the password is in the help: {help}"
    );
    assert!(!help.contains("=]"), "a dangling `=`: {help}");
}

#[test]
fn bad_usage_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let db = db.to_str().unwrap();
    for args in [
        &["frobnicate"][..],
        &["serve", "--no-such-flag", "--db", db],
        &["serve", "--max-body", "many", "--db", db],
        &["agent", "add", "--db", db],
        &["agent", "fly", "alice", "--db", db],
    ] {
        let output = run(args, &[]);
        assert!(
            !output.status.success(),
            "switchboard {args:?} should fail: {output:?}"
        );
    }
}

/// A mistyped `--db` must not look like a database without agents.
#[test]
fn agent_commands_other_than_add_refuse_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo.db");
    let db = db.to_str().unwrap();
    for args in [
        &["agent", "list", "--db", db][..],
        &["agent", "rotate", "alice", "--db", db],
        &["agent", "remove", "alice", "--db", db],
    ] {
        let output = run(args, &[]);
        assert!(!output.status.success(), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no database at"), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("typo.db").exists(), "nothing created");
}
