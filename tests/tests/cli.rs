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

/// Rotating or removing an agent's token (from another process) closes the
/// connections signed in with the old token, with `unauthorized`, within the
/// server's credential poll (1 s); a connection already using the new token
/// stays.
#[tokio::test]
async fn rotate_and_remove_close_connections_signed_in_with_the_old_token() {
    let server = TestServer::start();
    let old = server.add_agent("alice");
    let mut with_old = agent(&server, "alice", &old).await;
    let output = server.cli(&["agent", "rotate", "alice"]);
    assert!(output.status.success(), "{output:?}");
    let new = stdout(&output).trim().to_string();
    // Signing in with the new token at once works; the poll must not close it.
    let mut with_new = agent(&server, "alice", &new).await;
    let last = with_old.expect_closed_after(&["error"]).await;
    assert_eq!(last.len(), 1, "one error, then the close: {last:?}");
    assert_eq!(last[0]["code"], "unauthorized");
    assert!(last[0]["id"].is_null());
    with_new.barrier().await;

    assert!(server.cli(&["agent", "remove", "alice"]).status.success());
    let last = with_new.expect_closed_after(&["error"]).await;
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0]["code"], "unauthorized");
}

/// Ana writes; alice answers, and so takes her, with bob watching.
async fn alice_takes_ana(alice: &mut TestClient, bob: &mut TestClient, ana: &mut TestClient) {
    ana.send_message("I was charged twice").await;
    alice.recv_message().await;
    bob.recv_message().await;
    alice.send_to_assigning("ana", "looking into it").await;
    assert_eq!(bob.recv().await, assigned("ana", "alice"));
    bob.recv_message().await;
    assert_eq!(ana.recv().await, assigned("ana", "alice"));
    ana.recv_message().await;
}

/// `agent remove` lets go of the agent's conversations (interpretation 24):
/// within the server's credential poll, every subscribed agent connection and
/// the user's connections hear `released`, exactly as if the agent had
/// released them (the user's messages stop waiting), and another agent can
/// take the user.
#[tokio::test]
async fn removing_an_agent_releases_its_conversations_to_everyone_concerned() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let mut bob = agent(&server, "bob", &bob_token).await;
    let (mut ana, _) = user(&server, "ana").await;
    let (mut max, _) = user(&server, "max").await;
    for agent in [&mut alice, &mut bob] {
        assert_eq!(agent.recv().await, presence("ana", true));
        assert_eq!(agent.recv().await, presence("max", true));
    }

    alice_takes_ana(&mut alice, &mut bob, &mut ana).await;
    let question = ana.send_message("any news?").await;
    alice.recv_message().await;
    bob.recv_message().await;

    assert!(server.cli(&["agent", "remove", "alice"]).status.success());
    assert_eq!(bob.recv().await, released("ana", "alice"));
    // Users also hear that one agent fewer is online: alice's connection is
    // closed on the same poll, in either order with the release.
    let mut heard = vec![ana.recv().await, ana.recv().await];
    heard.sort_by_key(|frame| frame["type"].to_string());
    let agents_online = json!({"type":"agents","online":1});
    assert_eq!(heard, [agents_online.clone(), released("ana", "alice")]);
    let last = alice.expect_closed_after(&["error", "released"]).await;
    assert_eq!(
        last.last().expect("an error")["code"],
        "unauthorized",
        "{last:?}"
    );
    // Only the conversation's user hears of the release.
    assert_eq!(max.recv().await, agents_online);
    max.barrier().await;

    // A new agent sees what the others were told: ana unheld, and her
    // question still waiting for the next agent (protocol version 2).
    let carol_token = server.add_agent("carol");
    let mut carol = server.connect().await.labelled("carol");
    carol.hello_agent("carol", &carol_token).await;
    let (mut before, _) = carol.subscribe().await;
    assert_eq!(messages_in(&before), std::slice::from_ref(&question));
    before.retain(|frame| frame["type"] != "message");
    before.sort_by_key(|frame| frame["name"].to_string());
    assert_eq!(before, [presence("ana", true), presence("max", true)]);
    let history = carol.history(Some("ana"), json!({})).await;
    assert_eq!(history.last(), Some(&question));

    bob.send_to_assigning("ana", "I'll take it from here").await;
    assert_eq!(ana.recv().await, json!({"type":"agents","online":2}));
    assert_eq!(ana.recv().await, assigned("ana", "bob"));
}

/// An agent removed and added again at once, before the server's credential
/// poll saw it removed: its conversations are still released to everyone
/// concerned, and the agent, signed in anew, holds none of them.
#[tokio::test]
async fn an_agent_removed_and_added_again_at_once_still_releases_its_conversations() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let mut bob = agent(&server, "bob", &bob_token).await;
    let (mut ana, _) = user(&server, "ana").await;
    for agent in [&mut alice, &mut bob] {
        assert_eq!(agent.recv().await, presence("ana", true));
    }
    alice_takes_ana(&mut alice, &mut bob, &mut ana).await;

    assert!(server.cli(&["agent", "remove", "alice"]).status.success());
    let again = server.cli(&["agent", "add", "alice"]);
    assert!(again.status.success(), "{again:?}");
    let new_token = stdout(&again).trim().to_string();
    assert_eq!(bob.recv().await, released("ana", "alice"));
    let mut heard = vec![ana.recv().await, ana.recv().await];
    heard.sort_by_key(|frame| frame["type"].to_string());
    assert_eq!(
        heard,
        [
            json!({"type":"agents","online":1}),
            released("ana", "alice")
        ]
    );
    let last = alice.expect_closed_after(&["error", "released"]).await;
    assert_eq!(last.last().expect("an error")["code"], "unauthorized");

    // Back with the new token, alice holds nothing: bob can take ana.
    let _alice = agent(&server, "alice", &new_token).await;
    bob.send_to_assigning("ana", "bob here").await;
}

/// An agent removed while the server is down: its conversations are free for
/// another agent as soon as the server is back, released before anyone
/// connects (nobody is told they are held, nor hears a late `released`).
#[tokio::test]
async fn an_agent_removed_while_the_server_is_down_holds_nothing_afterwards() {
    let mut server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let (mut ana, ana_token) = user(&server, "ana").await;
    ana.send_message("hello?").await;
    alice.recv_type("presence").await;
    alice.recv_message().await;
    alice.send_to_assigning("ana", "hi ana").await;
    drop((alice, ana));

    assert!(server.terminate().success());
    assert!(server.cli(&["agent", "remove", "alice"]).status.success());
    server.start_again();

    let mut ana = server.connect().await.labelled("ana");
    ana.hello_user("ana", &ana_token).await;
    let (before, _) = ana.subscribe().await;
    assert!(before.iter().all(|f| f["type"] != "assigned"), "{before:?}");
    let mut bob = server.connect().await.labelled("bob");
    bob.hello_agent("bob", &bob_token).await;
    let (before, _) = bob.subscribe().await;
    assert!(before.iter().all(|f| f["type"] != "assigned"), "{before:?}");
    bob.send_to_assigning("ana", "bob here").await;
    assert_eq!(ana.recv().await, json!({"type":"agents","online":1}));
    assert_eq!(ana.recv().await, assigned("ana", "bob"));
}
