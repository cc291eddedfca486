//! The PostgreSQL side of `switchboard copy` (`store/copy`): an empty
//! database filled in one transaction, a batch of rows a round trip.
//!
//! [`Target::open`] connects, creates (or upgrades) switchboard's schema
//! as `serve` would, and takes the one-server advisory lock for as long as
//! the copy runs: a server already on the database is refused, and none
//! can start on it until the copy is done. [`Target::begin`] starts the
//! transaction on the sequencer row, as every write does, so an `agent`
//! command waits for the copy instead of slipping in, and refuses a
//! database that holds any user, agent or message. Each batch is one
//! `INSERT … SELECT FROM unnest(arrays)`: one statement and one round trip
//! for thousands of rows, with the values as typed parameters (no text
//! escaping of bodies). [`Target::finish`] sets the sequencer row and the
//! identity sequences, then commits: a failure anywhere before leaves the
//! database as empty as it was.

use std::error::Error;

use super::conn::Conn;
use super::queries::clock;
use super::schema::Settle;
use super::url::PostgresUrl;
use super::{PostgresError, Result, SERVER_LOCK, connect, settle_schema};
use crate::store::copy::error::CopyError;
use crate::store::copy::records::{
    AgentRecord, KeyRecord, MessageRecord, Record, ReleaseDueRecord, Sequencer, UserRecord,
    WaitingRecord,
};

/// A record as written to its PostgreSQL table.
pub(in crate::store) trait Import: Record {
    /// Inserts `rows` in one statement; the rows inserted.
    fn insert(conn: &mut Conn, rows: Vec<Self>) -> Result<u64>;
}

/// A PostgreSQL database opened for a copy, locked against a server.
pub(in crate::store) struct Target {
    conn: Conn,
}

impl Target {
    pub(in crate::store) fn open(url: &PostgresUrl) -> std::result::Result<Target, CopyError> {
        let conn = connect(url).map_err(CopyError::Target)?;
        let mut conn = settle_schema(conn, Settle::Migrate).map_err(CopyError::Target)?;
        let locked = conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&SERVER_LOCK])
            .and_then(|row| super::queries::get::<bool>(&row, 0));
        let target = Target { conn };
        match locked {
            Ok(true) => Ok(target),
            Ok(false) => Err(CopyError::TargetInUse { url: target.url() }),
            Err(error) => Err(target.failed(error)),
        }
    }

    /// The database, shown without its password.
    pub(in crate::store) fn url(&self) -> String {
        self.conn.url().to_string()
    }

    /// Starts the copy's transaction holding the sequencer row; refuses a
    /// database that is not empty.
    pub(in crate::store) fn begin(&mut self) -> std::result::Result<(), CopyError> {
        clock::begin_locked(&mut self.conn).map_err(|error| self.failed(error))?;
        let held = self
            .conn
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM users), EXISTS (SELECT 1 FROM agents),
                        EXISTS (SELECT 1 FROM messages)",
                &[],
            )
            .and_then(|row| {
                Ok([
                    ("users", super::queries::get::<bool>(&row, 0)?),
                    ("agents", super::queries::get::<bool>(&row, 1)?),
                    ("messages", super::queries::get::<bool>(&row, 2)?),
                ])
            });
        let held = match held {
            Ok(held) => held,
            Err(error) => {
                self.rollback();
                return Err(self.failed(error));
            }
        };
        let holds: Vec<&str> = held
            .iter()
            .filter(|(_, any)| *any)
            .map(|(kind, _)| *kind)
            .collect();
        if holds.is_empty() {
            return Ok(());
        }
        self.rollback();
        Err(CopyError::TargetNotEmpty {
            url: self.url(),
            holds: holds.join(" and "),
        })
    }

    /// Writes one batch in the copy's transaction; the rows written.
    pub(in crate::store) fn insert<R: Import>(
        &mut self,
        rows: Vec<R>,
    ) -> std::result::Result<u64, CopyError> {
        R::insert(&mut self.conn, rows).map_err(|error| CopyError::Write {
            kind: R::KIND,
            url: self.conn.url().to_string(),
            reason: reason(&error),
        })
    }

    /// Sets the sequencer row to what SQLite's held, so new ids, time
    /// stamps and positions continue above the copied ones, and the users'
    /// and agents' id sequences past the copied ids; then commits.
    pub(in crate::store) fn finish(
        &mut self,
        sequencer: Sequencer,
    ) -> std::result::Result<(), CopyError> {
        let set = self
            .conn
            .execute(
                "UPDATE sb_clock SET last_message_id = $1, releases = $2, last_ts_us = $3",
                &[
                    &sequencer.last_message_id,
                    &sequencer.releases,
                    &sequencer.last_ts_us,
                ],
            )
            .and_then(|_| {
                // setval is strict: with no row, max(id) is NULL and the
                // sequence is left at its start.
                self.conn.batch(
                    "SELECT setval(pg_get_serial_sequence('agents', 'id'), max(id)) FROM agents;
                     SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users;",
                )
            });
        if let Err(error) = set {
            self.rollback();
            return Err(self.failed(error));
        }
        self.conn
            .batch("COMMIT")
            .map_err(|error| CopyError::Commit {
                url: self.url(),
                reason: reason(&error),
            })
    }

    /// Gives up the transaction; a connection that is gone has rolled back
    /// already.
    pub(in crate::store) fn rollback(&mut self) {
        let _ = self.conn.batch("ROLLBACK");
    }

    /// Refreshes the planner's statistics after the bulk load, so the first
    /// queries of a server use the indexes; autovacuum would, later.
    pub(in crate::store) fn analyze(&mut self) -> Result<()> {
        self.conn
            .batch("ANALYZE agents, users, messages, waiting, send_keys, releases_due")
    }

    /// A failure of the transaction itself (not of one kind's rows).
    fn failed(&self, error: PostgresError) -> CopyError {
        CopyError::Transaction {
            url: self.url(),
            reason: reason(&error),
        }
    }
}

