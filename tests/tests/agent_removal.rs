//! What `switchboard agent rotate` and `agent remove`, run from another
//! process, do to a running server: connections signed in with the old
//! token are closed, and a removed agent's conversations go back to the
//! queue, announced to everyone concerned, also when it was added again at
//! once or removed while the server was down. (The commands' own output
//! is tested in `cli.rs`.) On one node and on the 3-node cluster.

use serde_json::json;
use switchboard_tests::*;

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
    let new = String::from_utf8_lossy(&output.stdout).trim().to_string();
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
    let new_token = String::from_utf8_lossy(&again.stdout).trim().to_string();
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
