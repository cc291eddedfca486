//! PROTOCOL.md "Other requests": `ping`, user presence for agents, and the
//! number of agents online for users.

use serde_json::json;
use switchboard_tests::*;

#[tokio::test]
async fn agents_see_a_user_come_online_once_and_go_offline_with_the_last_connection() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &token).await;
    let (mut ben, _) = user(&server, "ben").await;
    assert_eq!(alice.recv().await, presence("ben", true));

    let (ana, ana_token) = user(&server, "ana").await;
    assert_eq!(alice.recv().await, presence("ana", true));
    // A second subscribed connection, and one that never subscribes: no event.
    let ana_phone = user_again(&server, "ana", &ana_token).await;
    let mut ana_idle = server.connect().await;
    ana_idle.hello_user("ana", &ana_token).await;
    alice.barrier().await;

    // Closing one of two subscribed connections: still online. Closing the
    // last: offline. (Had the first close announced `false`, it would be the
    // first presence frame alice sees.)
    // The `false` comes after the grace (`--presence-grace-ms`, 2 s by
    // default, point 34): no barrier covers it, `recv` waits for it.
    ana_phone.bye().await;
    ana.bye().await;
    assert_eq!(alice.recv().await, presence("ana", false));
    // Users hear nothing of other users.
    ben.barrier().await;
    // The idle connection does not make ana online, and closing it says nothing.
    ana_idle.bye().await;
    // Dropping the socket without `bye` counts as closing too.
    drop(ben);
    assert_eq!(alice.recv().await, presence("ben", false));
    alice.barrier().await;

    // Back online.
    let _ana = user_again(&server, "ana", &ana_token).await;
    assert_eq!(alice.recv().await, presence("ana", true));
}

#[tokio::test]
async fn a_subscribing_agent_learns_who_is_online_and_who_is_held() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (_ana, _) = user(&server, "ana").await;
    let (_ben, _) = user(&server, "ben").await;
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    alice.send_to("ana", "hi").await;

    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    let (mut frames, subscribed) = bob.subscribe().await;
    frames.sort_by_key(|frame| frame.to_string());
    let mut expected = vec![
        presence("ana", true),
        presence("ben", true),
        assigned("ana", "alice"),
    ];
    expected.sort_by_key(|frame| frame.to_string());
    assert_eq!(frames, expected);
    assert_eq!(subscribed["backlog"], 0);
}

#[tokio::test]
async fn users_know_how_many_agents_are_online() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut ana = server.connect().await.labelled("ana");
    let (ana_token, welcome) = ana.hello_new_user("ana").await;
    assert_eq!(welcome["agents_online"], 0);
    ana.subscribe().await;

    let alice = agent(&server, "alice", &alice_token).await;
    assert_eq!(ana.recv().await, json!({"type":"agents","online":1}));
    // Distinct agents count (interpretation 10): alice's second connection
    // changes nothing, nor does an agent that did not subscribe.
    let alice_laptop = agent(&server, "alice", &alice_token).await;
    let mut bob_idle = server.connect().await;
    bob_idle.hello_agent("bob", &bob_token).await;
    ana.barrier().await;
    let mut bob = agent(&server, "bob", &bob_token).await;
    assert_eq!(ana.recv().await, json!({"type":"agents","online":2}));
    // Agents do not get `agents` events.
    bob.barrier().await;

    let mut ben = server.connect().await;
    let (_, welcome) = ben.hello_new_user("ben").await;
    assert_eq!(welcome["agents_online"], 2);
    let returning = server.connect().await.hello_user("ana", &ana_token).await;
    assert_eq!(returning["agents_online"], 2);

    bob.bye().await;
    assert_eq!(ana.recv().await, json!({"type":"agents","online":1}));
    // Closing one of alice's two connections: still online; the last: offline.
    alice_laptop.bye().await;
    alice.bye().await;
    assert_eq!(ana.recv().await, json!({"type":"agents","online":0}));
    ana.barrier().await;
    // An unsubscribed user connection gets no `agents` events.
    ben.barrier().await;
}

#[tokio::test]
async fn ping_is_answered_at_every_stage_after_hello() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let (mut ana, _) = user(&server, "ana").await;
    let mut alice = agent(&server, "alice", &token).await;
    assert_eq!(ana.recv().await, json!({"type":"agents","online":1}));
    ana.send(&json!({"type":"ping","id":1})).await;
    assert_eq!(ana.recv().await, json!({"type":"pong","id":1}));
    alice.send(&json!({"type":"ping","id":"one"})).await;
    assert_eq!(alice.recv().await, json!({"type":"pong","id":"one"}));
}

/// Point 16 of the protocol notes: once the sender has `sent`, a `ping` on
/// any other connection is answered only after that connection's copy of
/// the message. With hundreds of agent connections the fan-out takes a
/// while, so this fails if the server answers the sender before fanning out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_a_barrier_even_with_many_connections() {
    // 400 connections from one address at once: past the default burst of
    // new connections an address may open (`abuse_presence.rs`).
    let no_connection_rate = ["--connections-per-second-per-address", "0"];
    let server = TestServer::start_with(&[NO_SEND_LIMITS, &no_connection_rate].concat());
    let token = server.add_agent("alice");
    let mut watchers = Vec::new();
    for _ in 0..400 {
        watchers.push(agent(&server, "alice", &token).await);
    }
    let mut last = watchers.pop().expect("a last watcher");
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    for round in 0..30 {
        let sent = ana.send_message(&format!("round {round}")).await;
        last.send(&json!({"type":"ping","id":round})).await;
        let first = last.recv().await;
        assert_eq!(
            first["type"], "message",
            "round {round}: the message before the pong"
        );
        assert_eq!(first["message"], sent);
        assert_eq!(last.recv().await, json!({"type":"pong","id":round}));
    }
}
