//! Protocol version 2, "Conversation state": `claim`, the changed
//! `release`, `resolve` and `transfer`. Who hears what (every subscribed
//! agent connection and the user's, the requester the reply instead),
//! the checks in their order, the waiting queue each leaves, and races.
//! On one node and on the 3-node cluster (clients spread over the nodes).

use serde_json::{Value, json};
use switchboard_tests::*;

/// Agents alice (two connections) and bob, and ana, all subscribed, each
/// having seen ana arrive; ana has one question waiting.
struct Desk {
    server: TestServer,
    alice_token: String,
    alice: TestClient,
    alice_laptop: TestClient,
    bob: TestClient,
    ana: TestClient,
    question: Value,
}

impl Desk {
    async fn open() -> Desk {
        let server = TestServer::start();
        let alice_token = server.add_agent("alice");
        let bob_token = server.add_agent("bob");
        let mut alice = agent(&server, "alice", &alice_token).await;
        let mut alice_laptop = agent(&server, "alice", &alice_token)
            .await
            .labelled("alice-laptop");
        let mut bob = agent(&server, "bob", &bob_token).await;
        let (mut ana, _) = user(&server, "ana").await;
        let question = ana.send_message("is anyone there?").await;
        for agent in [&mut alice, &mut alice_laptop, &mut bob] {
            assert_eq!(agent.recv().await, presence("ana", true));
            assert_eq!(agent.recv_message().await, question);
        }
        Desk {
            server,
            alice_token,
            alice,
            alice_laptop,
            bob,
            ana,
            question,
        }
    }

    /// Every connection but the requester hears `event`; then none has
    /// anything more.
    async fn all_but_alice_hear(&mut self, event: &Value) {
        for client in [&mut self.alice_laptop, &mut self.bob, &mut self.ana] {
            assert_eq!(&client.recv().await, event, "{}", client.label());
        }
        self.quiet().await;
    }

    async fn quiet(&mut self) {
        for client in [
            &mut self.alice,
            &mut self.alice_laptop,
            &mut self.bob,
            &mut self.ana,
        ] {
            client.barrier().await;
        }
    }

    /// What a fresh agent connection's subscribe snapshot says of ana:
    /// the waiting messages and the `assigned` frames. (Another of alice's
    /// connections: a new agent would change `agents_online` for ana.)
    async fn snapshot(&self) -> (Vec<Value>, Vec<Value>) {
        agent_snapshot(&self.server, "alice", &self.alice_token).await
    }
}

#[tokio::test]
async fn a_claim_takes_the_conversation_and_everyone_concerned_hears() {
    let mut desk = Desk::open().await;
    let reply = desk
        .alice
        .request(json!({"type":"claim","id":"c1","user":"ana"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"assigned","id":"c1","user":"ana","agent":"alice"})
    );
    desk.all_but_alice_hear(&assigned("ana", "alice")).await;
    // Claiming writes nothing: the question still waits, now alice's.
    let (waiting, held) = desk.snapshot().await;
    assert_eq!(waiting, vec![desk.question.clone()]);
    assert_eq!(held, vec![assigned("ana", "alice")]);
    // Already hers: the reply again, and nobody hears anything.
    let again = desk
        .alice_laptop
        .request(json!({"type":"claim","id":"c2","user":"ana"}))
        .await;
    assert_eq!(
        again,
        json!({"type":"assigned","id":"c2","user":"ana","agent":"alice"})
    );
    desk.quiet().await;
    // Another agent: refused, as an answer would be.
    desk.bob
        .send(&json!({"type":"claim","id":"c3","user":"ana"}))
        .await;
    let refused = desk.bob.recv_error(json!("c3"), "assigned_to_other").await;
    assert_eq!(refused["message"], "ana is assigned to alice");
    let refused = desk
        .bob
        .request(json!({"type":"send","id":"s","to":"ana","body":"me?"}))
        .await;
    assert_eq!(refused["code"], "assigned_to_other");
}

