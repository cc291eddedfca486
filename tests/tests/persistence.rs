//! Durability: "`sent` only after the message is durably committed". A
//! restart keeps users, agents, messages, assignments and keys; a crash right
//! after the acknowledgements loses none of them.

use serde_json::{Value, json};
use switchboard_tests::*;

#[tokio::test]
async fn restart_keeps_users_agents_messages_assignments_and_keys() {
    let mut server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (mut ana, ana_token) = unsubscribed_user(&server, "ana").await;
    let (mut ben, ben_token) = unsubscribed_user(&server, "ben").await;
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    let question = ana
        .request(json!({"type":"send","key":"q","body":"refund?"}))
        .await;
    let question = question["message"].clone();
    let answer = alice.send_to("ana", "sure").await;
    let waiting = ben.send_message("hello?").await;
    drop((ana, ben, alice));

    server.restart();

    // Users and agents log in with their old tokens.
    let mut ana = server.connect().await;
    ana.hello_user("ana", &ana_token).await;
    let (frames, subscribed) = ana.subscribe().await;
    assert_eq!(messages_in(&frames), vec![question.clone(), answer.clone()]);
    assert_eq!(frames.last(), Some(&assigned("ana", "alice")));
    assert_eq!(subscribed["backlog"], 2);
    assert_eq!(
        ana.history(None, json!({})).await,
        vec![question.clone(), answer]
    );
    let mut ben = server.connect().await;
    ben.hello_user("ben", &ben_token).await;

    // The waiting queue and the assignment survived.
    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    let (frames, _) = bob.subscribe().await;
    assert_eq!(ana.recv().await, json!({"type":"agents","online":1}));
    assert_eq!(messages_in(&frames), vec![waiting.clone()]);
    assert!(frames.contains(&assigned("ana", "alice")), "{frames:?}");
    bob.send(&json!({"type":"send","id":"b","to":"ana","body":"mine?"}))
        .await;
    let refused = bob.recv_error(json!("b"), "assigned_to_other").await;
    assert_eq!(refused["message"], "ana is assigned to alice");

    // So did the key: resending gives the original and stores nothing.
    let again = ana
        .request(json!({"type":"send","key":"q","body":"refund?"}))
        .await;
    assert_eq!(again["message"], question);
    bob.barrier().await;

    // Ids and time stamps keep increasing across the restart.
    let later = ben.send_message("after the restart").await;
    assert_eq!(bob.recv_message().await, later);
    assert!(id_of(&later) > id_of(&waiting));
    assert!(later["ts"].as_str() > waiting["ts"].as_str());
    assert!(server.cli(&["agent", "list"]).status.success());
}

#[tokio::test]
async fn kill_9_right_after_the_acknowledgements_loses_nothing_acknowledged() {
    let mut server = TestServer::start_with(NO_SEND_LIMITS);
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (mut ana, ana_token) = unsubscribed_user(&server, "ana").await;
    let (_, ben_token) = unsubscribed_user(&server, "ben").await;
    let sends: Vec<Value> = (0..300)
        .map(|i| json!({"type":"send","id":i,"key":format!("k{i}"),"body":format!("m{i}")}))
        .collect();
    let mut acknowledged: Vec<Value> = ana
        .pipeline(&sends)
        .await
        .iter()
        .map(|reply| reply["message"].clone())
        .collect();
    let seventh = acknowledged[7].clone();
    assert_eq!(seventh["body"], "m7");
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    let taken = alice.send_to("ben", "ben is mine").await;
    let (_, late_token) = unsubscribed_user(&server, "latecomer").await;

    server.kill9_and_restart();

    let mut ana = server.connect().await;
    ana.hello_user("ana", &ana_token).await;
    let mut stored = ana.history(None, json!({"limit":1000})).await;
    assert_eq!(stored.len(), 300, "every acknowledged message is stored");
    stored.sort_by_key(id_of);
    acknowledged.sort_by_key(id_of);
    assert_eq!(stored, acknowledged);
    // The users, the assignment and the keys, too.
    let mut ben = server.connect().await;
    ben.hello_user("ben", &ben_token).await;
    assert_eq!(ben.history(None, json!({})).await, vec![taken]);
    server
        .connect()
        .await
        .hello_user("latecomer", &late_token)
        .await;
    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    bob.send(&json!({"type":"send","id":"b","to":"ben","body":"mine?"}))
        .await;
    bob.recv_error(json!("b"), "assigned_to_other").await;
    let again = ana
        .request(json!({"type":"send","key":"k7","body":"m7"}))
        .await;
    assert_eq!(again["message"], seventh);
}

