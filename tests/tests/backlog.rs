//! PROTOCOL.md "Ordering and backlog": what `subscribe` sends before
//! `subscribed`, for users and agents, `limit`, resuming with `since`, and the
//! 10,000-message cap (`truncated`).
//!
//! One file because it is one section of the protocol, "Ordering and
//! backlog", and its tests share the long-conversation helpers; the stress
//! of backlog against slow readers lives in `abuse_replies.rs`.

use serde_json::{Value, json};
use switchboard_tests::*;
use tokio::task::JoinSet;

/// Frames other than `message`: the state events that follow a backlog.
fn state_events(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|frame| frame["type"] != "message")
        .cloned()
        .collect()
}

/// Sorts frames by their JSON text, to compare sets whose order is not specified.
fn sorted(mut frames: Vec<Value>) -> Vec<Value> {
    frames.sort_by_key(Value::to_string);
    frames
}

#[tokio::test]
async fn offline_user_gets_the_backlog_oldest_first_then_who_holds_them() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let (mut ana, ana_token) = user(&server, "ana").await;
    let one = ana.send_message("one").await;
    let two = ana.send_message("two").await;
    ana.bye().await;
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &token).await;
    let three = alice.send_to("ana", "three").await;
    let four = alice.send_to("ana", "four").await;

    let mut ana = server.connect().await;
    ana.hello_user("ana", &ana_token).await;
    ana.send(&json!({"type":"subscribe","id":"s"})).await;
    for message in [&one, &two, &three, &four] {
        assert_eq!(
            ana.recv().await,
            json!({"type":"message","message":message})
        );
    }
    assert_eq!(ana.recv().await, assigned("ana", "alice"));
    assert_eq!(
        ana.recv().await,
        json!({"type":"subscribed","id":"s","backlog":4,"truncated":false})
    );
    ana.barrier().await;
    // Then live events.
    let five = alice.send_to("ana", "five").await;
    assert_eq!(ana.recv_message().await, five);
}

#[tokio::test]
async fn user_backlog_takes_the_latest_up_to_limit() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let (mut ana, token) = unsubscribed_user(&server, "ana").await;
    let sent = ana.send_messages(&numbered("m", 105)).await;

    let mut ana = server.connect().await;
    ana.hello_user("ana", &token).await;
    let (frames, subscribed) = ana.subscribe_with(json!({"limit":2})).await;
    assert_eq!(messages_in(&frames), sent[103..]);
    assert_eq!(subscribed["backlog"], 2);
    assert_eq!(subscribed["truncated"], false);
    // `limit: 0` gives an empty backlog (interpretation 17).
    let (frames, subscribed) = ana.subscribe_with(json!({"limit":0})).await;
    assert_eq!(frames, Vec::<Value>::new());
    assert_eq!(subscribed["backlog"], 0);
    // Default 100; re-subscribing sends the backlog again (interpretation 18).
    let (frames, subscribed) = ana.subscribe().await;
    assert_eq!(messages_in(&frames), sent[5..]);
    assert_eq!(subscribed["backlog"], 100);
    ana.barrier().await;
}

#[tokio::test]
async fn agent_backlog_is_waiting_messages_by_priority_then_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"urgent":["fire"],"high":["late"],"low":["thanks"]}"#,
    )
    .unwrap();
    let server = TestServer::start_with(&["--priority-rules", rules.to_str().unwrap()]);
    let token = server.add_agent("alice");
    let (mut u1, _) = user(&server, "u1").await;
    let (mut u2, _) = user(&server, "u2").await;
    let (mut u3, _) = user(&server, "u3").await;
    let thanks = u1.send_message("thanks").await;
    let hello = u2.send_message("hello").await;
    let fire = u3.send_message("fire").await;
    let late = u1.send_message("late").await;
    let fire_again = u2.send_message("fire again").await;
    let thanks_bye = u3.send_message("thanks bye").await;
    let talk = u1.send_message("just talk").await;
    let late_too = u2.send_message("late too").await;
    assert_eq!(thanks["priority"], "low");

    let mut alice = server.connect().await;
    alice.hello_agent("alice", &token).await;
    let (frames, subscribed) = alice.subscribe().await;
    let expected = [
        fire, fire_again, late, late_too, hello, talk, thanks, thanks_bye,
    ];
    assert_eq!(
        frames.len(),
        11,
        "8 messages and 3 presence events: {frames:?}"
    );
    let backlog: Vec<Value> = expected
        .iter()
        .map(|m| json!({"type":"message","message":m}))
        .collect();
    assert_eq!(
        frames[..8],
        backlog,
        "urgent, high, normal, low; oldest first within each"
    );
    let online = vec![
        presence("u1", true),
        presence("u2", true),
        presence("u3", true),
    ];
    assert_eq!(sorted(frames[8..].to_vec()), online);
    assert_eq!(subscribed["backlog"], 8);
    assert_eq!(subscribed["truncated"], false);

    // `limit` cuts from the top of that order.
    let (frames, subscribed) = alice.subscribe_with(json!({"limit":3})).await;
    assert_eq!(messages_in(&frames), expected[..3]);
    assert_eq!(subscribed["backlog"], 3);
}

