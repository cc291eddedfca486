//! What the storage tests share: a migrated in-memory database and valid
//! values from literals.

use rusqlite::Connection;
use switchboard_protocol::Name;

use super::schema;

/// A new in-memory database at the current schema.
pub fn db() -> Connection {
    let mut conn = Connection::open_in_memory().expect("opens");
    schema::migrate(&mut conn).expect("migrates");
    conn
}

pub fn name(text: &str) -> Name {
    Name::parse(text).expect("valid")
}
