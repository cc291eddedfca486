//! The read rules' [`Reads`] in SQLite: plain queries on a reader's
//! connection, and the reader's [`ReadBackend`]: in WAL mode a reader reads
//! the last commit without waiting for the writer, and the writer never
//! waits for it.

use rusqlite::Connection;
use switchboard_protocol::{Message, Name};

use super::queries;
use crate::event::Seq;
use crate::store::AgentCredential;
use crate::store::backend::ReadBackend;
use crate::store::rules::{AgentRow, Notes, Reads, ResumeCap, UserRow};

/// The reads of one snapshot: a reader's connection, in a read transaction
/// when a rule makes more than one read.
pub(in crate::store) struct Snapshot<'c>(pub &'c Connection);

impl Reads for Snapshot<'_> {
    type Error = rusqlite::Error;

    fn find_user(&mut self, name: &Name) -> Result<Option<UserRow>, Self::Error> {
        queries::find_user(self.0, name)
    }

    fn find_agent(&mut self, name: &Name) -> Result<Option<AgentRow>, Self::Error> {
        queries::find_agent(self.0, name)
    }

    fn conversation_ids(
        &mut self,
        user_id: i64,
        before: Option<u64>,
        limit: u32,
        notes: Notes,
    ) -> Result<Vec<u64>, Self::Error> {
        queries::conversation_ids(self.0, user_id, before, limit, notes)
    }

    fn conversation_ids_since(
        &mut self,
        user_id: i64,
        since: u64,
        cap: ResumeCap,
        notes: Notes,
    ) -> Result<(Vec<u64>, bool), Self::Error> {
        queries::conversation_ids_since(self.0, user_id, since, cap, notes)
    }

    fn messages_since(
        &mut self,
        since: u64,
        cap: ResumeCap,
    ) -> Result<(Vec<Message>, bool), Self::Error> {
        queries::messages_since(self.0, since, cap)
    }

    fn messages_by_id(
        &mut self,
        ids: &[u64],
        body_bytes: usize,
    ) -> Result<Vec<Message>, Self::Error> {
        queries::messages_by_id(self.0, ids, body_bytes)
    }

    fn waiting_queue(&mut self, limit: u32) -> Result<Vec<Message>, Self::Error> {
        queries::waiting_queue(self.0, limit)
    }

    fn assignments(&mut self) -> Result<Vec<(Name, Name)>, Self::Error> {
        queries::assignments(self.0)
    }

    fn position(&mut self) -> Result<Seq, Self::Error> {
        queries::position(self.0)
    }
}

impl ReadBackend for Connection {
    type Error = rusqlite::Error;
    type Snapshot<'a> = Snapshot<'a>;

    fn reads(&mut self) -> Snapshot<'_> {
        Snapshot(self)
    }

    /// A deferred read transaction, which SQLite starts at its first read
    /// (a backlog's position).
    fn in_snapshot<T>(
        &mut self,
        read: impl FnOnce(&mut Snapshot<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let tx = self.transaction()?;
        let value = read(&mut Snapshot(&tx))?;
        tx.finish()?;
        Ok(value)
    }

    fn agent_credentials(&mut self) -> rusqlite::Result<Vec<AgentCredential>> {
        queries::agent_credentials(self)
    }

    fn removed_agents_hold_conversations(&mut self) -> rusqlite::Result<bool> {
        queries::removed_agents_hold_conversations(self)
    }

    fn offline_holders_due(&mut self, after: std::time::Duration) -> rusqlite::Result<bool> {
        queries::offline_holders_due(self, switchboard_protocol::Timestamp::now(), after)
    }
}