#[tokio::test]
async fn resending_a_key_after_reconnecting_returns_the_original() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &token).await;
    let (mut ana, ana_token) = unsubscribed_user(&server, "ana").await;
    let original = ana
        .request(json!({"type":"send","key":"once","body":"hello"}))
        .await;
    let original = original["message"].clone();
    assert_eq!(alice.recv_message().await, original);
    ana.bye().await;

    let mut ana = server.connect().await;
    ana.hello_user("ana", &ana_token).await;
    let again = ana
        .request(json!({"type":"send","id":"r","key":"once","body":"hello"}))
        .await;
    assert_eq!(again, json!({"type":"sent","id":"r","message":original}));
    alice.barrier().await;
    assert_eq!(ana.history(None, json!({})).await, vec![original]);
}

#[tokio::test]
async fn resending_a_key_whose_reply_was_lost_stores_it_once() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &token).await;
    let (mut ana, ana_token) = unsubscribed_user(&server, "ana").await;
    // The connection is gone before the reply can be read.
    ana.send(&json!({"type":"send","key":"lost","body":"did this arrive?"}))
        .await;
    drop(ana);

    let mut ana = server.connect().await;
    ana.hello_user("ana", &ana_token).await;
    let sent = ana
        .request(json!({"type":"send","key":"lost","body":"did this arrive?"}))
        .await;
    assert_eq!(sent["type"], "sent");
    let message = sent["message"].clone();
    assert_message(&message, "ana", None, "did this arrive?", "normal");
    assert_eq!(alice.recv_message().await, message, "delivered once");
    alice.barrier().await;
    assert_eq!(ana.history(None, json!({})).await, vec![message]);
}

/// Makes every insert into the server's database fail (from outside, with
/// triggers on every table) until the returned guard is dropped: the only way
/// to make a real server answer `internal` on demand.
struct FailingInserts {
    db: rusqlite::Connection,
    triggers: Vec<String>,
}

impl FailingInserts {
    fn on(server: &TestServer) -> FailingInserts {
        let db = rusqlite::Connection::open(server.db()).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let tables: Vec<String> = {
            let sql =
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";
            let mut query = db.prepare(sql).unwrap();
            query
                .query_map([], |row| row.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert!(!tables.is_empty(), "the server created no tables");
        let mut triggers = Vec::new();
        for table in tables {
            let trigger = format!("switchboard_test_fail_{table}");
            db.execute_batch(&format!(
                "CREATE TRIGGER \"{trigger}\" BEFORE INSERT ON \"{table}\" \
                 BEGIN SELECT RAISE(ABORT, 'injected by the test'); END;"
            ))
            .unwrap();
            triggers.push(trigger);
        }
        FailingInserts { db, triggers }
    }
}

impl Drop for FailingInserts {
    fn drop(&mut self) {
        for trigger in &self.triggers {
            let _ = self
                .db
                .execute_batch(&format!("DROP TRIGGER \"{trigger}\";"));
        }
    }
}

#[tokio::test]
async fn a_failed_write_is_internal_stores_nothing_and_the_connection_stays() {
    let server = TestServer::start_on_sqlite(&[]);
    let token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &token).await;
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;

    let failing = FailingInserts::on(&server);
    ana.send(&json!({"type":"send","id":"boom","key":"k","body":"lost"}))
        .await;
    ana.recv_error(json!("boom"), "internal").await;
    alice
        .send(&json!({"type":"send","id":"boom2","to":"ana","body":"lost too"}))
        .await;
    alice.recv_error(json!("boom2"), "internal").await;
    alice.barrier().await;
    ana.barrier().await;
    drop(failing);

    // Nothing was half-written: no message, no key, no assignment.
    assert_eq!(ana.history(None, json!({})).await, Vec::<Value>::new());
    let retry = ana
        .request(json!({"type":"send","key":"k","body":"again"}))
        .await;
    assert_eq!(retry["type"], "sent", "{retry}");
    assert_eq!(
        retry["message"]["body"], "again",
        "the failed send left no key behind"
    );
    assert_eq!(alice.recv_message().await, retry["message"]);
    let bob_token = server.add_agent("bob");
    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    bob.send_to("ana", "ana was not assigned to alice").await;
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let server = TestServer::start();
    let agent_token = server.add_agent("alice");
    let (_ana, user_token) = unsubscribed_user(&server, "ana").await;
    let rotated = String::from_utf8(server.cli(&["agent", "rotate", "alice"]).stdout).unwrap();
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(server.dir()).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for token in [agent_token.as_str(), user_token.as_str(), rotated.trim()] {
        let found = stored
            .windows(token.len())
            .any(|window| window == token.as_bytes());
        assert!(
            !found,
            "a token is stored in plain text in the database files"
        );
        assert!(
            !server.recent_log().contains(token),
            "a token reached the server's log"
        );
    }
}
