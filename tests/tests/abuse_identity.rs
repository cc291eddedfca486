//! Issue 15, findings 6, 7 and 10 (names): who a connection is, and what it
//! has already seen, hold while an attacker or a careless client pushes on
//! them. A live connection that re-subscribes sees nothing twice; a removed
//! or rotated agent token stops writing at once; names that differ only in
//! case, or a user taking an agent's name, cannot impersonate anyone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use switchboard_tests::*;
use tokio::task::JoinSet;

/// How many times the agent re-subscribes while users send (the attack
/// test's figure).
const RESUBSCRIBES: usize = 200;
/// How many users send at once while the agent re-subscribes.
const SENDERS: usize = 3;
/// How many sends each user pipelines at a time.
const BURST: usize = 4;

/// A server with every send limit off: these tests send quickly and are
/// about something else. By environment, and `--rate 0`, so that a binary
/// from before the per-user limits (`SWITCHBOARD_BIN`) runs them too.
fn server_sending_fast() -> TestServer {
    TestServer::start_with_env(&["--rate", "0"], &[("SWITCHBOARD_NO_SEND_LIMITS", "true")])
}

/// Finding 6: `subscribe since=<last id seen>` on a connection that is
/// already subscribed, while messages flow. Defined precisely: over the whole
/// run, the ids of the `message` frames the connection receives form one
/// strictly increasing sequence (no repeat, nothing out of order, across
/// every backlog and the live events between them), and at the end it has
/// had every message sent.
#[tokio::test]
async fn resubscribing_a_live_connection_repeats_nothing_and_misses_nothing() {
    let server = server_sending_fast();
    let token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &token).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = JoinSet::new();
    for n in 0..SENDERS {
        let (mut customer, _) = user(&server, &format!("u{n}")).await;
        let stop = Arc::clone(&stop);
        senders.spawn(async move {
            let mut sent = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let burst = numbered(&format!("m{}-", sent.len()), BURST);
                let messages = customer.send_messages(&burst).await;
                sent.extend(messages.iter().map(id_of));
            }
            sent
        });
    }

    let mut seen: Vec<u64> = Vec::new();
    let note = |frame: &Value, seen: &mut Vec<u64>, round: usize| {
        if frame["type"] == "message" {
            let id = id_of(&frame["message"]);
            if let Some(&last) = seen.last() {
                assert!(
                    id > last,
                    "round {round}: message {id} arrived after {last} (ids so far, newest last: {:?})",
                    &seen[seen.len().saturating_sub(8)..]
                );
            }
            seen.push(id);
        }
    };
    for round in 0..RESUBSCRIBES {
        // Traffic between each two re-subscribes: one more message read,
        // and more on their way as the next `subscribe` goes out.
        let before = seen.len();
        while seen.len() == before {
            let frame = alice.recv().await;
            note(&frame, &mut seen, round);
        }
        let since = seen.last().copied().unwrap_or(0);
        let id = format!("s{round}");
        alice
            .send(&json!({"type":"subscribe","id":id,"since":since}))
            .await;
        loop {
            let frame = alice.recv().await;
            assert_ne!(frame["type"], "error", "round {round}: {frame}");
            if frame["type"] == "subscribed" && frame["id"] == id {
                break;
            }
            note(&frame, &mut seen, round);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut all_sent = BTreeSet::new();
    while let Some(sent) = senders.join_next().await {
        all_sent.extend(sent.expect("a sender finished"));
    }
    // Every send is answered, so every message is committed: after the
    // barrier, the agent has been sent each of them.
    alice.send(&json!({"type":"ping","id":"end"})).await;
    loop {
        let frame = alice.recv().await;
        if frame == json!({"type":"pong","id":"end"}) {
            break;
        }
        note(&frame, &mut seen, RESUBSCRIBES);
    }
    let received: BTreeSet<u64> = seen.iter().copied().collect();
    let missing: Vec<_> = all_sent.difference(&received).collect();
    assert!(missing.is_empty(), "never received: {missing:?}");
    assert!(
        all_sent.len() > RESUBSCRIBES,
        "messages flowed while the agent re-subscribed ({} sent)",
        all_sent.len()
    );
}

/// What an old agent connection's `send` (to ben) and `release` (of ana),
/// pipelined right after its token changed, got back: the reply to each
/// that arrived before the credential poll closed the connection (`None`
/// once closed first).
async fn write_with_an_old_token(old: &mut TestClient) -> (Option<Value>, Option<Value>) {
    old.send_raw(
        format!(
            "{}\n{}\n",
            json!({"type":"send","id":"s","to":"ben","body":"from the old token"}),
            json!({"type":"release","id":"r","user":"ana"})
        )
        .as_bytes(),
    )
    .await;
    let (mut send, mut release) = (None, None);
    while send.is_none() || release.is_none() {
        let Some(frame) = old.next_frame().await else {
            break; // the credential poll closed it
        };
        if frame["id"] == "s" {
            send = Some(frame);
        } else if frame["id"] == "r" {
            release = Some(frame);
        }
    }
    (send, release)
}

/// Each reply that arrived is `unauthorized`, and nothing the old token
/// asked for was stored.
async fn assert_refused(server: &TestServer, replies: (Option<Value>, Option<Value>), token: &str) {
    for reply in [replies.0, replies.1].into_iter().flatten() {
        assert_eq!(reply["type"], "error", "an old token wrote: {reply}");
        assert_eq!(reply["code"], "unauthorized", "{reply}");
    }
    let mut alice = agent(server, "alice", token).await;
    let ben = alice.history(Some("ben"), json!({})).await;
    assert!(
        !bodies(&ben).contains(&"from the old token".to_string()),
        "the old connection wrote as alice: {ben:?}"
    );
}

/// ana is held by alice's connection `old` (signed in, not subscribed:
/// it gets replies only), ben waits.
async fn alice_holding_ana(server: &TestServer) -> TestClient {
    let token = server.add_agent("alice");
    let mut old = server.connect().await;
    old.hello_agent("alice", &token).await;
    let (mut ana, _) = user(server, "ana").await;
    ana.send_message("hello?").await;
    let (mut ben, _) = user(server, "ben").await;
    ben.send_message("anyone?").await;
    old.send_to("ana", "hi ana").await;
    old
}

/// Finding 7: `agent remove alice` then `agent add alice`, and the old
/// connection writes before the credential poll (once a second) closes it.
/// The new token is alice's now; the old one must not act as her.
#[tokio::test]
async fn an_agent_removed_and_added_again_is_not_its_old_connection() {
    let server = server_sending_fast();
    let mut old = alice_holding_ana(&server).await;
    let removed = server.cli(&["agent", "remove", "alice"]);
    assert!(removed.status.success(), "{removed:?}");
    let token = server.add_agent("alice");
    let replies = write_with_an_old_token(&mut old).await;
    assert_refused(&server, replies, &token).await;
}

/// Finding 7, the rotate window: `agent rotate alice`, and the connection
/// signed in with the old token writes before the poll closes it.
#[tokio::test]
async fn a_rotated_token_writes_nothing_even_before_the_poll() {
    let server = server_sending_fast();
    let mut old = alice_holding_ana(&server).await;
    let rotated = server.cli(&["agent", "rotate", "alice"]);
    assert!(rotated.status.success(), "{rotated:?}");
    let token = String::from_utf8(rotated.stdout).expect("the token is UTF-8");
    let replies = write_with_an_old_token(&mut old).await;
    assert_refused(&server, replies, token.trim()).await;
}

/// A first `hello` for `name` on a fresh connection: the error it gets
/// (asserting it is `unauthorized`).
async fn registration_refused(server: &TestServer, name: &str, token: Option<&str>) -> Value {
    let mut client = server.connect().await;
    let mut hello = json!({"type":"hello","id":"h","role":"user","name":name});
    if let Some(token) = token {
        hello["token"] = json!(token);
    }
    client.send(&hello).await;
    client.recv_error(json!("h"), "unauthorized").await
}

/// Finding 10, names: `Ana` cannot pass for `ana`, nor a customer for an
/// agent. A name is taken whatever its case, users' and agents' alike; a
/// token signs in only under the exact name it was given for.
#[tokio::test]
async fn names_that_differ_only_in_case_or_belong_to_an_agent_are_taken() {
    let server = TestServer::start();
    server.add_agent("alice");
    let (_ana, ana_token) = user(&server, "ana").await;
    for taken in ["Ana", "ANA", "alice", "Alice"] {
        let refused = registration_refused(&server, taken, None).await;
        let text = refused["message"].as_str().unwrap_or_default();
        assert!(text.contains("whatever their case"), "{taken}: {refused}");
    }
    registration_refused(&server, "Ana", Some(&ana_token)).await;
    let (_ana_b, _) = user(&server, "ana.b").await;

    // And the other way: `agent add` refuses a customer's name, or another
    // spelling of an agent's, saying who has it.
    for (name, holder) in [("Ana", "user ana"), ("ALICE", "agent alice")] {
        let output = server.cli(&["agent", "add", name]);
        assert!(!output.status.success(), "agent add {name} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(holder), "agent add {name}: {stderr}");
    }
}
