//! The operator port (`--metrics-listen`, issue 16 "Operations"): `/metrics`
//! in the Prometheus text format, `/healthz`, 404 for the rest, and every
//! bound a client of that port meets (request size, time, connections).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a condition polled through the port may take to hold.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The server's bound on one exchange (`metrics/endpoint.rs`), plus room.
const EXCHANGE_BOUND: Duration = Duration::from_secs(15);

fn metrics_server(extra: &[&str]) -> TestServer {
    let mut args = vec!["--metrics-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    TestServer::start_with(&args)
}

/// Scrapes `/metrics` until `holds` is true of it; fails after
/// [`SETTLE_TIMEOUT`] (for what moves when a session task ends, which no
/// frame tells a client).
async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    holds: impl Fn(&HttpReply) -> bool,
) -> HttpReply {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let scrape = http_get(addr, "/metrics").await;
        if holds(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never held:\n{}",
            scrape.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn connections(scrape: &HttpReply) -> [f64; 3] {
    ["user", "agent", "anonymous"]
        .map(|role| scrape.sample(&format!("switchboard_connections{{role=\"{role}\"}}")))
}

#[tokio::test]
async fn the_counters_move_with_a_conversation() {
    // What one node counts for itself (docs/protocol.md, point 36):
    // every client of this test reaches the same node.
    // From the environment, as every flag can be.
    let server = TestServer::start_with_env(
        NO_SEND_LIMITS,
        &[("SWITCHBOARD_METRICS_LISTEN", "127.0.0.1:0")],
    );
    let port = server.metrics_addr();
    let before = http_get(port, "/metrics").await;
    assert_eq!(before.status, 200, "{before:?}");
    assert!(
        before
            .head
            .contains("Content-Type: text/plain; version=0.0.4"),
        "the Prometheus text format: {}",
        before.head
    );
    assert!(
        before
            .body
            .contains("# TYPE switchboard_commit_duration_seconds histogram")
    );
    assert_eq!(connections(&before), [0.0, 0.0, 0.0]);
    assert_eq!(before.sample("switchboard_messages_stored_total"), 0.0);
    assert_eq!(before.sample("switchboard_healthy"), 1.0);

    let token = server.add_agent("alice");
    let mut alice = agent(&server.node(0), "alice", &token).await;
    let (mut ana, _) = user(&server.node(0), "ana").await;
    assert_eq!(alice.recv().await, presence("ana", true));
    let mut stranger = server.connect_to(0).await;
    stranger
        .send(&json!({"type":"send","id":"x","body":"hello?"}))
        .await;
    stranger.recv_error(json!("x"), "not_authenticated").await;
    let during = http_get(port, "/metrics").await;
    assert_eq!(connections(&during), [1.0, 1.0, 1.0], "{}", during.body);
    let deliveries_before = during.sample("switchboard_deliveries_total");

    for body in ["one", "two", "three"] {
        ana.send_message(body).await;
        assert_eq!(alice.recv_message().await["body"], body);
    }
    alice.send_to_assigning("ana", "how can I help?").await;
    assert_eq!(ana.recv_type("assigned").await["agent"], "alice");
    assert_eq!(ana.recv_message().await["body"], "how can I help?");
    // Every figure below moved before the frames that were just read were
    // queued: storage counts before it hands a commit on, the router
    // before a frame is in an outbox.

    let after = http_get(port, "/metrics").await;
    assert_eq!(after.sample("switchboard_messages_stored_total"), 4.0);
    // ana's three to alice and their three `sent`; alice's answer to ana,
    // `assigned` to both and alice's `sent`.
    assert!(
        after.sample("switchboard_deliveries_total") >= deliveries_before + 10.0,
        "{}",
        after.body
    );
    assert!(after.sample("switchboard_commits_total") >= 4.0);
    assert_eq!(after.sample("switchboard_commit_failures_total"), 0.0);
    assert!(after.sample("switchboard_commit_duration_seconds_count") >= 4.0);
    assert_eq!(
        after.sample("switchboard_refusals_total{code=\"not_authenticated\"}"),
        1.0
    );
    assert_eq!(
        after.sample("switchboard_refusals_total{code=\"internal\"}"),
        0.0
    );

    drop((alice, ana, stranger));
    scrape_until(port, "every connection gone", |scrape| {
        connections(scrape) == [0.0, 0.0, 0.0]
    })
    .await;
    let health = http_get(port, "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
}

#[tokio::test]
async fn anything_but_the_two_paths_is_refused_and_the_node_goes_on() {
    let server = metrics_server(&[]);
    let port = server.metrics_addr();
    let missing = http_get(port, "/admin").await;
    assert_eq!(missing.status, 404, "{missing:?}");
    assert!(
        missing.body.contains("/metrics"),
        "says what exists: {}",
        missing.body
    );
    let post = http_exchange(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert_eq!(post.status, 405, "{post:?}");
    let head = http_exchange(port, b"HEAD /healthz HTTP/1.1\r\n\r\n").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""), "{head:?}");
    assert!(head.head.contains("Content-Length: 3"), "{head:?}");
    let garbage = http_exchange(port, b"\x16\x03\x01\x02\x00 not http\r\n\r\n").await;
    assert_eq!(garbage.status, 400, "{garbage:?}");
    // A head far past the bound: refused once the bound is read, and the
    // rest of what was sent does not turn the answer into a reset.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Junk: {}\r\n\r\n",
        "j".repeat(60_000)
    );
    let refused = http_exchange(port, huge.as_bytes()).await;
    assert_eq!(refused.status, 431, "{refused:?}");

    let health = http_get(port, "/healthz").await;
    assert_eq!(health.status, 200, "{health:?}");
    let (mut ana, _) = user(&server, "ana").await;
    ana.send_message("still here").await;
}

/// A connection to `port` from the loopback address `127.0.0.{host}`: the
/// port counts slots per client address, and loopback has many.
async fn connect_from(host: u8, port: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, host], 0)))
        .expect("binds a loopback source address");
    socket.connect(port).await.expect("connects")
}