#[tokio::test]
async fn answered_messages_leave_the_waiting_queue() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let (mut ben, _) = unsubscribed_user(&server, "ben").await;
    ana.send_message("first").await;
    ana.send_message("second").await;
    let bens = ben.send_message("ben's").await;
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    alice.send_to("ana", "answer").await;
    let after = ana.send_message("after the answer").await;

    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    let (frames, subscribed) = bob.subscribe().await;
    assert_eq!(messages_in(&frames), vec![bens, after]);
    assert_eq!(subscribed["backlog"], 2);
    let state: Vec<Value> = state_events(&frames)
        .into_iter()
        .filter(|f| f["type"] != "presence")
        .collect();
    assert_eq!(state, vec![assigned("ana", "alice")]);
}

#[tokio::test]
async fn agent_state_comes_after_the_backlog_and_before_subscribed() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (mut ana, _) = user(&server, "ana").await;
    let (_ben, _) = user(&server, "ben").await;
    let question = ana.send_message("question").await;
    // dave never subscribes, so he is not online, but alice holds him.
    let (_dave, _) = unsubscribed_user(&server, "dave").await;
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    alice.send_to("dave", "hello dave").await;

    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    let (frames, subscribed) = bob.subscribe().await;
    assert_eq!(frames[0], json!({"type":"message","message":question}));
    let expected = vec![
        presence("ana", true),
        presence("ben", true),
        assigned("dave", "alice"),
    ];
    assert_eq!(sorted(frames[1..].to_vec()), sorted(expected));
    assert_eq!(subscribed["backlog"], 1);
}

#[tokio::test]
async fn user_resume_with_since_gets_exactly_the_missed_messages() {
    let server = TestServer::start();
    let token = server.add_agent("alice");
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &token).await;
    let (mut ana, ana_token) = user(&server, "ana").await;
    ana.send_message("seen 1").await;
    let reply = alice.send_to("ana", "seen 2").await;
    assert_eq!(ana.recv().await, assigned("ana", "alice"));
    let last_seen = ana.recv_message().await;
    assert_eq!(last_seen, reply);
    ana.bye().await;

    let missed_1 = alice.send_to("ana", "missed 1").await;
    let (mut ben, _) = unsubscribed_user(&server, "ben").await;
    ben.send_message("another conversation").await;
    let missed_2 = alice.send_to("ana", "missed 2").await;

    let mut ana = server.connect().await;
    ana.hello_user("ana", &ana_token).await;
    let (frames, subscribed) = ana.subscribe_with(json!({"since":id_of(&last_seen)})).await;
    assert_eq!(messages_in(&frames), vec![missed_1, missed_2.clone()]);
    assert_eq!(subscribed["backlog"], 2);
    assert_eq!(subscribed["truncated"], false);
    // Resuming from the newest id gives nothing.
    let (frames, subscribed) = ana.subscribe_with(json!({"since":id_of(&missed_2)})).await;
    assert_eq!(messages_in(&frames), Vec::<Value>::new());
    assert_eq!(subscribed["backlog"], 0);
    ana.barrier().await;
}

