//! PROTOCOL.md "Assignment": the first agent to write takes the user, others
//! are refused, races have one winner, and `release` ends it.

use serde_json::json;
use switchboard_tests::*;

/// An identified agent connection that did not subscribe: it gets only the
/// replies to its own requests, which keeps race tests simple.
async fn agent_unsubscribed(server: &TestServer, name: &str, token: &str) -> TestClient {
    let mut client = server.connect().await.labelled(name);
    client.hello_agent(name, token).await;
    client
}

#[tokio::test]
async fn first_agent_message_assigns_and_assigned_comes_before_the_message() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let mut bob = agent(&server, "bob", &bob_token).await;
    let (mut ana, _) = user(&server, "ana").await;
    for agent in [&mut alice, &mut bob] {
        assert_eq!(agent.recv().await, presence("ana", true));
    }
    let question = ana.send_message("help").await;
    assert_eq!(alice.recv_message().await, question);
    assert_eq!(bob.recv_message().await, question);

    alice
        .send(&json!({"type":"send","id":"a1","to":"ana","body":"I'm here"}))
        .await;
    assert_eq!(alice.recv().await, assigned("ana", "alice"));
    let answer = alice.recv_type("sent").await["message"].clone();
    for client in [&mut bob, &mut ana] {
        assert_eq!(client.recv().await, assigned("ana", "alice"));
        assert_eq!(client.recv_message().await, answer);
    }
    for client in [&mut alice, &mut bob, &mut ana] {
        client.barrier().await;
    }
}

#[tokio::test]
async fn send_to_a_user_held_by_another_agent_is_refused_and_not_stored() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let carol_token = server.add_agent("carol");
    let mut carol = agent(&server, "carol", &carol_token).await;
    let (mut ana, _) = user(&server, "ana").await;
    assert_eq!(carol.recv().await, presence("ana", true));
    let mut bob = agent_unsubscribed(&server, "bob", &bob_token).await;
    let held = bob.send_to("ana", "bob here").await;
    for client in [&mut carol, &mut ana] {
        assert_eq!(client.recv().await, assigned("ana", "bob"));
        assert_eq!(client.recv_message().await, held);
    }

    let mut alice = agent_unsubscribed(&server, "alice", &alice_token).await;
    alice
        .send(&json!({"type":"send","id":"r2","to":"ana","body":"alice here"}))
        .await;
    assert_eq!(
        alice.recv().await,
        json!({"type":"error","id":"r2","code":"assigned_to_other","message":"ana is assigned to bob"})
    );
    // Reached no one and was not stored.
    for client in [&mut carol, &mut ana, &mut bob, &mut alice] {
        client.barrier().await;
    }
    assert_eq!(alice.history(Some("ana"), json!({})).await, vec![held]);
    // The holder goes on writing, with no new `assigned`.
    let next = bob.send_to("ana", "still bob").await;
    assert_eq!(carol.recv_message().await, next);
    assert_eq!(ana.recv_message().await, next);
    carol.barrier().await;
    ana.barrier().await;
}

#[tokio::test]
async fn two_agents_racing_for_a_user_have_exactly_one_winner() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let carol_token = server.add_agent("carol");
    let mut watcher = agent(&server, "carol", &carol_token).await;
    let mut alice = agent_unsubscribed(&server, "alice", &alice_token).await;
    let mut bob = agent_unsubscribed(&server, "bob", &bob_token).await;

    for round in 0..8 {
        let user = format!("racer{round}");
        unsubscribed_user(&server, &user).await;
        let from_alice = json!({"type":"send","id":"a","to":user,"body":"alice wants it"});
        let from_bob = json!({"type":"send","id":"b","to":user,"body":"bob wants it"});
        tokio::join!(alice.send(&from_alice), bob.send(&from_bob));
        let (alice_reply, bob_reply) = tokio::join!(alice.recv(), bob.recv());
        let alice_won = alice_reply["type"] == "sent" && bob_reply["type"] == "error";
        let bob_won = bob_reply["type"] == "sent" && alice_reply["type"] == "error";
        assert!(
            alice_won || bob_won,
            "round {round}: expected one `sent` and one error: {alice_reply} / {bob_reply}"
        );
        let (winner, winning, losing, loser_id) = if alice_won {
            ("alice", alice_reply, bob_reply, "b")
        } else {
            ("bob", bob_reply, alice_reply, "a")
        };
        assert_error(&losing, json!(loser_id), "assigned_to_other");
        assert_eq!(losing["message"], format!("{user} is assigned to {winner}"));
        assert_eq!(watcher.recv().await, assigned(&user, winner));
        assert_eq!(watcher.recv_message().await, winning["message"]);
        watcher.barrier().await;
        let history = watcher.history(Some(user.as_str()), json!({})).await;
        assert_eq!(history, vec![winning["message"].clone()], "round {round}");
    }
}

