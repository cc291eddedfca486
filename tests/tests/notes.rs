//! Protocol version 2, "Private notes": an agent's `send` with
//! `"note":true` is stored in the user's conversation (`"note":true` in the
//! message, the field absent on every other message), delivered to every
//! subscribed agent connection, and never to the user: not live, not in
//! the backlog nor its count, not in a `since` resume, not in `history`.
//! It neither needs, takes nor changes the holder, and answers nothing. A
//! user's note is `forbidden`. On one node and on the 3-node cluster
//! (clients spread over the nodes).

use serde_json::{Value, json};
use switchboard_tests::*;

/// Agents alice (two connections) and bob, and ana (two connections), all
/// subscribed; ana has asked one question, which every agent has seen.
struct Desk {
    server: TestServer,
    alice_token: String,
    ana_token: String,
    alice: TestClient,
    alice_laptop: TestClient,
    bob: TestClient,
    ana: TestClient,
    ana_phone: TestClient,
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
        let (mut ana, ana_token) = user(&server, "ana").await;
        let mut ana_phone = user_again(&server, "ana", &ana_token)
            .await
            .labelled("ana-phone");
        let question = ana.send_message("is anyone there?").await;
        assert_eq!(ana_phone.recv_message().await, question);
        for agent in [&mut alice, &mut alice_laptop, &mut bob] {
            assert_eq!(agent.recv().await, presence("ana", true));
            assert_eq!(agent.recv_message().await, question);
        }
        Desk {
            server,
            alice_token,
            ana_token,
            alice,
            alice_laptop,
            bob,
            ana,
            ana_phone,
            question,
        }
    }

    /// `from` writes a note to ana; the `sent` reply's message.
    async fn note(from: &mut TestClient, body: &str) -> Value {
        let sent = from
            .request(json!({"type":"send","to":"ana","body":body,"note":true}))
            .await;
        assert_eq!(sent["type"], "sent", "{}: {sent}", from.label());
        sent["message"].clone()
    }

    /// alice writes to ana (a note when `note`) in a conversation that
    /// needs no taking; every other connection concerned hears it: her
    /// laptop and bob, and ana's two unless it is a note. The message.
    async fn alice_writes(&mut self, body: &str, note: bool) -> Value {
        let message = if note {
            Desk::note(&mut self.alice, body).await
        } else {
            self.alice.send_to("ana", body).await
        };
        let mut hearing = vec![&mut self.alice_laptop, &mut self.bob];
        if !note {
            hearing.extend([&mut self.ana, &mut self.ana_phone]);
        }
        for client in hearing {
            assert_eq!(client.recv_message().await, message, "{}", client.label());
        }
        message
    }

    /// ana asks again; every agent connection and her phone hear it.
    async fn ana_asks(&mut self, body: &str) -> Value {
        let question = self.ana.send_message(body).await;
        for client in [
            &mut self.alice,
            &mut self.alice_laptop,
            &mut self.bob,
            &mut self.ana_phone,
        ] {
            assert_eq!(client.recv_message().await, question, "{}", client.label());
        }
        question
    }

    /// `who` claims ana's conversation; everyone else hears `assigned`.
    async fn claim(&mut self, who: &str) {
        let (claimer, others) = match who {
            "alice" => (
                &mut self.alice,
                [
                    &mut self.alice_laptop,
                    &mut self.bob,
                    &mut self.ana,
                    &mut self.ana_phone,
                ],
            ),
            _ => (
                &mut self.bob,
                [
                    &mut self.alice,
                    &mut self.alice_laptop,
                    &mut self.ana,
                    &mut self.ana_phone,
                ],
            ),
        };
        let reply = claimer.request(json!({"type":"claim","user":"ana"})).await;
        assert_eq!(reply["type"], "assigned", "{reply}");
        for client in others {
            assert_eq!(
                client.recv().await,
                assigned("ana", who),
                "{}",
                client.label()
            );
        }
    }

    /// Neither of ana's connections has anything more.
    async fn ana_heard_nothing(&mut self) {
        self.ana.barrier().await;
        self.ana_phone.barrier().await;
    }

    /// What a fresh agent connection's subscribe snapshot says of ana:
    /// the waiting messages and the `assigned` frames. (Another of alice's
    /// connections: a new agent would change `agents_online` for ana.)
    async fn snapshot(&self) -> (Vec<Value>, Vec<Value>) {
        agent_snapshot(&self.server, "alice", &self.alice_token).await
    }
}

#[tokio::test]
async fn a_note_reaches_every_other_agent_connection_and_never_the_user() {
    let mut desk = Desk::open().await;
    let note = Desk::note(&mut desk.alice, "she was charged twice, refund pending").await;
    assert_eq!(note["note"], true, "{note}");
    assert_eq!(note["from"], "agent");
    assert_eq!(note["agent"], "alice");
    assert_eq!(note["user"], "ana");
    assert!(id_of(&note) > id_of(&desk.question), "one sequence of ids");
    for agent in [&mut desk.alice_laptop, &mut desk.bob] {
        assert_eq!(agent.recv_message().await, note, "{}", agent.label());
    }
    desk.ana_heard_nothing().await;
    desk.alice.barrier().await;
    // Every other message leaves the field out.
    assert!(desk.question.get("note").is_none(), "{}", desk.question);
    let answer = desk.bob.send_to_assigning("ana", "on it").await;
    assert!(answer.get("note").is_none(), "{answer}");
}

