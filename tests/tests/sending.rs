//! PROTOCOL.md "Messages" and "Sending": who receives what, the message's
//! fields, bodies, unknown recipients and idempotent keys.

use serde_json::{Value, json};
use switchboard_tests::*;

#[tokio::test]
async fn user_message_reaches_every_agent_and_the_users_other_connections() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let mut bob = agent(&server, "bob", &bob_token).await;
    // Identified but not subscribed: gets only replies (interpretation 3).
    let mut alice_idle = server.connect().await.labelled("alice-idle");
    alice_idle.hello_agent("alice", &alice_token).await;

    let (mut ana, token) = user(&server, "ana").await;
    assert_eq!(alice.recv().await, presence("ana", true));
    assert_eq!(bob.recv().await, presence("ana", true));
    let mut ana_phone = user_again(&server, "ana", &token)
        .await
        .labelled("ana-phone");
    let mut ben = user(&server, "ben").await.0;
    assert_eq!(alice.recv().await, presence("ben", true));
    assert_eq!(bob.recv().await, presence("ben", true));

    ana.send(&json!({"type":"send","id":"r1","body":"My card was charged twice"}))
        .await;
    let sent = ana.recv_type("sent").await;
    assert_eq!(sent["id"], "r1");
    let message = sent["message"].clone();
    assert_message(&message, "ana", None, "My card was charged twice", "high");
    assert_eq!(
        sent,
        json!({"type":"sent","id":"r1","message":message}),
        "`sent` has exactly these fields"
    );
    let event = ana_phone.recv().await;
    assert_eq!(event, json!({"type":"message","message":message}));
    assert_eq!(alice.recv_message().await, message);
    assert_eq!(bob.recv_message().await, message);

    // The sender gets `sent` only; other users and unsubscribed connections nothing.
    for client in [
        &mut ana,
        &mut ana_phone,
        &mut alice,
        &mut bob,
        &mut alice_idle,
        &mut ben,
    ] {
        client.barrier().await;
    }
}

#[tokio::test]
async fn agent_message_reaches_the_user_and_other_agents_but_not_back() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let mut alice_laptop = agent(&server, "alice", &alice_token)
        .await
        .labelled("alice-laptop");
    let mut bob = agent(&server, "bob", &bob_token).await;
    let (mut ana, token) = user(&server, "ana").await;
    let mut ana_phone = user_again(&server, "ana", &token)
        .await
        .labelled("ana-phone");
    let mut ben = user(&server, "ben").await.0;
    for agent in [&mut alice, &mut alice_laptop, &mut bob] {
        assert_eq!(agent.recv().await, presence("ana", true));
        assert_eq!(agent.recv().await, presence("ben", true));
    }

    alice
        .send(&json!({"type":"send","id":"r2","to":"ana","body":"Looking into it"}))
        .await;
    // The sender's own subscribed connection hears `assigned` too, before `sent`
    // (interpretation 2).
    assert_eq!(alice.recv().await, assigned("ana", "alice"));
    let sent = alice.recv_type("sent").await;
    assert_eq!(sent["id"], "r2");
    let message = sent["message"].clone();
    assert_message(&message, "ana", Some("alice"), "Looking into it", "normal");

    for client in [&mut alice_laptop, &mut bob, &mut ana, &mut ana_phone] {
        assert_eq!(client.recv().await, assigned("ana", "alice"));
        assert_eq!(client.recv_message().await, message);
    }
    for client in [
        &mut alice,
        &mut alice_laptop,
        &mut bob,
        &mut ana,
        &mut ana_phone,
        &mut ben,
    ] {
        client.barrier().await;
    }

    // The holder writes again: no new `assigned`.
    let second = alice.send_to("ana", "Found it").await;
    for client in [&mut alice_laptop, &mut bob, &mut ana, &mut ana_phone] {
        assert_eq!(client.recv_message().await, second);
    }
    for client in [
        &mut alice,
        &mut alice_laptop,
        &mut bob,
        &mut ana,
        &mut ana_phone,
        &mut ben,
    ] {
        client.barrier().await;
    }
}

