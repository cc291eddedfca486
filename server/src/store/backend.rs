//! The seams under the storage threads: for the writer, a [`Backend`]
//! begins write transactions and a [`Transaction`] gives the write rules
//! their [`Tables`] and does the rest of a group commit (savepoints, the
//! release count, commit); for each reader, a [`ReadBackend`] gives the read
//! rules their [`Reads`], in one snapshot when they need one.
//!
//! The writer's loop (group commit, the fast path without savepoints, the
//! slow path with one per request, commit before anyone hears) and the
//! readers' are generic over them, so a second backend reuses it unchanged. Everything is static
//! dispatch: the SQLite writer runs the same code as before the seam.
//!
//! Contract, beside [`Tables`]'s: one transaction at a time per backend
//! value; [`Backend::begin`] refuses to write a layout it does not know
//! (SQLite: a schema upgraded by another process); a `Transaction` dropped
//! without [`Transaction::commit`] rolls back everything in it.

use std::error::Error;

use switchboard_protocol::Timestamp;

use super::AgentCredential;
use super::rules::{Reads, Tables};
use crate::event::Seq;

pub(super) trait Backend {
    type Error: Error + Send + Sync + 'static;
    type Tx<'a>: Transaction<Error = Self::Error>
    where
        Self: 'a;

    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`).
    fn begin(&mut self) -> Result<Self::Tx<'_>, Self::Error>;
    /// The latest time stamp stored, so new ones keep increasing after a
    /// restart even if the clock went back.
    fn last_timestamp(&mut self) -> Result<Option<Timestamp>, Self::Error>;
    /// The newest message id (0 with none) and the releases ever committed:
    /// where the writer's positions (`Seq`) continue from.
    fn position_parts(&mut self) -> Result<(u64, u64), Self::Error>;
}

pub(super) trait Transaction {
    type Error: Error + Send + Sync + 'static + From<Self::TablesError>;
    /// What the rules' reads and writes fail with.
    type TablesError: Error + Send + Sync + 'static;
    /// The rules' reads and writes inside this transaction, taken once per
    /// group (SQLite: the prepared per-message statements).
    type Tables<'t>: Tables<Error = Self::TablesError>
    where
        Self: 't;

    fn tables(&self) -> Result<Self::Tables<'_>, Self::Error>;
    /// Counts releases in this transaction, so positions move with it.
    fn add_releases(&self, released: u64) -> Result<(), Self::Error>;
    fn savepoint(&self) -> Result<(), Self::Error>;
    /// Keeps what was written since the savepoint.
    fn release_savepoint(&self) -> Result<(), Self::Error>;
    /// Undoes what was written since the savepoint.
    fn rollback_to_savepoint(&self) -> Result<(), Self::Error>;
    /// Commits, writing first anything the tables held back.
    fn commit(self) -> Result<(), Self::Error>;
    /// Writes what the tables held back to write in bulk (PostgreSQL: a
    /// group's messages, queue rows and keys, `postgres/held_back.rs`), so
    /// that the database refusing a row is found while the requests can
    /// still be told apart: the writer calls it after the fast path's last
    /// request and after each request on the slow path. Nothing to do
    /// where every write is made as the rules ask (SQLite).
    fn write_held(&self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// What a shared database's sequencer row said when this transaction
    /// took it. `None` (SQLite) for a database only this writer writes: it
    /// keeps positions and time stamps itself. `Some` (PostgreSQL, which
    /// several nodes may write): the writer continues from it.
    fn shared_clock(&self) -> Option<SharedClock> {
        None
    }

    /// Appends a batch to a shared database's feed (`sb_feed`), in this
    /// transaction, for other nodes to read back by position. Nothing to
    /// do where no other node reads.
    fn append_feed(&self, _after: Seq, _seq: Seq, _encoded: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A shared sequencer row as a write transaction found it, holding it
/// until commit: where positions continue, and the one clock (the
/// database's) every node stamps messages from.
#[derive(Debug, Clone, Copy)]
pub(super) struct SharedClock {
    pub last_message_id: u64,
    pub releases: u64,
    /// The newest time stamp any node stored.
    pub last_ts: Timestamp,
    /// The database's clock as the transaction began.
    pub now: Timestamp,
}

/// What a reader thread reads from: its own connection or client.
///
/// Contract: reads never lock and never wait for the writer; everything
/// read inside one [`in_snapshot`](ReadBackend::in_snapshot) sees the same
/// commit (see [`Reads`]).
pub(super) trait ReadBackend: Send + 'static {
    type Error: Error + Send + Sync + 'static;
    type Snapshot<'a>: Reads<Error = Self::Error>
    where
        Self: 'a;

    /// Reads with no transaction around them, for a rule whose reads need
    /// not agree with each other (a sign-in, a history page).
    fn reads(&mut self) -> Self::Snapshot<'_>;
    /// Runs `read` in one consistent snapshot (a backlog and its position).
    fn in_snapshot<T>(
        &mut self,
        read: impl FnOnce(&mut Self::Snapshot<'_>) -> Result<T, Self::Error>,
    ) -> Result<T, Self::Error>;
    /// Every agent's current token hash (`None` once removed).
    fn agent_credentials(&mut self) -> Result<Vec<AgentCredential>, Self::Error>;
    /// Whether a removed agent still marks a conversation, or a release is
    /// left due: whether the writer has anything to release.
    fn removed_agents_hold_conversations(&mut self) -> Result<bool, Self::Error>;
    /// Whether a conversation is due for auto-release by the database's
    /// clock (`after`: `--release-after`): whether the writer has anything
    /// to release. Asked first, so that an idle server commits nothing.
    fn offline_holders_due(&mut self, after: std::time::Duration) -> Result<bool, Self::Error>;
}
