//! [`Backend`] and [`Transaction`] for PostgreSQL: the writer's connection
//! and its transactions, each holding the sequencer row from its first
//! statement to its commit.

use std::cell::RefCell;

use switchboard_protocol::Timestamp;

use super::conn::Conn;
use super::held_back::HeldBack;
use super::known_users::KnownUsers;
use super::queries::{clock, feed};
use super::tables::Writes;
use super::{PostgresError, Result};
use crate::event::Seq;
use crate::store::backend::{Backend, SharedClock, Transaction};

/// The writer thread's connection, and the users' ids it has read.
pub(in crate::store) struct PostgresWriter {
    conn: RefCell<Conn>,
    known_users: RefCell<KnownUsers>,
}

impl PostgresWriter {
    pub(in crate::store) fn new(conn: Conn) -> Self {
        Self {
            conn: RefCell::new(conn),
            known_users: RefCell::default(),
        }
    }
}

/// One write transaction. Dropped without [`Transaction::commit`], it rolls
/// back.
pub(in crate::store) struct PostgresTx<'c> {
    conn: &'c RefCell<Conn>,
    known_users: &'c RefCell<KnownUsers>,
    /// What the sequencer row said as this transaction took it.
    shared: SharedClock,
    /// The rows appended and not yet written (`held_back.rs`).
    held: RefCell<HeldBack>,
    finished: bool,
}

impl Backend for PostgresWriter {
    type Error = PostgresError;
    type Tx<'a> = PostgresTx<'a>;

    /// `BEGIN` and the sequencer row, in one round trip; refuses a schema
    /// another process upgraded. A connection lost since the last
    /// transaction is opened again first.
    fn begin(&mut self) -> Result<PostgresTx<'_>> {
        let conn = self.conn.get_mut();
        conn.reconnect_if_closed();
        let shared = conn.retrying_if_lost(clock::begin_locked)?;
        Ok(PostgresTx {
            conn: &self.conn,
            known_users: &self.known_users,
            shared,
            held: RefCell::new(HeldBack::after(shared.last_message_id)),
            finished: false,
        })
    }

    fn last_timestamp(&mut self) -> Result<Option<Timestamp>> {
        clock::last_timestamp(self.conn.get_mut())
    }

    fn position_parts(&mut self) -> Result<(u64, u64)> {
        clock::position_parts(self.conn.get_mut())
    }
}

impl PostgresTx<'_> {
    fn batch(&self, sql: &str) -> Result<()> {
        self.conn.borrow_mut().batch(sql)
    }

    fn write_held_rows(&self) -> Result<()> {
        self.held.borrow_mut().write(&mut self.conn.borrow_mut())
    }
}

impl Transaction for PostgresTx<'_> {
    type Error = PostgresError;
    type TablesError = PostgresError;
    type Tables<'t>
        = Writes<'t>
    where
        Self: 't;

    fn tables(&self) -> Result<Writes<'_>> {
        Ok(Writes {
            conn: self.conn,
            held: &self.held,
            known_users: self.known_users,
        })
    }

    fn add_releases(&self, released: u64) -> Result<()> {
        clock::add_releases(&mut self.conn.borrow_mut(), released)
    }

    /// Nothing is held at a savepoint: each request's rows are written
    /// before its savepoint is released (`write_held`), so rolling back to
    /// it drops exactly what the request held.
    fn savepoint(&self) -> Result<()> {
        self.write_held_rows()?;
        self.batch("SAVEPOINT request")
    }

    fn release_savepoint(&self) -> Result<()> {
        self.batch("RELEASE request")
    }

    fn rollback_to_savepoint(&self) -> Result<()> {
        self.held.borrow_mut().discard();
        self.known_users.borrow_mut().rolled_back();
        self.batch("ROLLBACK TO request; RELEASE request")
    }

    fn write_held(&self) -> Result<()> {
        self.write_held_rows()
    }

    /// Every error inside the transaction reaches the writer, which then
    /// drops it (rolled back) or undoes that request's savepoint: `COMMIT`
    /// never runs on a failed transaction (where PostgreSQL would roll
    /// back and report success).
    fn commit(mut self) -> Result<()> {
        // Written inside the transaction: if this fails, dropping `self`
        // rolls back.
        self.write_held_rows()?;
        self.finished = true;
        let committed = self.batch("COMMIT");
        let mut known_users = self.known_users.borrow_mut();
        match committed {
            Ok(()) => known_users.committed(),
            Err(_) => known_users.rolled_back(),
        }
        committed
    }

    /// Several nodes write this database: the writer continues from what
    /// the row said, never from its own memory.
    fn shared_clock(&self) -> Option<SharedClock> {
        Some(self.shared)
    }

    fn append_feed(&self, after: Seq, seq: Seq, encoded: &[u8]) -> Result<()> {
        self.write_held_rows()?;
        feed::append(
            &mut self.conn.borrow_mut(),
            after,
            seq,
            encoded,
            self.shared.now,
        )
    }
}

impl Drop for PostgresTx<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // A lost connection rolls back on its own; nothing to report.
            let _ = self.conn.borrow_mut().batch("ROLLBACK");
            self.known_users.borrow_mut().rolled_back();
        }
    }
}
