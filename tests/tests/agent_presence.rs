//! Protocol version 2, "Agent presence": subscribed agents hear other
//! agents come online (first subscribed connection) and go offline (last
//! one closed, at once: the users' presence grace is not theirs), never of
//! themselves; an agent's
//! subscribe state lists every agent online, itself included. Users hear
//! nothing of it. On one node and on the 3-node cluster.

use serde_json::{Value, json};
use switchboard_tests::*;

fn agent_presence(name: &str, online: bool) -> Value {
    json!({"type":"presence","role":"agent","name":name,"online":online})
}

/// The agents' presence events among `frames`.
fn agents_in(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|frame| frame["type"] == "presence" && frame["role"] == "agent")
        .cloned()
        .collect()
}

async fn watching_agent(server: &TestServer, name: &str, token: &str) -> (TestClient, Vec<Value>) {
    let mut client = server
        .connect()
        .await
        .labelled(name)
        .seeing_agent_presence();
    client.hello_agent(name, token).await;
    let (frames, _) = client.subscribe().await;
    (client, frames)
}

#[tokio::test]
async fn agents_hear_each_other_come_and_go_but_never_themselves() {
    let server = TestServer::start_with(&["--presence-grace-ms", "0"]);
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (mut alice, state) = watching_agent(&server, "alice", &alice_token).await;
    assert_eq!(
        agents_in(&state),
        [agent_presence("alice", true)],
        "itself included"
    );
    let (mut bob, state) = watching_agent(&server, "bob", &bob_token).await;
    assert_eq!(
        agents_in(&state),
        [agent_presence("alice", true), agent_presence("bob", true)]
    );
    assert_eq!(alice.recv().await, agent_presence("bob", true));
    // A second connection of bob's changes nothing; bob hears nothing of
    // himself.
    let (mut bob_laptop, _) = watching_agent(&server, "bob", &bob_token).await;
    alice.barrier().await;
    bob.barrier().await;
    // Users hear of agents only as a count.
    let (mut ana, _) = user(&server, "ana").await;
    ana.barrier().await;
    assert_eq!(alice.recv().await, presence("ana", true));
    assert_eq!(bob.recv().await, presence("ana", true));
    assert_eq!(bob_laptop.recv().await, presence("ana", true));
    // Offline only with bob's last connection.
    drop(bob);
    ana.barrier().await;
    alice.barrier().await;
    drop(bob_laptop);
    assert_eq!(alice.recv().await, agent_presence("bob", false));
    assert_eq!(ana.recv().await, json!({"type":"agents","online":1}));
}

/// A signed-in agent that did not subscribe is not present.
#[tokio::test]
async fn an_agent_that_did_not_subscribe_is_not_online() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (mut alice, _) = watching_agent(&server, "alice", &alice_token).await;
    let mut bob = server.connect().await.seeing_agent_presence();
    bob.hello_agent("bob", &bob_token).await;
    bob.barrier().await;
    alice.barrier().await;
}

/// Agents are trusted: the grace that hides a customer's reconnect does
/// not apply to them. The letter of version 2: `false` when an agent's last
/// connection closes. With a ten-minute grace, bob's `false` still comes at
/// once (well within the receive timeout) and his return is heard, while
/// ana's departure is held back.
#[tokio::test]
async fn an_agent_going_is_heard_at_once_whatever_the_users_grace() {
    let server = TestServer::start_with(&["--presence-grace-ms", "600000"]);
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (mut alice, _) = watching_agent(&server, "alice", &alice_token).await;
    let (bob, _) = watching_agent(&server, "bob", &bob_token).await;
    assert_eq!(alice.recv().await, agent_presence("bob", true));
    let (ana, _) = user(&server, "ana").await;
    assert_eq!(alice.recv().await, presence("ana", true));
    drop(ana);
    drop(bob);
    assert_eq!(alice.recv().await, agent_presence("bob", false));
    let (_bob, _) = watching_agent(&server, "bob", &bob_token).await;
    assert_eq!(alice.recv().await, agent_presence("bob", true));
    alice.barrier().await;
}
