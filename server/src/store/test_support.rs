//! What the storage tests share: a migrated in-memory database, valid
//! values from literals, and rows added in one call.

use rusqlite::Connection;
use switchboard_protocol::{Body, Name, Priority, Timestamp};

use super::sqlite::{queries, schema};

/// A new in-memory database at the current schema.
pub fn db() -> Connection {
    let mut conn = Connection::open_in_memory().expect("opens");
    schema::migrate(&mut conn).expect("migrates");
    conn
}

pub fn name(text: &str) -> Name {
    Name::parse(text).expect("valid")
}

pub fn body(text: &str) -> Body {
    Body::parse(text, 100).expect("valid")
}

/// Adds an active agent; returns its id.
pub fn add_agent(conn: &Connection, who: &str) -> i64 {
    queries::upsert_agent(conn, &name(who), b"t", Timestamp::from_micros(0)).expect("agent");
    queries::find_agent(conn, &name(who))
        .expect("reads")
        .expect("exists")
        .id
}

/// Stores a message `user` wrote (normal priority) at `ts` µs; returns
/// its id.
pub fn user_message(conn: &Connection, user: i64, ts: i64, text: &str) -> u64 {
    queries::insert_message(
        conn,
        Timestamp::from_micros(ts),
        user,
        None,
        &body(text),
        Priority::Normal,
    )
    .expect("message")
}

/// Adds a user; returns its id.
pub fn add_user(conn: &Connection, who: &str) -> i64 {
    queries::insert_user(conn, &name(who), b"h", Timestamp::from_micros(0)).expect("user")
}