/// The error and every error under it: the client's own says only "db
/// error", and PostgreSQL's message (which constraint, which table) is its
/// source. Never the URL: the client's errors do not hold it.
fn reason(error: &PostgresError) -> String {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !reason.ends_with(&text) {
            reason = format!("{reason}: {text}");
        }
        source = cause.source();
    }
    reason
}

impl Import for AgentRecord {
    fn insert(conn: &mut Conn, rows: Vec<Self>) -> Result<u64> {
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            columns.0.push(row.id);
            columns.1.push(row.name);
            columns.2.push(row.token_hash);
            columns.3.push(row.created_us);
            columns.4.push(row.supervisor);
        }
        // OVERRIDING SYSTEM VALUE: the ids are SQLite's, kept, not new.
        conn.execute(
            "INSERT INTO agents (id, name, token_hash, created_us, supervisor)
             OVERRIDING SYSTEM VALUE
             SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::BYTEA[], $4::BIGINT[],
                                  $5::BOOLEAN[])",
            &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
        )
    }
}

impl Import for UserRecord {
    fn insert(conn: &mut Conn, rows: Vec<Self>) -> Result<u64> {
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            columns.0.push(row.id);
            columns.1.push(row.name);
            columns.2.push(row.token_hash);
            columns.3.push(row.created_us);
            columns.4.push(row.assigned_agent_id);
        }
        conn.execute(
            "INSERT INTO users (id, name, token_hash, created_us, assigned_agent_id)
             OVERRIDING SYSTEM VALUE
             SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::BYTEA[], $4::BIGINT[],
                                  $5::BIGINT[])",
            &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
        )
    }
}

impl Import for MessageRecord {
    fn insert(conn: &mut Conn, rows: Vec<Self>) -> Result<u64> {
        let mut columns = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for row in rows {
            columns.0.push(row.id);
            columns.1.push(row.ts_us);
            columns.2.push(row.user_id);
            columns.3.push(row.agent_id);
            columns.4.push(row.body);
            columns.5.push(row.priority);
            columns.6.push(row.note);
        }
        conn.execute(
            "INSERT INTO messages (id, ts_us, user_id, agent_id, body, priority, note)
             SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[],
                                  $5::TEXT[], $6::BIGINT[], $7::BOOLEAN[])",
            &[
                &columns.0, &columns.1, &columns.2, &columns.3, &columns.4, &columns.5, &columns.6,
            ],
        )
    }
}

impl Import for WaitingRecord {
    fn insert(conn: &mut Conn, rows: Vec<Self>) -> Result<u64> {
        let mut columns = (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            columns.0.push(row.message_id);
            columns.1.push(row.user_id);
            columns.2.push(row.urgency);
        }
        conn.execute(
            "INSERT INTO waiting (message_id, user_id, urgency)
             SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[])",
            &[&columns.0, &columns.1, &columns.2],
        )
    }
}

impl Import for KeyRecord {
    fn insert(conn: &mut Conn, rows: Vec<Self>) -> Result<u64> {
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            columns.0.push(row.sender_role);
            columns.1.push(row.sender_id);
            columns.2.push(row.key);
            columns.3.push(row.message_id);
        }
        conn.execute(
            "INSERT INTO send_keys (sender_role, sender_id, key, message_id)
             SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[])",
            &[&columns.0, &columns.1, &columns.2, &columns.3],
        )
    }
}

impl Import for ReleaseDueRecord {
    fn insert(conn: &mut Conn, rows: Vec<Self>) -> Result<u64> {
        let mut columns = (Vec::new(), Vec::new());
        for row in rows {
            columns.0.push(row.user_id);
            columns.1.push(row.agent_id);
        }
        conn.execute(
            "INSERT INTO releases_due (user_id, agent_id)
             SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[])",
            &[&columns.0, &columns.1],
        )
    }
}
