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

/// Finding 6: `subscribe since=<last id seen>` on a connection that is
/// already subscribed, while messages flow. Defined precisely: over the whole
/// run, the ids of the `message` frames the connection receives form one
/// strictly increasing sequence (no repeat, nothing out of order, across
/// every backlog and the live events between them), and at the end it has
/// had every message sent.
#[tokio::test]
async fn resubscribing_a_live_connection_repeats_nothing_and_misses_nothing() {
    let server = TestServer::start_with(&["--rate", "0"]);
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
