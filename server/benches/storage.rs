//! Storage at scale (issue 5): builds a database of 1,000,000 messages with
//! 10,000 still waiting, through the same SQL the writer runs, and measures
//!
//! - the indexed insert rate (messages with their conversation index and the
//!   waiting queue, in 1,000-row transactions),
//! - what a server start costs on that database (open, check, migrate, find
//!   the last time stamp),
//! - what an agent `subscribe` costs on it (the waiting queue, 1,000 rows, plus
//!   every held conversation), the part of `subscribed` latency the database
//!   decides.
//!
//! `cargo bench -p switchboard-server --bench storage` (SWITCHBOARD_BENCH_MESSAGES
//! to change the size). Prints figures; asserts nothing about time.

use std::time::{Duration, Instant};

use switchboard_protocol::{Body, Name, Priority, Timestamp};
use switchboard_server::store::{open_database, queries};

const USERS: u64 = 10_000;
const TRANSACTION_ROWS: u64 = 1_000;
const WAITING: u64 = 10_000;

fn main() {
    let messages: u64 = std::env::var("SWITCHBOARD_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let mut conn = open_database(&path).expect("opens");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("pragma");

    let mut user_ids = Vec::new();
    let tx = conn.transaction().expect("begin");
    for i in 0..USERS {
        let name = Name::parse(&format!("user{i}")).expect("valid");
        user_ids.push(
            queries::insert_user(&tx, &name, b"hash", Timestamp::from_micros(0)).expect("user"),
        );
    }
    tx.commit().expect("commit");

    let body = Body::parse(
        "My card was charged twice for order 1182, please help",
        4096,
    )
    .expect("valid");
    let started = Instant::now();
    let mut inserted = 0;
    while inserted < messages {
        let tx = conn.transaction().expect("begin");
        // As the writer does: the hot statements held for the whole group.
        let mut hot = queries::HotStatements::new(&tx).expect("prepares");
        for _ in 0..TRANSACTION_ROWS.min(messages - inserted) {
            let user = user_ids[(inserted % USERS) as usize];
            let ts = Timestamp::from_micros(1_700_000_000_000_000 + inserted as i64);
            let id = hot
                .insert_message(ts, user, None, &body, Priority::Normal)
                .expect("insert");
            // The last WAITING messages stay waiting; the rest were answered.
            if inserted >= messages.saturating_sub(WAITING) {
                hot.add_waiting(id, user, Priority::Normal)
                    .expect("waiting");
            }
            inserted += 1;
        }
        drop(hot);
        tx.commit().expect("commit");
    }
    let insert_time = started.elapsed();
    drop(conn);

    let (start_time, _) = best_of(5, || {
        let conn = open_database(&path).expect("opens");
        queries::last_timestamp(&conn).expect("reads")
    });
    let conn = open_database(&path).expect("opens");
    let (subscribe_time, backlog) = best_of(20, || {
        let waiting = queries::waiting_queue(&conn, 1_000).expect("reads");
        let held = queries::assignments(&conn).expect("reads");
        (waiting.len(), held.len())
    });

    println!("database: {messages} messages, {USERS} users, {WAITING} waiting");
    println!(
        "indexed insert: {:.0} messages/s ({TRANSACTION_ROWS}-row transactions, synchronous=FULL, {:.1} s)",
        messages as f64 / insert_time.as_secs_f64(),
        insert_time.as_secs_f64()
    );
    println!(
        "server start (open, check, migrate, last time stamp): {:.2} ms",
        ms(start_time)
    );
    println!(
        "agent subscribe (waiting queue {} rows + held conversations): {:.2} ms",
        backlog.0,
        ms(subscribe_time)
    );
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let value = f();
        best = best.min(started.elapsed());
        last = Some(value);
    }
    (best, last.expect("at least one run"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