#[tokio::test]
async fn agent_resume_with_since_gets_every_conversation_in_commit_order() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let (mut ben, _) = unsubscribed_user(&server, "ben").await;
    let mut alice = agent(&server, "alice", &alice_token).await;
    let last_seen = alice
        .send_to_assigning("ana", "before the disconnect")
        .await;
    alice.bye().await;

    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    let mut alice_desk = server.connect().await;
    alice_desk.hello_agent("alice", &alice_token).await;
    let missed = vec![
        ana.send_message("a").await,
        bob.send_to("ben", "b").await,
        ben.send_message("c").await,
        alice_desk.send_to("ana", "d").await,
    ];

    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    let (frames, subscribed) = alice
        .subscribe_with(json!({"since":id_of(&last_seen)}))
        .await;
    assert_eq!(messages_in(&frames), missed);
    assert_eq!(subscribed["backlog"], 4);
    assert_eq!(subscribed["truncated"], false);
}

#[tokio::test]
async fn nothing_is_lost_or_duplicated_between_backlog_and_live_stream() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let token = server.add_agent("alice");
    let (mut ben, ben_token) = unsubscribed_user(&server, "ben").await;
    let count = 300;
    let sends: Vec<Value> = (0..count)
        .map(|i| json!({"type":"send","id":i,"body":format!("b{i}")}))
        .collect();
    // The sends are committed while the two subscriptions below are set up.
    ben.send_many(&sends).await;

    let mut alice = server.connect().await.labelled("alice");
    alice.hello_agent("alice", &token).await;
    let mut ben_again = server.connect().await;
    ben_again.hello_user("ben", &ben_token).await;
    let (agent_frames, _) = alice.subscribe().await;
    let (user_frames, _) = ben_again.subscribe_with(json!({"since":0})).await;

    let replies = ben.collect_replies(&sends).await;
    let mut acknowledged: Vec<u64> = replies
        .iter()
        .map(|reply| id_of(&reply["message"]))
        .collect();
    acknowledged.sort_unstable();
    // alice also hears ben's second connection come online, once, at some
    // point; ben's second connection was told 0 agents in its welcome, before
    // alice subscribed, so it hears the new count once.
    let views = [
        (&mut alice, agent_frames, 1, 0),
        (&mut ben_again, user_frames, 0, 1),
    ];
    for (client, frames, mut presence_owed, mut agents_owed) in views {
        let mut seen = messages_in(&frames);
        while seen.len() < acknowledged.len() || presence_owed > 0 || agents_owed > 0 {
            let frame = client.recv().await;
            if frame["type"] == "message" {
                seen.push(frame["message"].clone());
            } else if frame["type"] == "agents" && agents_owed > 0 {
                assert_eq!(frame, json!({"type":"agents","online":1}));
                agents_owed -= 1;
            } else {
                assert_eq!(frame, presence("ben", true));
                presence_owed -= 1;
            }
        }
        client.barrier().await;
        assert_eq!(
            ids(&seen),
            acknowledged,
            "each message exactly once, in order"
        );
    }
}

