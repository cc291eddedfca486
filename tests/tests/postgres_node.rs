//! One node on PostgreSQL (issue 16, the storage step): `serve --postgres`
//! speaks the same protocol as on SQLite and keeps everything across a
//! restart and a crash, and every `agent` command takes `--postgres` in
//! place of `--db`. Each test runs the real binary on a fresh database of
//! the shared throwaway PostgreSQL (`shared_postgres`).
//!
//! The whole suite runs on PostgreSQL too with
//! `SWITCHBOARD_TEST_STORE=postgres` (see `switchboard_tests::store`); this
//! file holds what is PostgreSQL's alone.

use std::process::{Command, Stdio};

use serde_json::json;
use switchboard_tests::*;

/// A node on PostgreSQL, or `None` when PostgreSQL is missing and the
/// cluster tests may be skipped (said on stderr).
fn node(args: &[&str]) -> Option<TestServer> {
    TestServer::start_on_postgres(args)
}

/// `switchboard ARGS` with no store flag, and its output.
fn switchboard(args: &[&str]) -> std::process::Output {
    Command::new(switchboard_bin())
        .args(args)
        .env_remove("SWITCHBOARD_DB")
        .env_remove("SWITCHBOARD_POSTGRES")
        .stdin(Stdio::null())
        .output()
        .expect("run switchboard")
}

#[tokio::test]
async fn a_node_on_postgres_speaks_the_protocol_and_keeps_everything_across_restarts() {
    let Some(mut server) = node(NO_SEND_LIMITS) else {
        return;
    };
    assert!(
        server
            .log_line("listening on")
            .contains("postgres://postgres@127.0.0.1:"),
        "the log names the database"
    );
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut watcher = agent(&server, "alice", &alice_token).await;
    let (mut ana, ana_token) = user(&server, "ana").await;
    assert_eq!(watcher.recv().await, presence("ana", true));

    // send, with a key; the agents hear it; history has it.
    let question = ana
        .request(json!({"type":"send","key":"q1","body":"refund?"}))
        .await["message"]
        .clone();
    assert_message(&question, "ana", None, "refund?", "high");
    assert_eq!(watcher.recv_message().await, question);
    // The same key again: the original, stored once.
    let again = ana
        .request(json!({"type":"send","key":"q1","body":"refund?"}))
        .await;
    assert_eq!(again["message"], question);
    watcher.barrier().await;

    // Two agents race for ana: exactly one wins.
    let mut alice = server.connect().await.labelled("alice-2");
    alice.hello_agent("alice", &alice_token).await;
    let mut bob = server.connect().await.labelled("bob");
    bob.hello_agent("bob", &bob_token).await;
    let (from_alice, from_bob) = (
        json!({"type":"send","id":"a","to":"ana","body":"alice here"}),
        json!({"type":"send","id":"b","to":"ana","body":"bob here"}),
    );
    tokio::join!(alice.send(&from_alice), bob.send(&from_bob));
    let (alice_reply, bob_reply) = tokio::join!(alice.recv(), bob.recv());
    let won = [&alice_reply, &bob_reply]
        .iter()
        .filter(|reply| reply["type"] == "sent")
        .count();
    assert_eq!(won, 1, "one winner: {alice_reply} / {bob_reply}");
    let (winner, answer, loser) = if alice_reply["type"] == "sent" {
        ("alice", alice_reply["message"].clone(), bob_reply)
    } else {
        ("bob", bob_reply["message"].clone(), alice_reply)
    };
    assert_eq!(loser["code"], "assigned_to_other", "{loser}");
    assert_eq!(ana.recv().await, assigned("ana", winner));
    assert_eq!(ana.recv_message().await, answer);
    assert_eq!(
        ana.history(None, json!({})).await,
        vec![question.clone(), answer.clone()]
    );
    drop((ana, alice, bob, watcher));

    // A graceful restart, then a crash: everything acknowledged is there.
    server.restart();
    let (mut ben, _) = unsubscribed_user(&server, "ben").await;
    let waiting = ben.send_message("anyone?").await;
    assert!(id_of(&waiting) > id_of(&answer), "ids keep rising");
    assert!(waiting["ts"].as_str() > answer["ts"].as_str());
    drop(ben);
    server.kill9_and_restart();

    let mut ana = server.connect().await;
    ana.hello_user("ana", &ana_token).await;
    let (frames, _) = ana.subscribe().await;
    assert_eq!(messages_in(&frames), vec![question.clone(), answer.clone()]);
    assert_eq!(frames.last(), Some(&assigned("ana", winner)));
    let replayed = ana
        .request(json!({"type":"send","key":"q1","body":"refund?"}))
        .await;
    assert_eq!(replayed["message"], question, "the key survived");
    let mut carol = server.connect().await;
    let bob_again = server.cli(&["agent", "rotate", "bob"]);
    assert!(bob_again.status.success(), "{bob_again:?}");
    let bob_token = String::from_utf8_lossy(&bob_again.stdout).trim().to_owned();
    carol.hello_agent("bob", &bob_token).await;
    let (frames, _) = carol.subscribe().await;
    assert_eq!(
        messages_in(&frames),
        vec![waiting.clone()],
        "the waiting queue"
    );
    // `since` resumes across the restarts with nothing missed or repeated.
    let (frames, _) = carol.subscribe_with(json!({"since": 0})).await;
    let ids: Vec<u64> = messages_in(&frames).iter().map(id_of).collect();
    assert_eq!(ids, [id_of(&question), id_of(&answer), id_of(&waiting)]);
}

