//! What the cluster tests (issue 16) stand on: the throwaway PostgreSQL and
//! `nats-server` start, serve real clients, and survive what the failure
//! tests will do to them (stop and restart, freeze and thaw).
//!
//! A missing server fails these tests with the line that installs it; only
//! `SWITCHBOARD_SKIP_CLUSTER_TESTS=1`, which CI never sets, skips them, and
//! says so.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use switchboard_tests::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

/// How long a client waits for an answer from a running server: an upper
/// bound for a loaded machine, never a measurement.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a frozen `nats-server` is watched for an `INFO` line it must
/// not send. A stopped process writes nothing, so any wait proves it; this
/// one is short to keep the test fast.
const FROZEN_SILENCE: Duration = Duration::from_millis(300);

/// A real PostgreSQL client on `url`, its connection driven by a task.
async fn connect_postgres(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio::time::timeout(
        ANSWER_TIMEOUT,
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    .expect("PostgreSQL answers the connection in time")
    .unwrap_or_else(|error| panic!("connect to {url}: {error}"));
    tokio::spawn(connection);
    client
}

async fn select_1(client: &tokio_postgres::Client) -> i32 {
    let row = tokio::time::timeout(ANSWER_TIMEOUT, client.query_one("SELECT 1", &[]))
        .await
        .expect("PostgreSQL answers SELECT 1 in time")
        .expect("SELECT 1");
    row.get(0)
}

/// Connects to `addr` and reads the server's first line within `wait`.
async fn first_line(stream: TcpStream, wait: Duration) -> Option<String> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    match tokio::time::timeout(wait, reader.read_line(&mut line)).await {
        Ok(Ok(read)) if read > 0 => Some(line),
        _ => None,
    }
}

/// The `INFO {...}` line a NATS server greets every client with, parsed.
async fn nats_info(addr: SocketAddr) -> Value {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to nats-server");
    let line = first_line(stream, ANSWER_TIMEOUT)
        .await
        .expect("nats-server sends its INFO line");
    let json = line
        .strip_prefix("INFO ")
        .unwrap_or_else(|| panic!("not an INFO line: {line:?}"));
    serde_json::from_str(json.trim_end()).expect("INFO carries JSON")
}

#[tokio::test]
async fn postgres_answers_a_real_client() {
    let Some(postgres) = TestPostgres::start() else {
        return;
    };
    let url = postgres.url();
    assert_eq!(
        url,
        format!("postgres://postgres@127.0.0.1:{}/postgres", postgres.port())
    );
    let client = connect_postgres(&url).await;
    assert_eq!(select_1(&client).await, 1);
}

/// The shared PostgreSQL (one per test process) hands each caller a
/// database of its own: what one test writes, another never sees.
#[tokio::test]
async fn the_shared_postgres_gives_each_test_a_fresh_database() {
    let (Some(first), Some(second)) = (fresh_database(), fresh_database()) else {
        return;
    };
    assert_ne!(first, second);
    let port = shared_postgres().expect("started above").port();
    assert!(first.contains(&format!("127.0.0.1:{port}/")), "{first}");
    let one = connect_postgres(&first).await;
    let other = connect_postgres(&second).await;
    one.batch_execute("CREATE TABLE mine (n int)")
        .await
        .expect("create a table");
    let seen = other
        .query_one("SELECT to_regclass('mine') IS NULL", &[])
        .await
        .expect("query the other database");
    assert!(seen.get::<_, bool>(0), "the other database is untouched");
}

#[tokio::test]
async fn postgres_serves_again_after_a_stop_with_what_was_committed() {
    let Some(mut postgres) = TestPostgres::start() else {
        return;
    };
    let client = connect_postgres(&postgres.url()).await;
    client
        .batch_execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7);")
        .await
        .expect("create and fill a table");

    postgres.stop();
    let lost = tokio::time::timeout(ANSWER_TIMEOUT, client.query_one("SELECT 1", &[]))
        .await
        .expect("a client of a stopped server fails in time");
    assert!(lost.is_err(), "a stopped server answered: {lost:?}");

    postgres.start_again();
    let client = connect_postgres(&postgres.url()).await;
    assert_eq!(select_1(&client).await, 1);
    let kept = client
        .query_one("SELECT n FROM kept", &[])
        .await
        .expect("the committed row survives the stop");
    assert_eq!(kept.get::<_, i32>(0), 7);

    postgres.restart();
    assert_eq!(select_1(&connect_postgres(&postgres.url()).await).await, 1);
}

#[tokio::test]
async fn nats_greets_a_raw_client_with_info() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    assert_eq!(nats.url(), format!("nats://{}", nats.addr()));
    let info = nats_info(nats.addr()).await;
    assert_eq!(info["port"], nats.addr().port(), "{info}");
    assert!(info["server_id"].is_string(), "{info}");
}

/// The shared `nats-server` (one per test process, the bus of every
/// cluster in cluster mode) is one server for every caller, and serves.
#[tokio::test]
async fn the_shared_nats_is_one_server_for_every_caller() {
    let (Some(first), Some(second)) = (shared_nats(), shared_nats()) else {
        return;
    };
    assert!(std::ptr::eq(first, second), "started once");
    let info = nats_info(first.addr()).await;
    assert_eq!(info["port"], first.addr().port(), "{info}");
}

#[tokio::test]
async fn frozen_nats_says_nothing_until_thawed() {
    let Some(nats) = TestNats::start() else {
        return;
    };
    nats.freeze();
    // The kernel still completes the handshake for a stopped process; the
    // server itself sends nothing.
    let waiting = TcpStream::connect(nats.addr())
        .await
        .expect("the kernel accepts for a frozen server");
    let (read, write) = waiting.into_split();
    let mut early = BufReader::new(read);
    let mut line = String::new();
    let silent = tokio::time::timeout(FROZEN_SILENCE, early.read_line(&mut line)).await;
    assert!(silent.is_err(), "a frozen server wrote {line:?}");

    nats.thaw();
    let waiting = early.into_inner().reunite(write).expect("same stream");
    let late = first_line(waiting, ANSWER_TIMEOUT)
        .await
        .expect("the thawed server greets the client that waited");
    assert!(late.starts_with("INFO "), "{late:?}");
    let info = nats_info(nats.addr()).await;
    assert_eq!(info["port"], nats.addr().port(), "{info}");
}

#[tokio::test]
async fn killed_nats_serves_again_on_the_same_port() {
    let Some(mut nats) = TestNats::start() else {
        return;
    };
    let before = nats_info(nats.addr()).await;
    nats.stop();
    assert!(
        TcpStream::connect(nats.addr()).await.is_err(),
        "a killed server still accepts"
    );
    nats.start_again();
    let after = nats_info(nats.addr()).await;
    assert_ne!(before["server_id"], after["server_id"], "a new process");
    nats.restart();
    assert_eq!(nats_info(nats.addr()).await["port"], nats.addr().port());
}