#[tokio::test]
async fn a_note_neither_takes_the_conversation_nor_answers_it() {
    let mut desk = Desk::open().await;
    desk.alice_writes("looks like a billing issue", true).await;
    desk.ana_heard_nothing().await;
    let (waiting, held) = desk.snapshot().await;
    assert_eq!(waiting, vec![desk.question.clone()], "still waiting");
    assert_eq!(held, Vec::<Value>::new(), "nobody holds it");
    // bob answers: he takes it, and the question stops waiting.
    desk.bob.send_to_assigning("ana", "let me check").await;
    for client in [
        &mut desk.alice,
        &mut desk.alice_laptop,
        &mut desk.ana,
        &mut desk.ana_phone,
    ] {
        assert_eq!(client.recv().await, assigned("ana", "bob"));
        client.recv_message().await;
    }
    let (waiting, held) = desk.snapshot().await;
    assert_eq!(waiting, Vec::<Value>::new());
    assert_eq!(held, vec![assigned("ana", "bob")]);
    // alice may still note in bob's conversation: no assigned_to_other,
    // and bob keeps it.
    desk.alice_writes("bob, she is a VIP", true).await;
    desk.ana_heard_nothing().await;
    let (_, held) = desk.snapshot().await;
    assert_eq!(held, vec![assigned("ana", "bob")]);
    // A question after a note waits as any question does; the next answer
    // ends it, notes before and after it notwithstanding.
    desk.alice_writes("before", true).await;
    let again = desk.ana_asks("any news?").await;
    desk.alice_writes("still checking", true).await;
    let (waiting, _) = desk.snapshot().await;
    assert_eq!(waiting, vec![again]);
    desk.bob.send_to("ana", "refunded").await;
    let (waiting, _) = desk.snapshot().await;
    assert_eq!(waiting, Vec::<Value>::new());
}

#[tokio::test]
async fn a_note_is_never_in_the_users_backlog_resume_or_history() {
    let mut desk = Desk::open().await;
    desk.claim("alice").await;
    let answer = desk.alice_writes("hello ana", false).await;
    let first_note = desk.alice_writes("first note", true).await;
    let later = desk.alice_writes("all sorted", false).await;
    let last_note = desk.alice_writes("last note", true).await;
    desk.ana_heard_nothing().await;
    let seen = vec![desk.question.clone(), answer.clone(), later.clone()];
    let everything = vec![
        desk.question.clone(),
        answer.clone(),
        first_note,
        later.clone(),
        last_note,
    ];

    // The user's backlog, and its count.
    let mut fresh = user_again(&desk.server, "ana", &desk.ana_token).await;
    let (frames, subscribed) = fresh.subscribe().await;
    assert_eq!(messages_in(&frames), seen);
    assert_eq!(subscribed["backlog"], 3, "{subscribed}");
    // The user's `since` resume.
    let mut resumed = user_again(&desk.server, "ana", &desk.ana_token).await;
    let (frames, _) = resumed
        .subscribe_with(json!({"since": id_of(&desk.question)}))
        .await;
    assert_eq!(messages_in(&frames), vec![answer.clone(), later.clone()]);
    // The user's history: pages count only what the user sees.
    assert_eq!(desk.ana.history(None, json!({})).await, seen);
    assert_eq!(
        desk.ana.history(None, json!({"limit": 1})).await,
        vec![later.clone()]
    );
    assert_eq!(
        desk.ana
            .history(None, json!({"limit": 1, "before": id_of(&later)}))
            .await,
        vec![answer.clone()]
    );

    // Agents read the notes in place, in history and in a resume.
    assert_eq!(desk.bob.history(Some("ana"), json!({})).await, everything);
    let mut watcher = desk.server.connect().await;
    watcher.hello_agent("alice", &desk.alice_token).await;
    let (frames, _) = watcher
        .subscribe_with(json!({"since": id_of(&desk.question)}))
        .await;
    assert_eq!(messages_in(&frames), everything[1..].to_vec());
}

#[tokio::test]
async fn a_users_note_is_forbidden_and_stores_nothing() {
    let mut desk = Desk::open().await;
    desk.ana
        .send(&json!({"type":"send","id":"n1","body":"psst","note":true}))
        .await;
    let refused = desk.ana.recv_error(json!("n1"), "forbidden").await;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|text| text.contains("only agents write notes")),
        "{refused}"
    );
    // `"note":false` is an ordinary message.
    let plain = desk
        .ana
        .request(json!({"type":"send","body":"plain","note":false}))
        .await;
    assert_eq!(plain["type"], "sent", "{plain}");
    assert!(plain["message"].get("note").is_none(), "{plain}");
    assert_eq!(desk.ana_phone.recv_message().await, plain["message"]);
    for agent in [&mut desk.alice, &mut desk.alice_laptop, &mut desk.bob] {
        assert_eq!(agent.recv_message().await, plain["message"]);
        agent.barrier().await;
    }
    // A note that is not a boolean is a malformed frame.
    desk.alice
        .send(&json!({"type":"send","id":"n2","to":"ana","body":"x","note":"yes"}))
        .await;
    desk.alice.recv_error(json!("n2"), "bad_frame").await;
    desk.alice_laptop.barrier().await;
    desk.ana_heard_nothing().await;
}

#[tokio::test]
async fn a_note_sent_again_with_its_key_is_stored_once() {
    let mut desk = Desk::open().await;
    let frame = json!({"type":"send","to":"ana","body":"keyed","note":true,"key":"k1"});
    let first = desk.alice.request(frame.clone()).await;
    assert_eq!(desk.bob.recv_message().await, first["message"]);
    assert_eq!(desk.alice_laptop.recv_message().await, first["message"]);
    // The laptop sends it again: answered with the stored note, and
    // nobody hears it twice.
    let again = desk.alice_laptop.request(frame).await;
    assert_eq!(again["type"], "sent", "{again}");
    assert_eq!(again["message"], first["message"], "the stored note");
    desk.alice.barrier().await;
    desk.bob.barrier().await;
    desk.ana_heard_nothing().await;
}