#[tokio::test]
async fn a_release_puts_the_conversation_back_with_its_questions_waiting() {
    let mut desk = Desk::open().await;
    desk.alice
        .request(json!({"type":"claim","id":"c","user":"ana"}))
        .await;
    desk.all_but_alice_hear(&assigned("ana", "alice")).await;
    desk.bob
        .send(&json!({"type":"release","id":"r0","user":"ana"}))
        .await;
    desk.bob.recv_error(json!("r0"), "not_assigned").await;
    let reply = desk
        .alice
        .request(json!({"type":"release","id":"r1","user":"ana"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"released","id":"r1","user":"ana","agent":"alice"})
    );
    desk.all_but_alice_hear(&released("ana", "alice")).await;
    let (waiting, held) = desk.snapshot().await;
    assert_eq!(waiting, vec![desk.question.clone()], "still waiting");
    assert!(held.is_empty(), "nobody holds ana: {held:?}");
    // Anyone may take it now.
    desk.bob.send_to_assigning("ana", "bob here").await;
}

#[tokio::test]
async fn a_resolve_closes_the_conversation_and_a_new_message_reopens_it() {
    let mut desk = Desk::open().await;
    // Unheld with a question waiting: any agent may resolve it.
    let reply = desk
        .bob
        .request(json!({"type":"resolve","id":"s1","user":"ana"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"resolved","id":"s1","user":"ana","agent":"bob"})
    );
    for client in [&mut desk.alice, &mut desk.alice_laptop, &mut desk.ana] {
        assert_eq!(client.recv().await, resolved("ana", "bob"));
    }
    desk.quiet().await;
    let (waiting, held) = desk.snapshot().await;
    assert!(
        waiting.is_empty() && held.is_empty(),
        "{waiting:?} {held:?}"
    );
    // Nothing to resolve: the reply all the same, and no event.
    let reply = desk
        .alice
        .request(json!({"type":"resolve","id":"s2","user":"ana"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"resolved","id":"s2","user":"ana","agent":"alice"})
    );
    desk.quiet().await;
    // A later message waits again; held by alice, bob may not resolve it.
    let later = desk.ana.send_message("one more thing").await;
    for agent in [&mut desk.alice, &mut desk.alice_laptop, &mut desk.bob] {
        assert_eq!(agent.recv_message().await, later);
    }
    desk.alice
        .request(json!({"type":"claim","id":"c","user":"ana"}))
        .await;
    desk.all_but_alice_hear(&assigned("ana", "alice")).await;
    desk.bob
        .send(&json!({"type":"resolve","id":"s3","user":"ana"}))
        .await;
    desk.bob.recv_error(json!("s3"), "not_assigned").await;
    desk.alice
        .request(json!({"type":"resolve","id":"s4","user":"ana"}))
        .await;
    desk.all_but_alice_hear(&resolved("ana", "alice")).await;
    let (waiting, held) = desk.snapshot().await;
    assert!(
        waiting.is_empty() && held.is_empty(),
        "{waiting:?} {held:?}"
    );
}

#[tokio::test]
async fn a_transfer_hands_the_conversation_over_and_says_who_gave_it() {
    let mut desk = Desk::open().await;
    desk.alice
        .send(&json!({"type":"transfer","id":"t0","user":"ana","to":"bob"}))
        .await;
    desk.alice.recv_error(json!("t0"), "not_assigned").await;
    desk.alice
        .request(json!({"type":"claim","id":"c","user":"ana"}))
        .await;
    desk.all_but_alice_hear(&assigned("ana", "alice")).await;
    // The agent is checked before who holds the conversation.
    for (id, to) in [("t1", "zed"), ("t2", "ana"), ("t3", "not valid")] {
        desk.bob
            .send(&json!({"type":"transfer","id":id,"user":"ana","to":to}))
            .await;
        let refused = desk.bob.recv_error(json!(id), "unknown_agent").await;
        let message = refused["message"].as_str().unwrap_or_default();
        // What happened and where to look next.
        assert!(message.contains(to), "{refused}");
        assert!(message.contains("switchboard agent list"), "{refused}");
    }
    desk.bob
        .send(&json!({"type":"transfer","id":"t4","user":"ana","to":"alice"}))
        .await;
    desk.bob.recv_error(json!("t4"), "not_assigned").await;
    // To the holder itself: the reply, no event.
    let reply = desk
        .alice
        .request(json!({"type":"transfer","id":"t5","user":"ana","to":"alice"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"assigned","id":"t5","user":"ana","agent":"alice","by":"alice"})
    );
    desk.quiet().await;
    let reply = desk
        .alice
        .request(json!({"type":"transfer","id":"t6","user":"ana","to":"bob"}))
        .await;
    assert_eq!(
        reply,
        json!({"type":"assigned","id":"t6","user":"ana","agent":"bob","by":"alice"})
    );
    desk.all_but_alice_hear(&transferred("ana", "bob", "alice"))
        .await;
    let (waiting, held) = desk.snapshot().await;
    assert_eq!(waiting, vec![desk.question.clone()], "still waiting");
    assert_eq!(held, vec![assigned("ana", "bob")]);
    // Now bob's: alice may no longer write to ana.
    let refused = desk
        .alice
        .request(json!({"type":"send","to":"ana","body":"still me?"}))
        .await;
    assert_eq!(refused["code"], "assigned_to_other");
}

