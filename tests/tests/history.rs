//! PROTOCOL.md "Ordering and backlog", `history`: the latest messages of one
//! conversation below `before`, oldest first, and who may read which.

use serde_json::{Value, json};
use switchboard_tests::*;

/// `ana` and agent `alice` after a short conversation; returns the messages.
async fn conversation(server: &TestServer) -> (TestClient, TestClient, Vec<Value>) {
    let token = server.add_agent("alice");
    let (mut ana, _) = unsubscribed_user(server, "ana").await;
    let mut alice = server.connect().await.labelled("alice");
    alice.hello_agent("alice", &token).await;
    let mut messages = Vec::new();
    for i in 0..10 {
        let message = if i % 3 == 2 {
            alice.send_to("ana", &format!("reply {i}")).await
        } else {
            ana.send_message(&format!("question {i}")).await
        };
        messages.push(message);
    }
    (ana, alice, messages)
}

#[tokio::test]
async fn history_returns_the_conversation_oldest_first_and_names_it() {
    let server = TestServer::start();
    let (mut ana, mut alice, messages) = conversation(&server).await;
    // Someone else's conversation is not part of it.
    unsubscribed_user(&server, "ben")
        .await
        .0
        .send_message("ben's")
        .await;

    ana.send(&json!({"type":"history","id":"r4"})).await;
    assert_eq!(
        ana.recv().await,
        json!({"type":"history","id":"r4","user":"ana","messages":messages}),
        "interpretation 7: the reply names the conversation"
    );
    assert_eq!(ana.history(Some("ana"), json!({})).await, messages);
    alice
        .send(&json!({"type":"history","id":5,"user":"ana"}))
        .await;
    assert_eq!(
        alice.recv().await,
        json!({"type":"history","id":5,"user":"ana","messages":messages})
    );
}

#[tokio::test]
async fn history_takes_the_latest_limit_below_before() {
    let server = TestServer::start();
    let (mut ana, mut alice, messages) = conversation(&server).await;
    let before = id_of(&messages[7]);
    let page = ana.history(None, json!({"before":before,"limit":3})).await;
    assert_eq!(page, messages[4..7]);
    assert_eq!(
        ana.history(None, json!({"before":before})).await,
        messages[..7]
    );
    assert_eq!(ana.history(None, json!({"limit":4})).await, messages[6..]);
    let first = id_of(&messages[0]);
    assert_eq!(
        alice.history(Some("ana"), json!({"before":first})).await,
        Vec::<Value>::new()
    );
    // Paging back from the first id of a page continues where it ended.
    let earlier = alice
        .history(Some("ana"), json!({"before":id_of(&page[0]),"limit":3}))
        .await;
    assert_eq!(earlier, messages[1..4]);
}

#[tokio::test]
async fn history_default_limit_is_50() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let sent = ana.send_messages(&numbered("m", 55)).await;

    assert_eq!(ana.history(None, json!({})).await, sent[5..]);
}

#[tokio::test]
async fn history_of_a_user_without_messages_is_empty() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    assert_eq!(ana.history(None, json!({})).await, Vec::<Value>::new());
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &token).await;
    assert_eq!(
        alice.history(Some("ana"), json!({})).await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn a_user_may_read_only_their_own_history() {
    let server = TestServer::start();
    let (mut ben, _) = unsubscribed_user(&server, "ben").await;
    ben.send_message("private").await;
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    for (id, user) in [(1, "ben"), (2, "nobody"), (3, "not a name")] {
        ana.send(&json!({"type":"history","id":id,"user":user}))
            .await;
        ana.recv_error(json!(id), "forbidden").await;
    }
    ana.barrier().await;
}

#[tokio::test]
async fn an_agent_must_name_an_existing_user() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    unsubscribed_user(&server, "ana").await;
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &token).await;
    alice.send(&json!({"type":"history","id":"none"})).await;
    alice.recv_error(json!("none"), "unknown_user").await;
    alice
        .send(&json!({"type":"history","id":"nobody","user":"nobody"}))
        .await;
    alice.recv_error(json!("nobody"), "unknown_user").await;
    alice
        .send(&json!({"type":"history","id":"bad","user":"not a name"}))
        .await;
    alice.recv_error(json!("bad"), "unknown_user").await;
    // Agents are not users.
    alice
        .send(&json!({"type":"history","id":"agent","user":"alice"}))
        .await;
    alice.recv_error(json!("agent"), "unknown_user").await;
    assert_eq!(
        alice.history(Some("ana"), json!({})).await,
        Vec::<Value>::new()
    );
}
