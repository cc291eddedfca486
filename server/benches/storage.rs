//! Storage at scale (issue 5): builds a database of 1,000,000 messages with
//! 10,000 still waiting, through the same SQL the writer runs, and measures
//!
//! - the indexed insert rate (messages with their conversation index and the
//!   waiting queue, in 1,000-row transactions),
//! - what a server start costs on that database (open, check, migrate, find
//!   the last time stamp),
//! - what an agent `subscribe` costs on it (the waiting queue, 1,000 rows, plus
//!   every held conversation), the part of `subscribed` latency the database
//!   decides,
//! - and both as a client sees them: the real `switchboard` binary started on
//!   that database until it says it is listening, and an agent's `subscribe`
//!   over TCP until `subscribed` arrives.
//!
//! `cargo bench -p switchboard-server --bench storage` (SWITCHBOARD_BENCH_MESSAGES
//! to change the size). Prints figures; asserts nothing about time.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use switchboard_protocol::{Body, Name, Priority, Timestamp};
use switchboard_server::store::bench_internals::{
    HotStatements, NewMessage, open_database, queries,
};

const USERS: u64 = 10_000;
const TRANSACTION_ROWS: u64 = 1_000;
const WAITING: u64 = 10_000;
/// End-to-end subscribes timed on one connection (re-subscribing sends the
/// backlog again).
const SUBSCRIBES: usize = 5;

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
        let mut hot = HotStatements::new(&tx).expect("prepares");
        for _ in 0..TRANSACTION_ROWS.min(messages - inserted) {
            let user = user_ids[(inserted % USERS) as usize];
            let ts = Timestamp::from_micros(1_700_000_000_000_000 + inserted as i64);
            let id = hot
                .insert_message(NewMessage {
                    ts,
                    user_id: user,
                    agent_id: None,
                    body: &body,
                    priority: Priority::Normal,
                    note: false,
                })
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

    let end_to_end = EndToEnd::measure(&path);
    println!(
        "server start, end to end (process spawned -> \"listening\" logged): {:.1} ms",
        ms(end_to_end.start)
    );
    println!(
        "agent subscribe, end to end ({} frames before `subscribed`): median {:.2} ms, max {:.2} ms ({SUBSCRIBES} runs)",
        end_to_end.backlog_frames,
        ms(end_to_end.subscribes[SUBSCRIBES / 2]),
        ms(end_to_end.subscribes[SUBSCRIBES - 1]),
    );
}

/// The two database targets as a client sees them, against the real binary.
struct EndToEnd {
    start: Duration,
    /// Sorted.
    subscribes: Vec<Duration>,
    backlog_frames: usize,
}

impl EndToEnd {
    fn measure(db: &Path) -> EndToEnd {
        let bin = env!("CARGO_BIN_EXE_switchboard");
        let added = Command::new(bin)
            .args(["agent", "add", "bench-agent", "--db"])
            .arg(db)
            .output()
            .expect("runs `switchboard agent add`");
        assert!(added.status.success(), "agent add: {added:?}");
        let token = String::from_utf8(added.stdout).expect("UTF-8 token");

        let spawned = Instant::now();
        let mut server = Server(
            Command::new(bin)
                .args(["serve", "--listen", "127.0.0.1:0", "--db"])
                .arg(db)
                .env("SWITCHBOARD_LOG", "warn,switchboard_server=info")
                .stderr(Stdio::piped())
                .spawn()
                .expect("starts `switchboard serve`"),
        );
        let mut log = BufReader::new(server.0.stderr.take().expect("piped")).lines();
        let address = log
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let (_, rest) = line.split_once("listening on ")?;
                rest.split_whitespace().next().map(str::to_owned)
            })
            .expect("the server says where it listens");
        let start = spawned.elapsed();
        // Keep reading the log so the server never blocks on a full pipe.
        std::thread::spawn(move || log.for_each(drop));

        let mut client = Client::connect(&address);
        client.expect("greeting");
        client.send(
            json!({"type": "hello", "role": "agent", "name": "bench-agent", "token": token.trim()}),
        );
        client.expect("welcome");
        let mut subscribes = Vec::with_capacity(SUBSCRIBES);
        let mut backlog_frames = 0;
        for _ in 0..SUBSCRIBES {
            let asked = Instant::now();
            client.send(json!({"type": "subscribe", "id": "s"}));
            backlog_frames = client.count_until("subscribed");
            subscribes.push(asked.elapsed());
        }
        subscribes.sort();
        EndToEnd {
            start,
            subscribes,
            backlog_frames,
        }
    }
}

/// Kills the server however the bench ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(address: &str) -> Client {
        let writer = TcpStream::connect(address).expect("connects");
        writer.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(writer.try_clone().expect("clones"));
        Client { reader, writer }
    }

    fn send(&mut self, frame: Value) {
        writeln!(self.writer, "{frame}").expect("writes");
    }

    fn frame(&mut self) -> Value {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).expect("reads");
        assert!(read > 0, "the server closed the connection");
        serde_json::from_str(&line).expect("a JSON frame")
    }

    fn expect(&mut self, kind: &str) {
        let frame = self.frame();
        assert_eq!(frame["type"], kind, "{frame}");
    }

    /// Reads frames up to one of type `kind`; returns how many came before.
    fn count_until(&mut self, kind: &str) -> usize {
        let mut before = 0;
        loop {
            let frame = self.frame();
            if frame["type"] == kind {
                return before;
            }
            assert_ne!(frame["type"], "error", "{frame}");
            before += 1;
        }
    }
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