/// A transfer to an agent with no connection is allowed: it holds the
/// conversation when it comes.
#[tokio::test]
async fn a_transfer_to_an_offline_agent_is_kept_for_it() {
    let mut desk = Desk::open().await;
    let carol_token = desk.server.add_agent("carol");
    desk.alice
        .request(json!({"type":"claim","user":"ana"}))
        .await;
    desk.all_but_alice_hear(&assigned("ana", "alice")).await;
    desk.alice
        .request(json!({"type":"transfer","user":"ana","to":"carol"}))
        .await;
    desk.all_but_alice_hear(&transferred("ana", "carol", "alice"))
        .await;
    let mut carol = desk.server.connect().await;
    carol.hello_agent("carol", &carol_token).await;
    carol.send_to("ana", "carol here").await;
}

#[tokio::test]
async fn only_agents_change_a_conversation_and_an_unknown_user_comes_first() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    for (id, request) in [
        ("c", json!({"type":"claim","user":"ana"})),
        ("r", json!({"type":"release","user":"ana"})),
        ("s", json!({"type":"resolve","user":"ana"})),
        (
            "t",
            json!({"type":"transfer","user":"nobody","to":"nobody"}),
        ),
    ] {
        let mut request = request;
        request["id"] = json!(id);
        ana.send(&request).await;
        ana.recv_error(json!(id), "forbidden").await;
    }
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &token).await;
    for (id, request) in [
        ("c", json!({"type":"claim","user":"nobody"})),
        ("r", json!({"type":"release","user":"nobody"})),
        ("s", json!({"type":"resolve","user":"nobody"})),
        ("t", json!({"type":"transfer","user":"nobody","to":"zed"})),
    ] {
        let mut request = request;
        request["id"] = json!(id);
        alice.send(&request).await;
        alice.recv_error(json!(id), "unknown_user").await;
    }
    // A transfer must say to whom.
    alice
        .send(&json!({"type":"transfer","id":"x","user":"ana"}))
        .await;
    alice.recv_error(json!("x"), "bad_frame").await;
}

/// Two agents claiming, or one claiming while another answers, an unheld
/// user at once: exactly one holds the conversation after.
#[tokio::test]
async fn racing_claims_and_answers_have_exactly_one_winner() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    for round in 0..10 {
        let user_name = format!("u{round}");
        unsubscribed_user(&server, &user_name).await;
        let mut alice = server.connect().await.labelled("alice");
        alice.hello_agent("alice", &alice_token).await;
        let mut bob = server.connect().await.labelled("bob");
        bob.hello_agent("bob", &bob_token).await;
        let claim = json!({"type":"claim","id":"x","user":user_name});
        let other = if round % 2 == 0 {
            claim.clone()
        } else {
            json!({"type":"send","id":"x","to":user_name,"body":"mine"})
        };
        let (a, b) = tokio::join!(alice.request(claim), bob.request(other));
        let won = |reply: &Value| reply["type"] != "error";
        assert!(won(&a) != won(&b), "round {round}: {a} / {b}");
        let loser = if won(&a) { &b } else { &a };
        assert_eq!(loser["code"], "assigned_to_other", "round {round}");
    }
}