/// PostgreSQL stops under a running node: requests are answered
/// `internal`, nothing unacknowledged is stored, connections stay open, and
/// once PostgreSQL is back the node serves again without a restart.
#[tokio::test]
async fn a_node_answers_internal_while_postgres_is_down_and_recovers_without_a_restart() {
    let Some(mut postgres) = TestPostgres::start() else {
        return;
    };
    postgres.create_database("desk");
    let server = TestServer::start_on_database(NO_SEND_LIMITS, &postgres.database_url("desk"));
    let alice_token = server.add_agent("alice");
    let (mut ana, ana_token) = unsubscribed_user(&server, "ana").await;
    let before = ana.send_message("before").await;

    postgres.stop();
    ana.send(&json!({"type":"send","id":"down","body":"during"}))
        .await;
    ana.recv_error(json!("down"), "internal").await;
    postgres.start_again();

    // The writer and the readers connect again on their next transaction:
    // a send, a sign-in, a backlog and a history page all work at once.
    let after = ana.send_message("after").await;
    assert!(id_of(&after) > id_of(&before));
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    let (frames, _) = alice.subscribe().await;
    assert_eq!(messages_in(&frames), vec![before.clone(), after.clone()]);
    let mut again = server.connect().await;
    again.hello_user("ana", &ana_token).await;
    let history = again.history(None, json!({})).await;
    assert_eq!(history, vec![before, after], "nothing of the outage stored");
}

#[tokio::test]
async fn every_agent_command_takes_postgres_in_place_of_db() {
    let Some(server) = node(&[]) else {
        return;
    };
    let url = match server.store() {
        TestStore::Postgres(url) => url.clone(),
        other => panic!("a PostgreSQL node, not {other:?}"),
    };
    let token = server.add_agent("alice");
    let listed = server.cli(&["agent", "list"]);
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "alice\t0 conversation(s)\n"
    );
    let rotated = server.cli(&["agent", "rotate", "alice"]);
    assert!(rotated.status.success(), "{rotated:?}");
    let new_token = String::from_utf8_lossy(&rotated.stdout).trim().to_owned();
    assert_ne!(new_token, token);
    // The running server signs alice in with the new token only.
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &new_token).await;
    let removed = server.cli(&["agent", "remove", "alice"]);
    assert!(removed.status.success(), "{removed:?}");
    // The running server notices within its credential poll.
    let frames = alice.expect_closed_after(&["error"]).await;
    assert_eq!(frames[0]["code"], "unauthorized", "{frames:?}");
    let listed = server.cli(&["agent", "list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "");
    // A name a user has is refused, whatever its case.
    let (_ana, _) = user(&server, "ana").await;
    let taken = server.cli(&["agent", "add", "ANA"]);
    assert!(!taken.status.success());
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("the name is taken"),
        "{taken:?}"
    );
    // The environment variable works as well as the flag.
    let from_env = Command::new(switchboard_bin())
        .args(["agent", "add", "bob"])
        .env_remove("SWITCHBOARD_DB")
        .env("SWITCHBOARD_POSTGRES", &url)
        .output()
        .expect("run switchboard");
    assert!(from_env.status.success(), "{from_env:?}");
}

#[test]
fn db_and_postgres_together_are_refused() {
    let output = switchboard(&[
        "agent",
        "list",
        "--db",
        "x.db",
        "--postgres",
        "postgres://u@127.0.0.1/d",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// Nothing listens on the port: the server says so, what it tried (without
/// the password) and what to check, and exits.
#[test]
fn an_unreachable_database_is_refused_at_startup_without_showing_the_password() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("postgres://sb:s3cret@127.0.0.1:{closed_port}/desk");
    for args in [
        vec!["serve", "--listen", "127.0.0.1:0", "--postgres", &url],
        vec!["agent", "list", "--postgres", &url],
    ] {
        let output = switchboard(&args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot connect to PostgreSQL at postgres://sb@127.0.0.1:{closed_port}/desk"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains("check that PostgreSQL is running"),
            "{stderr}"
        );
        assert!(!stderr.contains("s3cret"), "the password leaked: {stderr}");
    }
    let bad = switchboard(&[
        "agent",
        "list",
        "--postgres",
        "postgres://sb:s3cret@h:port/d",
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("is not a PostgreSQL URL"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "the password leaked: {stderr}");
}

/// A database that holds someone else's tables is not written into.
#[test]
fn a_database_that_is_not_switchboards_is_refused() {
    let Some(url) = fresh_database() else {
        return;
    };
    let Some(postgres) = shared_postgres() else {
        return;
    };
    let database = url.rsplit('/').next().expect("a database name");
    postgres.run_sql(database, "CREATE TABLE invoices (id INT)");
    let output = switchboard(&["serve", "--listen", "127.0.0.1:0", "--postgres", &url]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to touch it"), "{stderr}");
}