/// Over 10,000 messages: the resume cap, and the clamped `limit`s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_over_10000_messages_is_truncated_to_the_newest() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let token = server.add_agent("alice");
    // One long conversation (for the per-conversation clamps) and ten others,
    // written by concurrent connections so the server can batch commits.
    let mut writers = JoinSet::new();
    let mut tokens = Vec::new();
    for (n, count) in std::iter::once(1_010)
        .chain(std::iter::repeat_n(910, 10))
        .enumerate()
    {
        let name = format!("user{n}");
        let (mut client, token) = unsubscribed_user(&server, &name).await;
        tokens.push(token);
        writers.spawn(async move {
            let mut messages = Vec::new();
            for chunk in numbered(&format!("{name} "), count).chunks(100) {
                messages.extend(client.send_messages(chunk).await);
            }
            messages.sort_by_key(id_of);
            (n, messages)
        });
    }
    let mut by_user = vec![Vec::new(); 11];
    while let Some(done) = writers.join_next().await {
        let (n, messages) = done.unwrap();
        by_user[n] = messages;
    }
    let mut all_ids: Vec<u64> = by_user.iter().flat_map(|messages| ids(messages)).collect();
    all_ids.sort_unstable();
    assert_eq!(all_ids.len(), 10_110);

    // An agent resuming after the first message: 10,109 are newer; the newest
    // 10,000 come, in commit order (interpretation 5).
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &token).await;
    let (frames, subscribed) = alice.subscribe_with(json!({"since":all_ids[0]})).await;
    assert_eq!(ids(&messages_in(&frames)), all_ids[110..]);
    assert_eq!(subscribed["backlog"], 10_000);
    assert_eq!(subscribed["truncated"], true);

    // An agent's plain backlog: default limit 1,000, oldest waiting first.
    let (frames, subscribed) = alice.subscribe().await;
    assert_eq!(ids(&messages_in(&frames)), all_ids[..1_000]);
    assert_eq!(subscribed["backlog"], 1_000);
    assert_eq!(subscribed["truncated"], false);
    // Its maximum is 1,000 too (interpretation 17): more is clamped.
    let (frames, subscribed) = alice.subscribe_with(json!({"limit":5_000})).await;
    assert_eq!(ids(&messages_in(&frames)), all_ids[..1_000]);
    assert_eq!(subscribed["backlog"], 1_000);

    // A user's backlog and history: `limit` above the maximum is clamped to 1,000.
    let mut user0 = server.connect().await;
    user0.hello_user("user0", &tokens[0]).await;
    let (frames, subscribed) = user0.subscribe_with(json!({"limit":5_000})).await;
    assert_eq!(messages_in(&frames), by_user[0][10..]);
    assert_eq!(subscribed["backlog"], 1_000);
    let history = user0.history(None, json!({"limit":5_000})).await;
    assert_eq!(history, by_user[0][10..]);
    let history = user0.history(None, json!({})).await;
    assert_eq!(history, by_user[0][960..], "history's default limit is 50");
}

/// Sends `count` messages from the agent on `client` to `user`, 100
/// pipelined at a time, and returns them.
async fn agent_sends(client: &mut TestClient, user: &str, count: usize) -> Vec<Value> {
    let mut messages = Vec::with_capacity(count);
    for chunk in numbered("agent ", count).chunks(100) {
        let requests: Vec<Value> = chunk
            .iter()
            .map(|body| json!({"type":"send","id":client.request_id(),"to":user,"body":body}))
            .collect();
        for reply in client.pipeline(&requests).await {
            assert_eq!(reply["type"], "sent", "{reply}");
            messages.push(reply["message"].clone());
        }
    }
    messages
}

/// The 10,000 cap of a `since` resume holds for users too (interpretations 4
/// and 5): a user whose own conversation has 10,100 messages after `since`
/// (both directions, written while another user's conversation grows) gets
/// exactly the newest 10,000 of them, in commit order, none of the other
/// conversation, and `subscribed` says `"truncated":true`; then the
/// `assigned` that follows a user's backlog. A server without the cap for
/// users, keeping the oldest instead, or saying `false` fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_resume_over_10000_messages_is_truncated_to_the_newest() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let token = server.add_agent("alice");
    let (mut ana, ana_token) = unsubscribed_user(&server, "ana").await;
    let since = id_of(&ana.send_message("seen").await);

    // Four connections of ana and one of ben write at once, so the server
    // can batch commits; alice answers ana meanwhile.
    let mut writers = JoinSet::new();
    for n in 0..4 {
        let mut client = server.connect().await.labelled(&format!("ana#{n}"));
        client.hello_user("ana", &ana_token).await;
        writers.spawn(async move {
            let mut messages = Vec::new();
            for chunk in numbered(&format!("ana#{n} "), 2_500).chunks(100) {
                messages.extend(client.send_messages(chunk).await);
            }
            messages
        });
    }
    let (mut ben, _) = unsubscribed_user(&server, "ben").await;
    writers.spawn(async move {
        let mut messages = Vec::new();
        for chunk in numbered("ben ", 500).chunks(100) {
            messages.extend(ben.send_messages(chunk).await);
        }
        messages
    });
    let mut alice = server.connect().await.labelled("alice");
    alice.hello_agent("alice", &token).await;
    let mut conversation = agent_sends(&mut alice, "ana", 50).await;
    while let Some(done) = writers.join_next().await {
        conversation.extend(done.unwrap().into_iter().filter(|m| m["user"] == "ana"));
    }
    // The newest messages are alice's, so the kept ones go both ways.
    conversation.extend(agent_sends(&mut alice, "ana", 50).await);
    conversation.sort_by_key(id_of);
    assert_eq!(conversation.len(), 10_100);
    assert!(conversation.iter().all(|m| id_of(m) > since));

    let mut ana = server.connect().await;
    ana.hello_user("ana", &ana_token).await;
    let (frames, subscribed) = ana.subscribe_with(json!({"since":since})).await;
    assert_eq!(ids(&messages_in(&frames)), ids(&conversation[100..]));
    assert_eq!(subscribed["backlog"], 10_000);
    assert_eq!(subscribed["truncated"], true);
    assert_eq!(state_events(&frames), vec![assigned("ana", "alice")]);
    assert_eq!(
        frames.last(),
        Some(&assigned("ana", "alice")),
        "after the messages"
    );
    ana.barrier().await;
}

