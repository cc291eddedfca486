//! The read rules' [`Reads`] in PostgreSQL, and a reader's
//! [`ReadBackend`]: its own connection; a snapshot is a `REPEATABLE READ,
//! READ ONLY` transaction, which never locks and never waits for the
//! writer. Its position is read from the sequencer row in the same
//! snapshot, so a backlog meets the live stream without a gap or a repeat.

use std::cell::RefCell;

use switchboard_protocol::{Message, Name};

use super::conn::Conn;
use super::queries::{agents, clock, messages, users, waiting};
use super::{PostgresError, Result};
use crate::event::Seq;
use crate::store::AgentCredential;
use crate::store::backend::ReadBackend;
use crate::store::rules::{AgentRow, Reads, ResumeCap, UserRow};

/// The reads of one snapshot (or of none, for a rule whose reads need not
/// agree): a reader's connection, one call at a time.
pub(in crate::store) struct Snapshot<'c> {
    pub(super) conn: &'c RefCell<Conn>,
}

impl Snapshot<'_> {
    fn conn(&self) -> std::cell::RefMut<'_, Conn> {
        self.conn.borrow_mut()
    }
}

impl Reads for Snapshot<'_> {
    type Error = PostgresError;

    fn find_user(&mut self, name: &Name) -> Result<Option<UserRow>> {
        users::find_user(&mut self.conn(), name)
    }

    fn find_agent(&mut self, name: &Name) -> Result<Option<AgentRow>> {
        agents::find_agent(&mut self.conn(), name)
    }

    fn conversation_ids(
        &mut self,
        user_id: i64,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<u64>> {
        messages::conversation_ids(&mut self.conn(), user_id, before, limit)
    }

    fn conversation_ids_since(
        &mut self,
        user_id: i64,
        since: u64,
        cap: ResumeCap,
    ) -> Result<(Vec<u64>, bool)> {
        messages::conversation_ids_since(&mut self.conn(), user_id, since, cap)
    }

    fn messages_since(&mut self, since: u64, cap: ResumeCap) -> Result<(Vec<Message>, bool)> {
        messages::messages_since(&mut self.conn(), since, cap)
    }

    fn messages_by_id(&mut self, ids: &[u64], body_bytes: usize) -> Result<Vec<Message>> {
        messages::messages_by_id(&mut self.conn(), ids, body_bytes)
    }

    fn waiting_queue(&mut self, limit: u32) -> Result<Vec<Message>> {
        waiting::waiting_queue(&mut self.conn(), limit)
    }

    fn assignments(&mut self) -> Result<Vec<(Name, Name)>> {
        users::assignments(&mut self.conn())
    }

    fn position(&mut self) -> Result<Seq> {
        clock::position(&mut self.conn())
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
        Snapshot { conn: &self.conn }
    }

    fn in_snapshot<T>(&mut self, read: impl FnOnce(&mut Snapshot<'_>) -> Result<T>) -> Result<T> {
        let conn = self.conn.get_mut();
        conn.reconnect_if_closed();
        conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        let value = read(&mut Snapshot { conn: &self.conn });
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
        agents::agent_credentials(conn)
    }

    fn removed_agents_hold_conversations(&mut self) -> Result<bool> {
        let conn = self.conn.get_mut();
        conn.reconnect_if_closed();
        agents::removed_agents_hold_conversations(conn)
    }
}
