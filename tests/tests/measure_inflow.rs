//! Figures for issue 15, finding 1, not checks: `#[ignore]`d, run by hand
//! on a quiet machine, in release, and printed:
//!
//! ```text
//! cargo build --release --bins
//! SWITCHBOARD_BIN=target/release/switchboard cargo test --release \
//!     -p switchboard-tests --test measure_inflow -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - `what_one_agent_connection_reads`: the bytes a second one agent
//!   connection takes on loopback when users send the longest messages with
//!   every send limit off. The per-user and per-address defaults are sized
//!   from it (docs/protocol.md, open point 29).
//! - `a_fast_agent_while_one_user_floods`: a fast agent's delivery latency
//!   for a quiet user's messages, and whether it is cut off, while one user
//!   floods from 50 connections within each connection's rate.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_tests::*;

const LONG_CHARS: usize = 4_096;

fn long_body(tag: usize) -> String {
    let tag = format!("{tag:05} ");
    let fill = "\u{1F4E6}".repeat(LONG_CHARS - tag.len());
    tag + &fill
}

/// Reads frames as they come until `expected` arrived or `deadline`,
/// returning (frames, bytes, closed).
async fn drain(agent: &mut TestClient, expected: usize, deadline: Instant) -> (usize, usize, bool) {
    let (mut frames, mut bytes) = (0, 0);
    while frames < expected && Instant::now() < deadline {
        match agent.next_frame_within(Duration::from_millis(200)).await {
            None => {}
            Some(None) => return (frames, bytes, true),
            Some(Some(frame)) => {
                frames += 1;
                bytes += frame["message"]["body"].as_str().map_or(0, str::len);
            }
        }
    }
    (frames, bytes, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand, in release"]
async fn what_one_agent_connection_reads() {
    let server = TestServer::start_with(NO_SEND_LIMITS);
    let token = server.add_agent("reader");
    let mut reader = agent(&server, "reader", &token).await;
    let mut senders = Vec::new();
    for n in 0..8 {
        let (mut user, _) = unsubscribed_user(&server, &format!("u{n}")).await;
        senders.push(tokio::spawn(async move {
            // Four in flight per user: 8 users keep about 0.5 MB queued,
            // well inside an agent's outbox, so the agent's reading is the
            // bottleneck, not its cut-off.
            for round in 0..100 {
                let requests: Vec<Value> = (round * 4..round * 4 + 4)
                    .map(|i| json!({"type":"send","id":i,"body":long_body(i)}))
                    .collect();
                user.pipeline(&requests).await;
            }
        }));
    }
    let started = Instant::now();
    let (frames, bytes, closed) =
        drain(&mut reader, 8 * 400, started + Duration::from_secs(30)).await;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "one agent connection read {frames} long messages, {:.1} MB of bodies in {seconds:.1} s: \
         {:.1} MB/s, {:.0} messages/s (cut off: {closed})",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / seconds,
        frames as f64 / seconds
    );
    for sender in senders {
        let _ = sender.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand, in release"]
async fn a_fast_agent_while_one_user_floods() {
    let server = TestServer::start();
    let token = server.add_agent("fast");
    let mut fast = agent(&server, "fast", &token).await;
    let (_, mallory_token) = unsubscribed_user(&server, "mallory").await;
    let flood_for = Duration::from_secs(10);
    let mut floods = Vec::new();
    for c in 0..50 {
        let mut connection = server.connect().await;
        connection.hello_user("mallory", &mallory_token).await;
        floods.push(tokio::spawn(async move {
            let (mut sent, mut refused) = (0, 0);
            let until = Instant::now() + flood_for;
            let mut i = c * 100_000;
            while Instant::now() < until {
                // Each connection's own limit: a burst of 30, then 10 a second.
                let requests: Vec<Value> = (i..i + 10)
                    .map(|i| json!({"type":"send","id":i,"body":long_body(i)}))
                    .collect();
                i += 10;
                for reply in connection.pipeline(&requests).await {
                    if reply["type"] == "sent" {
                        sent += 1;
                    } else {
                        refused += 1;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (sent, refused)
        }));
    }
    // A quiet customer writes every 100 ms; the agent times each arrival.
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    let quiet = tokio::spawn(async move {
        let mut sent_at = Vec::new();
        let until = Instant::now() + flood_for;
        let mut n = 0;
        while Instant::now() < until {
            sent_at.push(Instant::now());
            ana.send(&json!({"type":"send","id":n,"body":format!("probe {n}")}))
                .await;
            n += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent_at
    });
    let mut arrivals = Vec::new();
    let mut closed = false;
    let deadline = Instant::now() + flood_for + Duration::from_secs(3);
    while Instant::now() < deadline {
        match fast.next_frame_within(Duration::from_millis(200)).await {
            None => {}
            Some(None) => {
                closed = true;
                break;
            }
            Some(Some(frame)) => {
                if let Some(probe) = frame["message"]["body"]
                    .as_str()
                    .and_then(|body| body.strip_prefix("probe "))
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    arrivals.push((probe, Instant::now()));
                }
            }
        }
    }
    let sent_at = quiet.await.expect("the quiet user");
    let (mut sent, mut refused) = (0, 0);
    for flood in floods {
        let (ok, no) = flood.await.expect("a flooding connection");
        sent += ok;
        refused += no;
    }
    let mut latencies: Vec<f64> = arrivals
        .iter()
        .filter_map(|(n, at)| {
            sent_at
                .get(*n)
                .map(|sent| (*at - *sent).as_secs_f64() * 1e3)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "flood: {sent} stored, {refused} refused rate_limited; agent cut off: {closed}; \
         {} of {} probes delivered; delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        sent_at.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
}
