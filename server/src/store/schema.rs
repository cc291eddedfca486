//! The database layout and its migrations.
//!
//! `PRAGMA user_version` says which migrations have run; `application_id`
//! marks the file as switchboard's, so the server refuses to write its tables
//! into someone else's database.
//!
//! Hot paths and the indexes that serve them:
//! - a user's conversation, newest first: `messages(user_id, id)`;
//! - the waiting queue by priority then age: a small `waiting` table (a row
//!   per unanswered user message, deleted when answered) indexed by
//!   `(urgency DESC, message_id)`. Keeping the queue out of `messages` keeps
//!   that big table's inserts to one secondary index that only appends.
//!
//! Ids and time stamps are integers (time in microseconds); text is only for
//! what people read.

use rusqlite::Connection;
use thiserror::Error;

/// "SWBD": written into the database header by the first migration.
pub const APPLICATION_ID: i32 = 0x5357_4244;

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE agents (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        token_hash  BLOB,             -- NULL once the agent is removed
        created_us  INTEGER NOT NULL
     );
     CREATE TABLE users (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        token_hash  BLOB NOT NULL,
        created_us  INTEGER NOT NULL,
        assigned_agent_id INTEGER REFERENCES agents(id)
     );
     CREATE TABLE messages (
        id          INTEGER PRIMARY KEY,
        ts_us       INTEGER NOT NULL,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        agent_id    INTEGER REFERENCES agents(id), -- NULL: written by the user
        body        TEXT NOT NULL,
        priority    INTEGER NOT NULL  -- 0 low, 1 normal, 2 high, 3 urgent
     );
     CREATE INDEX messages_by_conversation ON messages(user_id, id);
     CREATE TABLE waiting (
        message_id  INTEGER PRIMARY KEY REFERENCES messages(id),
        user_id     INTEGER NOT NULL,
        urgency     INTEGER NOT NULL
     );
     CREATE INDEX waiting_by_priority ON waiting(urgency DESC, message_id);
     CREATE INDEX waiting_by_user ON waiting(user_id);
     -- Idempotency keys: a sender is (role, id), role 0 user, 1 agent.
     CREATE TABLE send_keys (
        sender_role INTEGER NOT NULL,
        sender_id   INTEGER NOT NULL,
        key         TEXT NOT NULL,
        message_id  INTEGER NOT NULL,
        PRIMARY KEY (sender_role, sender_id, key)
     ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i32 = MIGRATIONS.len() as i32;

#[derive(Debug, Error)]
pub enum SchemaError {
    #[error(
        "this database is not switchboard's (application_id {found:#x}); \
         refusing to touch it: give --db a new file or a switchboard database"
    )]
    NotOurs { found: i32 },
    #[error(
        "this database has schema version {found}, newer than this switchboard \
         understands ({CURRENT_VERSION}); run a newer switchboard"
    )]
    TooNew { found: i32 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Pragmas every connection needs.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Another process (the `agent` CLI) may hold the write lock briefly.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Checks the file is ours and brings its schema up to date.
pub fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let has_tables: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')",
        [],
        |r| r.get(0),
    )?;
    if app_id != APPLICATION_ID && (app_id != 0 || has_tables) {
        return Err(SchemaError::NotOurs { found: app_id });
    }
    if version > CURRENT_VERSION {
        return Err(SchemaError::TooNew { found: version });
    }
    // WAL: readers never block the writer. Set once; it is persistent.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", index as i32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_new_database_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().expect("opens");
        migrate(&mut conn).expect("first run");
        migrate(&mut conn).expect("second run is a no-op");
        let version: i32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("reads");
        assert_eq!(version, CURRENT_VERSION);
    }

    #[test]
    fn refuses_a_foreign_database() {
        let mut conn = Connection::open_in_memory().expect("opens");
        conn.execute_batch("CREATE TABLE invoices (id INTEGER)")
            .expect("creates");
        assert!(matches!(
            migrate(&mut conn),
            Err(SchemaError::NotOurs { found: 0 })
        ));
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().expect("opens");
        migrate(&mut conn).expect("migrates");
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .expect("sets");
        assert!(matches!(
            migrate(&mut conn),
            Err(SchemaError::TooNew { .. })
        ));
    }
}
