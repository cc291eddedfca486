//! The read rules' [`Reads`] in PostgreSQL, and a reader's
//! [`ReadBackend`]: its own connection; a snapshot is a `REPEATABLE READ,
//! READ ONLY` transaction, which never locks and never waits for the
//! writer. Its position is read from the sequencer row in the same
//! snapshot, so a backlog meets the live stream without a gap or a repeat.

use std::cell::RefCell;

use switchboard_protocol::{Message, Name};

use super::conn::Conn;
use super::queries::{agents, clock, messages, presence, users, waiting};
use super::{PostgresError, Result};
use crate::event::Seq;
use crate::store::AgentCredential;
use crate::store::backend::ReadBackend;
use crate::store::rules::{AgentRow, Notes, Reads, ResumeCap, UserRow};

/// The reads of one snapshot (or of none, for a rule whose reads need not
/// agree): a reader's connection, one call at a time.
pub(in crate::store) struct Snapshot<'c> {
    pub(super) conn: &'c RefCell<Conn>,
    /// Outside a transaction each read stands alone, so one that failed on
    /// a connection lost since (PostgreSQL restarted) is run again on a new
    /// one; inside a snapshot, only its `BEGIN` is.
    pub(super) alone: bool,
}

impl Snapshot<'_> {
    fn read<T>(&self, op: impl Fn(&mut Conn) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.borrow_mut();
        if self.alone {
            conn.retrying_if_lost(op)
        } else {
            op(&mut conn)
        }
    }
}

impl Reads for Snapshot<'_> {
    type Error = PostgresError;

    fn find_user(&mut self, name: &Name) -> Result<Option<UserRow>> {
        self.read(|conn| users::find_user(conn, name))
    }

    fn find_agent(&mut self, name: &Name) -> Result<Option<AgentRow>> {
        self.read(|conn| agents::find_agent(conn, name))
    }

    fn conversation_ids(
        &mut self,
        user_id: i64,
        before: Option<u64>,
        limit: u32,
        notes: Notes,
    ) -> Result<Vec<u64>> {
        self.read(|conn| messages::conversation_ids(conn, user_id, before, limit, notes))
    }

    fn conversation_ids_since(
        &mut self,
        user_id: i64,
        since: u64,
        cap: ResumeCap,
        notes: Notes,
    ) -> Result<(Vec<u64>, bool)> {
        self.read(|conn| messages::conversation_ids_since(conn, user_id, since, cap, notes))
    }

    fn messages_since(&mut self, since: u64, cap: ResumeCap) -> Result<(Vec<Message>, bool)> {
        self.read(|conn| messages::messages_since(conn, since, cap))
    }

    fn messages_by_id(&mut self, ids: &[u64], body_bytes: usize) -> Result<Vec<Message>> {
        self.read(|conn| messages::messages_by_id(conn, ids, body_bytes))
    }

    fn waiting_queue(&mut self, limit: u32) -> Result<Vec<Message>> {
        self.read(|conn| waiting::waiting_queue(conn, limit))
    }

    fn assignments(&mut self) -> Result<Vec<(Name, Name)>> {
        self.read(users::assignments)
    }

    fn position(&mut self) -> Result<Seq> {
        self.read(clock::position)
    }
}

/// A reader thread's connection.
pub(in crate::store) struct PostgresReader {
    conn: RefCell<Conn>,
}

impl PostgresReader {
    pub(in crate::store) fn new(conn: Conn) -> Self {
        Self {
            conn: RefCell::new(conn),
        }
    }
}

impl ReadBackend for PostgresReader {
    type Error = PostgresError;
    type Snapshot<'a> = Snapshot<'a>;

    fn reads(&mut self) -> Snapshot<'_> {
        self.conn.get_mut().reconnect_if_closed();
        Snapshot {
            conn: &self.conn,
            alone: true,
        }
    }

    fn in_snapshot<T>(&mut self, read: impl FnOnce(&mut Snapshot<'_>) -> Result<T>) -> Result<T> {
        let conn = self.conn.get_mut();
        conn.reconnect_if_closed();
        conn.retrying_if_lost(|conn| {
            conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        })?;
        let value = read(&mut Snapshot {
            conn: &self.conn,
            alone: false,
        });
        let conn = self.conn.get_mut();
        match value {
            Ok(value) => {
                conn.batch("COMMIT")?;
                Ok(value)
            }
            Err(error) => {
                // The read's error says why; a failed rollback means the
                // connection is gone, which ends the transaction too.
                let _ = conn.batch("ROLLBACK");
                Err(error)
            }
        }
    }

    fn agent_credentials(&mut self) -> Result<Vec<AgentCredential>> {
        let conn = self.conn.get_mut();
        conn.reconnect_if_closed();
        conn.retrying_if_lost(agents::agent_credentials)
    }

    fn removed_agents_hold_conversations(&mut self) -> Result<bool> {
        let conn = self.conn.get_mut();
        conn.reconnect_if_closed();
        conn.retrying_if_lost(agents::removed_agents_hold_conversations)
    }

    fn offline_holders_due(&mut self, after: std::time::Duration) -> Result<bool> {
        let conn = self.conn.get_mut();
        conn.reconnect_if_closed();
        conn.retrying_if_lost(|conn| presence::offline_holders_due(conn, after))
    }
}