/// An agent's `since` resume is followed, still before `subscribed`, by the
/// state it needs to draw its queue, as its plain backlog is (PROTOCOL.md
/// "Ordering and backlog"): after the missed messages in commit order, one
/// `presence` (`online: true`) per user online now, and one `assigned` per
/// user an agent holds, itself included. A user who went offline, or one who
/// never subscribed, has no `presence`. A server that sends only the messages
/// on a resume, puts state before them, or reports stale presence fails here.
#[tokio::test]
async fn agent_resume_with_since_is_followed_by_presence_and_assignments() {
    let server = TestServer::start();
    let alice_token = server.add_agent("alice");
    let bob_token = server.add_agent("bob");
    let watcher_token = server.add_agent("watcher");
    // carl is online, then leaves; the watcher sees the server know it.
    let (mut carl, _) = user(&server, "carl").await;
    let mut watcher = agent(&server, "watcher", &watcher_token).await;
    assert_eq!(carl.recv().await, json!({"type":"agents","online":1}));
    carl.bye().await;
    assert_eq!(watcher.recv().await, presence("carl", false));

    let (_ana, _) = user(&server, "ana").await;
    let (mut ben, _) = user(&server, "ben").await;
    let (_dave, _) = unsubscribed_user(&server, "dave").await;
    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    let last_seen = alice.send_to("ana", "for ana").await;
    let mut bob = server.connect().await;
    bob.hello_agent("bob", &bob_token).await;
    let missed = [
        bob.send_to("dave", "for dave").await,
        ben.send_message("question").await,
    ];

    let mut alice = server.connect().await;
    alice.hello_agent("alice", &alice_token).await;
    let (frames, subscribed) = alice
        .subscribe_with(json!({"since":id_of(&last_seen)}))
        .await;
    assert_eq!(
        frames.len(),
        6,
        "2 messages, 2 presence and 2 assigned events: {frames:?}"
    );
    let backlog: Vec<Value> = missed
        .iter()
        .map(|message| json!({"type":"message","message":message}))
        .collect();
    assert_eq!(frames[..2], backlog, "the missed messages come first");
    let state = vec![
        presence("ana", true),
        presence("ben", true),
        assigned("ana", "alice"),
        assigned("dave", "bob"),
    ];
    assert_eq!(sorted(frames[2..].to_vec()), sorted(state));
    assert_eq!(subscribed["backlog"], 2);
    assert_eq!(subscribed["truncated"], false);
    alice.barrier().await;
}

/// A resume stops at 8 MiB of message bodies as well as at 10,000 messages
/// (interpretation 5): the newest that fit, then `truncated`. Without the
/// byte bound, 10,000 long messages made a reply of up to 160 MB, read on
/// the writer thread while every other client's sends waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_stops_at_8_mib_of_bodies() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let (mut ana, token) = unsubscribed_user(&server, "ana").await;
    let body = "x".repeat(4_000);
    let mut sent = Vec::new();
    for _ in 0..21 {
        sent.extend(ana.send_messages(&vec![body.clone(); 100]).await);
    }
    // 2,100 bodies of 4,000 bytes: 8,400,000 bytes, over 8 MiB (8,388,608);
    // the newest 2,097 fit.
    let mut again = server.connect().await;
    again.hello_user("ana", &token).await;
    let (frames, subscribed) = again.subscribe_with(json!({"since":0})).await;
    let resumed = messages_in(&frames);
    assert_eq!(ids(&resumed), ids(&sent[3..]));
    assert_eq!(subscribed["backlog"], 2_097);
    assert_eq!(subscribed["truncated"], true);
}
