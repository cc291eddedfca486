//! Issue 15, finding 1: one customer cannot flood the agents off.
//!
//! Against the server of `685994c`, one user with 50 connections sending
//! 16 KB messages within each connection's rate (10/s, burst 30) had every
//! agent cut off as `slow_consumer` within a fifth of a second, even one
//! reading as fast as it could. What users send is now counted by user and
//! by address across their connections (`--user-rate`, `--user-bytes`,
//! `--address-rate`, `--address-bytes`; docs/protocol.md, open point 29):
//! the flood is refused at its sender with `rate_limited`, and the agents
//! stay.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_tests::*;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The attack's connections, all one user's, all from one address.
const CONNECTIONS: usize = 50;
/// Each connection's default burst (`--burst`): within the per-connection
/// limit, as in the attack.
const SENDS_PER_CONNECTION: usize = 30;

/// A body of the longest kind: 4,096 characters of four bytes each, about
/// 16 KB.
fn long_body(index: usize) -> String {
    let tag = format!("{index:05} ");
    let fill = "\u{1F4E6}".repeat(4_096 - tag.len());
    tag + &fill
}

/// What an agent's reader saw.
struct Watched {
    messages: usize,
    /// The error frames it got (a `slow_consumer` among them if cut off).
    errors: Vec<Value>,
    /// The connection was closed under it.
    closed: bool,
}

/// Reads an agent's frames on its own task (pausing `pause` after each, as
/// a person's client would), until told to stop; then proves with a `ping`
/// that it is still connected and counts everything up to the `pong`.
fn watch(mut agent: TestClient, pause: Duration) -> (oneshot::Sender<()>, JoinHandle<Watched>) {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut watched = Watched {
            messages: 0,
            errors: Vec::new(),
            closed: false,
        };
        let mut stopping = false;
        loop {
            if !stopping && stopped.try_recv().is_ok() {
                stopping = true;
                agent.send(&json!({"type":"ping","id":"still-there"})).await;
            }
            let Some(frame) = agent.next_frame_within(Duration::from_millis(100)).await else {
                continue;
            };
            let Some(frame) = frame else {
                watched.closed = true;
                return watched;
            };
            match frame["type"].as_str() {
                Some("message") => watched.messages += 1,
                Some("error") => watched.errors.push(frame),
                Some("pong") if frame["id"] == "still-there" => return watched,
                _ => {}
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    });
    (stop, task)
}

/// Sends `count` long messages in one write and returns how many were
/// `sent` and the `rate_limited` errors.
async fn burst(mut connection: TestClient, first: usize, count: usize) -> (usize, Vec<Value>) {
    let requests: Vec<Value> = (first..first + count)
        .map(|i| json!({"type":"send","id":i,"body":long_body(i)}))
        .collect();
    let replies = connection.pipeline(&requests).await;
    let mut sent = 0;
    let mut refused = Vec::new();
    for reply in replies {
        match reply["type"].as_str() {
            Some("sent") => sent += 1,
            _ => {
                assert_eq!(reply["code"], "rate_limited", "{reply}");
                refused.push(reply);
            }
        }
    }
    (sent, refused)
}

