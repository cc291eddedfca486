//! The seam under the writer: a [`Backend`] begins write transactions; a
//! [`Transaction`] gives the write rules their [`Tables`] and does the rest
//! of a group commit (savepoints, the release count, commit).
//!
//! The writer's loop (group commit, the fast path without savepoints, the
//! slow path with one per request, commit before anyone hears) is generic
//! over it, so a second backend reuses it unchanged. Everything is static
//! dispatch: the SQLite writer runs the same code as before the seam.
//!
//! Contract, beside [`Tables`]'s: one transaction at a time per backend
//! value; [`Backend::begin`] refuses to write a layout it does not know
//! (SQLite: a schema upgraded by another process); a `Transaction` dropped
//! without [`Transaction::commit`] rolls back everything in it.

use std::error::Error;

use switchboard_protocol::{Name, Timestamp};

use super::rules::Tables;

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
    type Error: Error + Send + Sync + 'static;
    /// What the rules' reads and writes fail with.
    type TablesError: Error + Send + Sync + 'static;
    /// The rules' reads and writes inside this transaction, taken once per
    /// group (SQLite: the prepared per-message statements).
    type Tables<'t>: Tables<Error = Self::TablesError>
    where
        Self: 't;

    fn tables(&self) -> Result<Self::Tables<'_>, Self::Error>;
    /// Lets go of every conversation a removed agent still marks, and of
    /// releases left due; returns them as (user, agent) to announce.
    fn release_removed_agents(&self) -> Result<Vec<(Name, Name)>, Self::Error>;
    /// Counts releases in this transaction, so positions move with it.
    fn add_releases(&self, released: u64) -> Result<(), Self::Error>;
    fn savepoint(&self) -> Result<(), Self::Error>;
    /// Keeps what was written since the savepoint.
    fn release_savepoint(&self) -> Result<(), Self::Error>;
    /// Undoes what was written since the savepoint.
    fn rollback_to_savepoint(&self) -> Result<(), Self::Error>;
    fn commit(self) -> Result<(), Self::Error>;
}
