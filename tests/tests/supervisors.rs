//! Protocol version 2, "Supervisors": `agent add NAME --supervisor`,
//! `agent promote` / `agent demote`, `agent list` showing them, `welcome`
//! saying so, and a supervisor releasing, resolving and transferring
//! another agent's conversation (with `by`), while bound like any agent for
//! writing. On one node and on the 3-node cluster.

use serde_json::json;
use switchboard_tests::*;

fn cli_ok(server: &TestServer, args: &[&str]) -> String {
    let output = server.cli(args);
    assert!(
        output.status.success(),
        "switchboard {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn agent_commands_provision_promote_demote_and_list_supervisors() {
    let server = TestServer::start();
    let token = cli_ok(&server, &["agent", "add", "sam", "--supervisor"]);
    assert!(!token.trim().is_empty(), "a token");
    server.add_agent("alice");
    assert_eq!(
        cli_ok(&server, &["agent", "list"]),
        "alice\t0 conversation(s)\nsam\t0 conversation(s)\tsupervisor\n"
    );
    cli_ok(&server, &["agent", "promote", "alice"]);
    cli_ok(&server, &["agent", "demote", "sam"]);
    assert_eq!(
        cli_ok(&server, &["agent", "list"]),
        "alice\t0 conversation(s)\tsupervisor\nsam\t0 conversation(s)\n"
    );
    let unknown = server.cli(&["agent", "promote", "zed"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no agent named zed"),
        "{unknown:?}"
    );
    // A removed agent added again starts as an ordinary agent.
    cli_ok(&server, &["agent", "remove", "alice"]);
    server.add_agent("alice");
    assert_eq!(
        cli_ok(&server, &["agent", "list"]),
        "alice\t0 conversation(s)\nsam\t0 conversation(s)\n"
    );
}

#[tokio::test]
async fn an_agents_welcome_says_whether_it_is_a_supervisor() {
    let server = TestServer::start();
    let sam_token = cli_ok(&server, &["agent", "add", "sam", "--supervisor"]);
    let alice_token = server.add_agent("alice");
    let mut sam = server.connect().await;
    let welcome = sam.hello_agent("sam", sam_token.trim()).await;
    assert_eq!(welcome["supervisor"], json!(true), "{welcome}");
    let mut alice = server.connect().await;
    let welcome = alice.hello_agent("alice", &alice_token).await;
    assert_eq!(welcome["supervisor"], json!(false), "{welcome}");
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    ana.barrier().await;
}

#[tokio::test]
async fn a_supervisor_releases_resolves_and_transfers_anyones_conversation() {
    let server = TestServer::start();
    let sam_token = cli_ok(&server, &["agent", "add", "sam", "--supervisor"]);
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut sam = agent(&server, "sam", sam_token.trim()).await;
    let mut alice = agent(&server, "alice", &alice_token).await;
    let mut bob = agent(&server, "bob", &bob_token).await;
    let (mut ana, _) = user(&server, "ana").await;
    let question = ana.send_message("hello?").await;
    for agent in [&mut sam, &mut alice, &mut bob] {
        assert_eq!(agent.recv().await, presence("ana", true));
        assert_eq!(agent.recv_message().await, question);
    }
    let answer = alice.send_to_assigning("ana", "alice here").await;
    for client in [&mut sam, &mut bob, &mut ana] {
        assert_eq!(client.recv().await, assigned("ana", "alice"));
        assert_eq!(client.recv_message().await, answer);
    }
    // Bound like any agent for writing.
    let refused = sam
        .request(json!({"type":"send","to":"ana","body":"sam here"}))
        .await;
    assert_eq!(refused["code"], "assigned_to_other");

    let reply = sam
        .request(json!({"type":"release","id":"r","user":"ana"}))
        .await;
    let released_by_sam = json!({"type":"released","user":"ana","agent":"alice","by":"sam"});
    let mut expected = released_by_sam.clone();
    expected["id"] = json!("r");
    assert_eq!(reply, expected);
    for client in [&mut alice, &mut bob, &mut ana] {
        assert_eq!(client.recv().await, released_by_sam);
    }
    // Unheld: a supervisor's transfer gives it.
    let reply = sam
        .request(json!({"type":"transfer","id":"t","user":"ana","to":"bob"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"assigned","id":"t","user":"ana","agent":"bob","by":"sam"})
    );
    for client in [&mut alice, &mut bob, &mut ana] {
        assert_eq!(client.recv().await, transferred("ana", "bob", "sam"));
    }
    // To its holder: the reply (a transfer always names who asked), no event.
    let reply = sam
        .request(json!({"type":"transfer","id":"t2","user":"ana","to":"bob"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"assigned","id":"t2","user":"ana","agent":"bob","by":"sam"})
    );
    // Held by bob: a supervisor resolves it.
    sam.request(json!({"type":"resolve","user":"ana"})).await;
    for client in [&mut alice, &mut bob, &mut ana] {
        assert_eq!(client.recv().await, resolved("ana", "sam"));
    }
    for client in [&mut sam, &mut alice, &mut bob, &mut ana] {
        client.barrier().await;
    }
}

/// Rights are read in each request's commit: a promotion or demotion
/// counts from the agent's next request, on its open connection.
#[tokio::test]
async fn a_promotion_counts_from_the_next_request_without_signing_in_again() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    unsubscribed_user(&server, "ana").await;
    let mut alice = server.connect().await.labelled("alice");
    alice.hello_agent("alice", &alice_token).await;
    let mut bob = server.connect().await.labelled("bob");
    bob.hello_agent("bob", &bob_token).await;
    alice.request(json!({"type":"claim","user":"ana"})).await;
    bob.send(&json!({"type":"release","id":1,"user":"ana"}))
        .await;
    bob.recv_error(json!(1), "not_assigned").await;
    cli_ok(&server, &["agent", "promote", "bob"]);
    let reply = bob
        .request(json!({"type":"release","id":2,"user":"ana"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"released","id":2,"user":"ana","agent":"alice","by":"bob"})
    );
    alice.request(json!({"type":"claim","user":"ana"})).await;
    cli_ok(&server, &["agent", "demote", "bob"]);
    bob.send(&json!({"type":"release","id":3,"user":"ana"}))
        .await;
    bob.recv_error(json!(3), "not_assigned").await;
}