#[tokio::test]
async fn unsubscribed_connections_can_send_and_get_only_replies() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let mut watcher = agent(&server, "alice", &alice_token).await;
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let message = ana.send_message("hello").await;
    assert_message(&message, "ana", None, "hello", "normal");
    assert_eq!(watcher.recv_message().await, message);

    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    let reply = alice.send_to("ana", "hi Ana").await;
    assert_eq!(watcher.recv().await, assigned("ana", "alice"));
    assert_eq!(watcher.recv_message().await, reply);
    for client in [&mut ana, &mut alice, &mut watcher] {
        client.barrier().await;
    }
}

#[tokio::test]
async fn user_send_ignores_to() {
    let server = TestServer::start();
    unsubscribed_user(&server, "ben").await;
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let sent = ana
        .request(json!({"type":"send","to":"ben","body":"mine"}))
        .await;
    assert_eq!(sent["type"], "sent");
    assert_message(&sent["message"], "ana", None, "mine", "normal");
    let sent = ana
        .request(json!({"type":"send","to":"nobody","body":"still mine"}))
        .await;
    assert_eq!(sent["message"]["user"], "ana");
}

#[tokio::test]
async fn agent_send_to_an_unknown_or_missing_user_is_unknown_user() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &token).await;
    let bob_token = server.add_agent("bob");
    let mut bob = agent(&server, "bob", &bob_token).await;
    let requests = [
        json!({"type":"send","id":"u1","to":"nobody","body":"hi"}),
        json!({"type":"send","id":"u2","body":"to whom?"}),
        json!({"type":"send","id":"u3","to":"not a name","body":"hi"}),
        // Agents are not users.
        json!({"type":"send","id":"u4","to":"bob","body":"hi"}),
    ];
    for request in &requests {
        alice.send(request).await;
        alice
            .recv_error(request["id"].clone(), "unknown_user")
            .await;
    }
    alice.barrier().await;
    bob.barrier().await;
}

#[tokio::test]
async fn invalid_bodies_are_refused_and_not_stored() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let too_long = "a".repeat(4_097);
    let invalid = [
        "",
        "   ",
        " \n\t \r\n ",
        &too_long,
        "bell\u{7}",
        "\u{1b}[31mred",
        "nul\u{0}",
        "carriage\rreturn",
        "\u{7f}delete",
    ];
    for (i, body) in invalid.iter().enumerate() {
        ana.send(&json!({"type":"send","id":i,"body":body})).await;
        ana.recv_error(json!(i), "invalid_body").await;
    }
    // An agent's invalid body is refused before the assignment rule: it neither
    // stores nor assigns.
    let mut alice_desk = server.connect().await;
    alice_desk.hello_agent("alice", &alice_token).await;
    alice_desk
        .send(&json!({"type":"send","id":"b","to":"ana","body":"  "}))
        .await;
    alice_desk.recv_error(json!("b"), "invalid_body").await;
    alice.barrier().await;
    ana.barrier().await;
    assert_eq!(ana.history(None, json!({})).await, Vec::<Value>::new());
    let bob_token = server.add_agent("bob");
    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    bob.send_to("ana", "ana was not assigned by the invalid send")
        .await;
}

#[tokio::test]
async fn bodies_are_trimmed_and_may_hold_newlines_and_tabs() {
    let server = TestServer::start();
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let cases = [
        ("  padded \n", "padded"),
        ("\t\nline one\nline two\tend\n\n", "line one\nline two\tend"),
        ("x", "x"),
        ("inner  spaces  stay", "inner  spaces  stay"),
    ];
    let mut stored = Vec::new();
    for (body, expected) in cases {
        let message = ana.send_message(body).await;
        assert_eq!(message["body"], expected);
        stored.push(message);
    }
    // The limit counts characters (not bytes) after trimming.
    let longest = "a".repeat(4_096);
    let padded = format!("   {longest}\n\n");
    assert_eq!(ana.send_message(&padded).await["body"], longest);
    let wide = "é".repeat(4_096);
    assert_eq!(ana.send_message(&wide).await["body"], wide);
    let emoji = "😀".repeat(4_096);
    assert_eq!(ana.send_message(&emoji).await["body"], emoji);
    let history = ana.history(None, json!({})).await;
    assert_eq!(bodies(&history[..4]), bodies(&stored));
}