#[tokio::test]
async fn release_by_the_holder_tells_every_agent_and_the_user() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let mut alice_laptop = agent(&server, "alice", &alice_token)
        .await
        .labelled("alice-laptop");
    let mut bob = agent(&server, "bob", &bob_token).await;
    let (mut ana, _) = user(&server, "ana").await;
    for agent in [&mut alice, &mut alice_laptop, &mut bob] {
        assert_eq!(agent.recv().await, presence("ana", true));
    }
    let answer = alice.send_to_assigning("ana", "hi").await;
    for client in [&mut alice_laptop, &mut bob, &mut ana] {
        assert_eq!(client.recv().await, assigned("ana", "alice"));
        assert_eq!(client.recv_message().await, answer);
    }

    alice
        .send(&json!({"type":"release","id":"r3","user":"ana"}))
        .await;
    // The releasing connection gets the reply only (interpretation 1).
    assert_eq!(
        alice.recv().await,
        json!({"type":"released","id":"r3","user":"ana","agent":"alice"})
    );
    for client in [&mut alice_laptop, &mut bob, &mut ana] {
        assert_eq!(client.recv().await, released("ana", "alice"));
    }
    for client in [&mut alice, &mut alice_laptop, &mut bob, &mut ana] {
        client.barrier().await;
    }

    // The user is free: another agent can take them.
    let taken = bob.send_to_assigning("ana", "bob now").await;
    assert_eq!(ana.recv().await, assigned("ana", "bob"));
    assert_eq!(ana.recv_message().await, taken);
}

#[tokio::test]
async fn release_by_another_agent_is_not_assigned() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    unsubscribed_user(&server, "ana").await;
    let mut alice = agent_unsubscribed(&server, "alice", &alice_token).await;
    let mut bob = agent_unsubscribed(&server, "bob", &bob_token).await;
    alice.send_to("ana", "mine").await;
    bob.send(&json!({"type":"release","id":"x","user":"ana"}))
        .await;
    bob.recv_error(json!("x"), "not_assigned").await;
    // Still alice's.
    bob.send(&json!({"type":"send","id":"y","to":"ana","body":"let me"}))
        .await;
    let refused = bob.recv_error(json!("y"), "assigned_to_other").await;
    assert_eq!(refused["message"], "ana is assigned to alice");
}

#[tokio::test]
async fn release_of_an_unheld_or_unknown_user() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    unsubscribed_user(&server, "ana").await;
    let mut alice = agent_unsubscribed(&server, "alice", &token).await;
    // Interpretation 14.
    alice
        .send(&json!({"type":"release","id":1,"user":"ana"}))
        .await;
    alice.recv_error(json!(1), "not_assigned").await;
    alice
        .send(&json!({"type":"release","id":2,"user":"nobody"}))
        .await;
    alice.recv_error(json!(2), "unknown_user").await;
    // Released once, the second release finds nobody holding the user.
    alice.send_to("ana", "hi").await;
    let reply = alice
        .request(json!({"type":"release","id":3,"user":"ana"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"released","id":3,"user":"ana","agent":"alice"})
    );
    alice
        .send(&json!({"type":"release","id":4,"user":"ana"}))
        .await;
    alice.recv_error(json!(4), "not_assigned").await;
}

#[tokio::test]
async fn release_by_a_user_is_forbidden() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let (mut ana, _) = user(&server, "ana").await;
    let mut alice = agent_unsubscribed(&server, "alice", &token).await;
    alice.send_to("ana", "hi").await;
    assert_eq!(ana.recv().await, assigned("ana", "alice"));
    ana.recv_message().await;
    ana.send(&json!({"type":"release","id":"r","user":"ana"}))
        .await;
    ana.recv_error(json!("r"), "forbidden").await;
    ana.barrier().await;
    // Still assigned to alice.
    let bob_token = server.add_agent("bob");
    let mut bob = agent_unsubscribed(&server, "bob", &bob_token).await;
    bob.send(&json!({"type":"send","id":"b","to":"ana","body":"hello"}))
        .await;
    bob.recv_error(json!("b"), "assigned_to_other").await;
}

/// Protocol version 2: a release puts the conversation back in the queue
/// with its questions still waiting (version 1 dropped them).
#[tokio::test]
async fn release_keeps_the_users_waiting_messages_waiting() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    ana.send_message("help").await;
    let mut alice = agent_unsubscribed(&server, "alice", &alice_token).await;
    alice.send_to("ana", "on it").await;
    let waiting = ana.send_message("still there?").await;

    // Another agent's queue shows the message after the answer, and who holds ana.
    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    let (frames, subscribed) = bob.subscribe().await;
    assert_eq!(messages_in(&frames), vec![waiting.clone()]);
    assert!(frames.contains(&assigned("ana", "alice")), "{frames:?}");
    assert_eq!(subscribed["backlog"], 1);

    alice.request(json!({"type":"release","user":"ana"})).await;
    assert_eq!(bob.recv().await, released("ana", "alice"));
    let mut carol = server.connect().await;
    carol.hello_agent("bob", &bob_token).await;
    let (frames, subscribed) = carol.subscribe().await;
    assert_eq!(messages_in(&frames), vec![waiting], "still waiting");
    assert!(
        !frames.iter().any(|frame| frame["type"] == "assigned"),
        "nobody holds ana: {frames:?}"
    );
    assert_eq!(subscribed["backlog"], 1);
}