/// Reads until the server closes; what it said, or `None` if it kept the
/// connection past the bound.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut answer = Vec::new();
    tokio::time::timeout(EXCHANGE_BOUND, stream.read_to_end(&mut answer))
        .await
        .ok()
        .map(|_| answer)
}

/// Clients that connect and say nothing, from four addresses, four each
/// (the most one address may hold), fill every slot: one more connection is
/// closed unanswered while the protocol port serves on, and each silent one
/// is dropped, unanswered, once it has sent no request head in time.
#[tokio::test]
async fn silent_clients_are_bounded_in_number_and_in_time() {
    let server = metrics_server(&[]);
    let port = server.metrics_addr();
    let started = Instant::now();
    let mut silent = Vec::new();
    for host in 2..=5 {
        for _ in 0..4 {
            silent.push(connect_from(host, port).await);
        }
    }
    // The accept loop takes them in order: once one more is refused, all
    // sixteen hold a slot.
    let mut extra = connect_from(6, port).await;
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").await;
    let answer = read_until_closed(&mut extra).await;
    let answer = answer.expect("the seventeenth connection was held, not closed");
    assert!(
        answer.is_empty(),
        "closed unanswered: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let (mut ana, _) = user(&server, "ana").await;
    ana.send_message("the protocol port is not affected").await;

    for mut stream in silent {
        let rest = read_until_closed(&mut stream).await;
        let rest =
            rest.unwrap_or_else(|| panic!("a silent client was kept past {EXCHANGE_BOUND:?}"));
        assert!(rest.is_empty(), "no answer to no request");
    }
    assert!(started.elapsed() < EXCHANGE_BOUND + EXCHANGE_BOUND);
    assert_eq!(http_get(port, "/healthz").await.status, 200);
}

/// One outsider holding silent connections cannot crowd out the load
/// balancer: it gets four slots, the rest of its connections are closed,
/// and `/healthz` from another address is answered meanwhile. (With the
/// slots for everyone, the probe was closed unanswered and the healthy node
/// would have been pulled out of service.)
#[tokio::test]
async fn one_address_cannot_crowd_out_the_health_probe() {
    let server = metrics_server(&[]);
    let port = server.metrics_addr();
    let mut silent = Vec::new();
    for _ in 0..16 {
        silent.push(connect_from(2, port).await);
    }
    let healthz = http_get(port, "/healthz").await;
    assert_eq!(healthz.status, 200, "{healthz:?}");
    let mut closed_at_once = 0;
    for stream in &mut silent {
        let mut byte = [0; 1];
        let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await;
        if matches!(read, Ok(Ok(0))) {
            closed_at_once += 1;
        }
    }
    assert!(
        closed_at_once >= 12,
        "one address held {} of its 16 connections, not at most 4",
        16 - closed_at_once
    );
}

/// The database locked by another process: the send is answered
/// `internal`, `/healthz` says 503 with the reason, and once the lock is
/// gone it says 200 again with no client traffic at all (its probe commit).
#[tokio::test]
async fn healthz_is_503_while_the_node_cannot_commit_and_200_once_it_can() {
    // About SQLite's file lock: on SQLite whatever the suite runs on.
    let server = TestServer::start_on_sqlite(
        &[NO_SEND_LIMITS, &["--metrics-listen", "127.0.0.1:0"]].concat(),
    );
    let port = server.metrics_addr();
    let (mut ana, _) = unsubscribed_user(&server, "ana").await;
    ana.send_message("before the lock").await;
    assert_eq!(http_get(port, "/healthz").await.status, 200);

    // Another process takes the write lock and keeps it past the server's
    // busy timeout (5 s), as in storage_faults.rs.
    let locker = SqliteWriteLock::take(&server);
    let reply = locker.send_during(&mut ana).await;
    assert_eq!(reply["code"], "internal", "{reply}");

    let health = http_get(port, "/healthz").await;
    assert_eq!(health.status, 503, "{health:?}");
    assert!(
        health.body.contains("last commit failed") && health.body.ends_with('\n'),
        "{health:?}"
    );
    assert_eq!(
        health.body.lines().count(),
        1,
        "one line: {:?}",
        health.body
    );
    let scrape = http_get(port, "/metrics").await;
    assert_eq!(scrape.sample("switchboard_healthy"), 0.0);
    assert!(scrape.sample("switchboard_commit_failures_total") >= 1.0);
    assert!(scrape.sample("switchboard_refusals_total{code=\"internal\"}") >= 1.0);

    locker.release();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let health = http_get(port, "/healthz").await;
        if health.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still unhealthy: {health:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ana.send_message("after the lock").await;
}

#[test]
fn a_metrics_address_that_cannot_be_bound_stops_the_server_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = taken.local_addr().expect("an address").to_string();
    let dir = tempfile::tempdir().expect("a directory");
    let mut child = std::process::Command::new(switchboard_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &address,
            "--db",
        ])
        .arg(dir.path().join("switchboard.db"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    // A server that wrongly starts would run for ever: bounded.
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    while child.try_wait().expect("waits").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("collects");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot listen for metrics on {address} (--metrics-listen)"
        )),
        "{stderr}"
    );
}

/// From the shutdown signal until the server exits, `/healthz` answers 503
/// (it takes no new connections, so a load balancer must send them
/// elsewhere), while a stuck client holds the drain open.
#[tokio::test]
async fn healthz_is_503_while_the_server_drains() {
    let mut args = NO_SEND_LIMITS.to_vec();
    args.extend(["--shutdown-grace", "30"]);
    let mut server = metrics_server(&args);
    let port = server.metrics_addr();
    let _stuck = stuck_reader(&server).await;
    assert_eq!(http_get(port, "/healthz").await.status, 200);
    server.signal("TERM");
    let draining = scrape_health_until_not_ok(port).await;
    assert_eq!(draining.status, 503, "{draining:?}");
    assert!(
        draining.body.contains("shutting down") && draining.body.contains("another node"),
        "{draining:?}"
    );
    server.signal_and_wait("KILL");
}

/// `/healthz` asked until it is not 200; fails after [`SETTLE_TIMEOUT`].
async fn scrape_health_until_not_ok(port: SocketAddr) -> HttpReply {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let reply = http_get(port, "/healthz").await;
        if reply.status != 200 {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz stayed 200 after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