#[tokio::test]
async fn ids_and_timestamps_strictly_increase_in_commit_order() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let alice_token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let (mut ben, _) = unsubscribed_user(&server, "ben").await;
    let sends = |who: &str| -> Vec<Value> {
        (0..40)
            .map(|i| json!({"type":"send","id":i,"body":format!("{who} {i}")}))
            .collect()
    };
    // Two connections pipelining at once, so commits interleave.
    let (ana_sends, ben_sends) = (sends("ana"), sends("ben"));
    let (ana_replies, ben_replies) =
        tokio::join!(ana.pipeline(&ana_sends), ben.pipeline(&ben_sends));
    let acknowledged: Vec<Value> = ana_replies
        .iter()
        .chain(&ben_replies)
        .map(|sent| sent["message"].clone())
        .collect();
    // The live stream is in commit order: ids and ts both strictly increase.
    let mut live = Vec::new();
    for _ in 0..80 {
        live.push(alice.recv_message().await);
    }
    alice.barrier().await;
    for pair in live.windows(2) {
        assert!(
            id_of(&pair[0]) < id_of(&pair[1]),
            "ids out of order: {pair:?}"
        );
        assert!(
            pair[0]["ts"].as_str() < pair[1]["ts"].as_str(),
            "ts not increasing: {pair:?}"
        );
    }
    for message in &live {
        assert_timestamp(&message["ts"]);
        assert!(
            acknowledged.contains(message),
            "delivered but never acknowledged: {message}"
        );
    }
    assert_eq!(acknowledged.len(), 80);
}

#[tokio::test]
async fn same_key_from_the_same_sender_stores_and_delivers_once() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &alice_token).await;
    let (mut ana, token) = unsubscribed_user(&server, "ana").await;

    let first = ana
        .request(json!({"type":"send","id":"r1","key":"k1","body":"first"}))
        .await;
    assert_eq!(first["type"], "sent");
    let original = first["message"].clone();
    assert_eq!(alice.recv_message().await, original);

    // Same key again, even with another body: the original, nothing new.
    let again = ana
        .request(json!({"type":"send","id":"r2","key":"k1","body":"second"}))
        .await;
    assert_eq!(again, json!({"type":"sent","id":"r2","message":original}));
    // From another connection of the same user too.
    let mut ana_phone = server.connect().await;
    ana_phone.hello_user("ana", &token).await;
    let again = ana_phone
        .request(json!({"type":"send","id":"r3","key":"k1","body":"x"}))
        .await;
    assert_eq!(again["message"], original);
    alice.barrier().await;
    assert_eq!(ana.history(None, json!({})).await, vec![original.clone()]);

    // Keys are per sender: another user and an agent may use the same key.
    let (mut ben, _) = unsubscribed_user(&server, "ben").await;
    let bens = ben
        .request(json!({"type":"send","key":"k1","body":"ben's"}))
        .await;
    assert_ne!(bens["message"]["id"], original["id"]);
    assert_eq!(alice.recv_message().await, bens["message"]);
    let mut alice_desk = server.connect().await;
    alice_desk.hello_agent("alice", &alice_token).await;
    let reply = alice_desk
        .request(json!({"type":"send","key":"k1","to":"ana","body":"hi"}))
        .await;
    assert_eq!(reply["type"], "sent");
    assert_message(&reply["message"], "ana", Some("alice"), "hi", "normal");
    assert_eq!(alice.recv().await, assigned("ana", "alice"));
    assert_eq!(alice.recv_message().await, reply["message"]);
    let repeat = alice_desk
        .request(json!({"type":"send","key":"k1","to":"ana","body":"hi"}))
        .await;
    assert_eq!(repeat["message"], reply["message"]);
    alice.barrier().await;
    // A different key is a different message.
    let other = ana
        .request(json!({"type":"send","key":"k2","body":"first"}))
        .await;
    assert_ne!(other["message"]["id"], original["id"]);
}
