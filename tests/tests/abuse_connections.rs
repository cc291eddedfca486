//! Issue 15, finding 9: a burst of connects larger than the server's listen
//! queue. Linux drops the last ACK of a handshake that finds the queue
//! full, so a client can be "connected" to a server that never heard of it
//! and wait for a greeting that never comes. The server now sets its
//! backlog (`--listen-backlog`, default the system's maximum), and every
//! client gives up on a silent connection and retries with jittered
//! backoff: the harness's [`TestClient::connect`] does, and the first test
//! goes through it. The second shows the silent wait it guards against.

use std::time::{Duration, Instant};

use switchboard_tests::*;
use tokio::net::TcpStream;

/// Connections opened at once: far more than the backlog below.
const BURST: usize = 300;
/// A listen queue this short overflows at once under the burst.
const SMALL_BACKLOG: &str = "4";
/// Bounds the whole burst: every connection greeted well within this, even
/// after a few retries on a busy machine (a hang fails instead of hanging).
const BURST_WITHIN: Duration = Duration::from_secs(90);
/// Where Linux says what it does with a handshake that finds the accept
/// queue full: 0 (the default) drops its last ACK in silence.
const ABORT_ON_OVERFLOW: &str = "/proc/sys/net/ipv4/tcp_abort_on_overflow";

/// Runs every future on its own task, so that the burst is really at once
/// on a multi-threaded runtime, and returns their outputs in order.
async fn all_at_once<T: Send + 'static>(
    futures: impl Iterator<Item = impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await.expect("the task ran"));
    }
    outputs
}

/// A server whose listen queue a burst overflows. The burst comes from one
/// address, so the new-connection rate per address is off.
fn with_a_small_backlog() -> TestServer {
    TestServer::start_with(&[
        "--listen-backlog",
        SMALL_BACKLOG,
        "--connections-per-second-per-address",
        "0",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_larger_than_the_listen_backlog_is_greeted_in_full() {
    let server = with_a_small_backlog();
    let addr = server.addr();
    let started = Instant::now();
    let burst =
        (0..BURST).map(|_| TestClient::connect_greeted(addr, GREETING_TIMEOUT, CONNECT_ATTEMPTS));
    let results = tokio::time::timeout(BURST_WITHIN, all_at_once(burst))
        .await
        .expect("the burst is over within its bound");
    let mut clients = Vec::new();
    let mut retried = 0;
    for result in results {
        let (client, attempts) = result.unwrap_or_else(|error| panic!("{error}"));
        retried += usize::from(attempts > 1);
        clients.push(client);
    }
    eprintln!(
        "{BURST} connections greeted in {:.1} s; {retried} needed more than one attempt",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(clients.len(), BURST);
    // Greeted and served: a few sign in.
    for (index, client) in clients.iter_mut().step_by(75).enumerate() {
        client.hello_new_user(&format!("burst{index}")).await;
        client.barrier().await;
    }
}

/// What the harness guards against: the same burst with clients that
/// connect and wait for the greeting without giving up. Most of them are
/// "connected" and hear nothing at all (289 of 300 here, for 20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_retry_a_burst_leaves_clients_waiting_in_silence() {
    // Linux's default; a test that cannot show the hang must not pass as
    // if it had.
    let setting = std::fs::read_to_string(ABORT_ON_OVERFLOW)
        .unwrap_or_else(|error| panic!("this test needs Linux's {ABORT_ON_OVERFLOW}: {error}"));
    assert_eq!(
        setting.trim(),
        "0",
        "{ABORT_ON_OVERFLOW} is not 0: this system resets overflowing handshakes instead of \
         dropping them in silence, so this test cannot show the hang"
    );
    let server = with_a_small_backlog();
    let addr = server.addr();
    let burst = (0..BURST).map(|_| async move {
        let stream = TcpStream::connect(addr).await.ok()?;
        let mut client = TestClient::from_stream(stream);
        // `None`: connected, and nothing came.
        client.next_frame_within(GREETING_TIMEOUT).await.map(|_| ())
    });
    let silent = tokio::time::timeout(BURST_WITHIN, all_at_once(burst))
        .await
        .expect("bounded by the greeting timeout")
        .iter()
        .filter(|outcome| outcome.is_none())
        .count();
    eprintln!("{silent} of {BURST} raw connections heard nothing within {GREETING_TIMEOUT:?}");
    assert!(
        silent > 0,
        "every raw connection was greeted: the burst did not overflow the backlog"
    );
}

/// Without the flag the server asks for the longest queue the system allows
/// (tokio's own default was 1,024), and says so when it starts.
#[test]
fn the_default_backlog_is_the_systems_maximum() {
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("this test needs Linux's /proc/sys/net/core/somaxconn");
    let server = TestServer::start();
    let line = server.log_line("listening on");
    assert!(
        line.contains(&format!("backlog={}", somaxconn.trim())),
        "{line}"
    );
}