#[tokio::test]
async fn one_user_on_fifty_connections_cannot_flood_the_agents_off() {
    let server = TestServer::start();
    let fast_token = server.add_agent("fast");
    let steady_token = server.add_agent("steady");
    let (fast_stop, fast) = watch(agent(&server, "fast", &fast_token).await, Duration::ZERO);
    // About 200 frames a second: a person's client, not a load generator.
    let (steady_stop, steady) = watch(
        agent(&server, "steady", &steady_token).await,
        Duration::from_millis(5),
    );

    // A node counts its own connections (docs/protocol.md, point 36):
    // mallory's all reach the same one; the agents may be on any.
    let node = server.node(0);
    let (first, token) = unsubscribed_user(&node, "mallory").await;
    let mut connections = vec![first];
    for _ in 1..CONNECTIONS {
        let mut connection = node.connect().await.labelled("mallory");
        connection.hello_user("mallory", &token).await;
        connections.push(connection);
    }
    let started = Instant::now();
    let floods: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(n, connection)| {
            tokio::spawn(burst(
                connection,
                n * SENDS_PER_CONNECTION,
                SENDS_PER_CONNECTION,
            ))
        })
        .collect();
    let (mut sent, mut refused) = (0, Vec::new());
    for flood in floods {
        let (ok, errors) = flood.await.expect("a flooding connection");
        sent += ok;
        refused.extend(errors);
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut messages_seen = Vec::new();
    for (name, stop, watcher) in [("fast", fast_stop, fast), ("steady", steady_stop, steady)] {
        let _ = stop.send(());
        let watched = tokio::time::timeout(Duration::from_secs(60), watcher)
            .await
            .expect("the agent's reader finishes")
            .expect("the agent's reader");
        assert!(
            !watched.closed && watched.errors.is_empty(),
            "agent {name} was cut off: closed {}, errors {:?}",
            watched.closed,
            watched.errors
        );
        messages_seen.push((name, watched.messages));
    }

    // One user's bytes (64 KiB/s, a burst of 256 KiB): about 16 of these
    // messages at once, 4 a second after, however many connections.
    let bound = 16 + (4.0 * elapsed).ceil() as usize + 2;
    assert!(
        sent <= bound,
        "{sent} long messages stored in {elapsed:.1} s (at most {bound})"
    );
    assert!(sent >= 1, "the user's first messages go through");
    assert_eq!(sent + refused.len(), CONNECTIONS * SENDS_PER_CONNECTION);
    let message = refused[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("all its connections"),
        "the refusal says whose limit it is: {message}"
    );
    for (name, messages) in messages_seen {
        assert_eq!(messages, sent, "agent {name} got every stored message");
    }
}

#[tokio::test]
async fn an_address_is_counted_across_its_users() {
    let server = TestServer::start_with(&["--address-rate", "1", "--address-burst", "4"]);
    let token = server.add_agent("alice");
    let mut alice = agent(&server, "alice", &token).await;
    let mut sent = 0;
    let mut refused = Vec::new();
    // One node counts its own connections' address (point 36).
    for name in ["ana", "bo", "cy"] {
        let (connection, _) = unsubscribed_user(&server.node(0), name).await;
        let (ok, errors) = burst(connection, sent, 3).await;
        sent += ok;
        refused.extend(errors);
    }
    // Four at once, and the refill of the test's own few seconds at most.
    assert!((4..=6).contains(&sent), "{sent} of 9 sent");
    let message = refused[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("network address"),
        "the refusal says the address is over its limit: {message}"
    );
    for _ in 0..sent {
        alice.recv_message().await;
    }
    alice.barrier().await;
}

#[tokio::test]
async fn an_agents_sends_are_not_counted() {
    // The user and address counts keep their defaults; only the
    // per-connection rate is off.
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let token = server.add_agent("alice");
    let (_ana, _) = unsubscribed_user(&server, "ana").await;
    let mut alice = server.connect().await.labelled("alice");
    alice.hello_agent("alice", &token).await;
    // 100 of the longest messages: 1.6 MB at once, far over what one user
    // or one address may send.
    let answers: Vec<Value> = (0..100)
        .map(|i| json!({"type":"send","id":i,"to":"ana","body":long_body(i)}))
        .collect();
    let replies = alice.pipeline(&answers).await;
    assert!(
        replies.iter().all(|reply| reply["type"] == "sent"),
        "{:?}",
        replies.iter().find(|reply| reply["type"] != "sent")
    );
}

#[tokio::test]
async fn zero_turns_the_user_and_address_counts_off() {
    let server = TestServer::start_with(&[
        "--user-rate",
        "0",
        "--user-bytes",
        "0",
        "--address-rate",
        "0",
        "--address-bytes",
        "0",
        "--rate",
        "0",
    ]);
    let (ana, _) = unsubscribed_user(&server, "ana").await;
    let (sent, refused) = burst(ana, 0, 100).await;
    assert_eq!((sent, refused.len()), (100, 0));
}
