//! The `agent` commands' operations (add, rotate, remove, list) on a SQLite
//! file, each in its own transaction.
//!
//! The commands run in another process than the server, perhaps while it
//! runs: SQLite's locking keeps both consistent, and the server learns of
//! the change through its credential poll. What the commands mean (only
//! `add` creates a database, which errors a person sees) stays in
//! `crate::admin`; this file only reads and writes.

use std::path::Path;

use rusqlite::Connection;
use switchboard_protocol::{Name, Role, Timestamp, Token};
use thiserror::Error;

use super::{open_database_without_upgrade, queries};
use crate::store::{AgentListing, OpenError, StoreError};
use crate::token;

/// `agent add` of a name that a user has, or that another agent has in
/// another case.
#[derive(Debug, Error)]
#[error(
    "the name is taken: {role} {name} has it (names are unique whatever their case, \
     and agents and users never share one); choose another"
)]
pub struct NameTaken {
    pub role: Role,
    pub name: Name,
}

/// A database opened for the `agent` commands.
pub struct SqliteAdmin {
    conn: Connection,
}

impl SqliteAdmin {
    /// Opens (creating if needed) the database at `path`; an older schema is
    /// refused, not upgraded: upgrades are `switchboard serve`'s, since a
    /// server of the previous version may still be writing to it.
    pub fn open(path: &Path) -> Result<SqliteAdmin, OpenError> {
        open_database_without_upgrade(path).map(|conn| SqliteAdmin { conn })
    }

    /// Creates an agent, or brings back a removed one (without the
    /// conversations and idempotency keys it had), with a token from
    /// `new_token`, asked for only once the name is known to be free.
    /// `None`: an active agent already has that name. [`NameTaken`]: a user
    /// has it, or another agent has it in another case (issue 15, finding
    /// 10: an agent must not share a customer's name, in any case).
    pub fn add_agent<E: From<StoreError> + From<NameTaken>>(
        &mut self,
        name: &Name,
        supervisor: bool,
        new_token: impl FnOnce() -> Result<Token, E>,
    ) -> Result<Option<Token>, E> {
        let tx = self.write_transaction()?;
        let like = queries::names_like(&tx, name).map_err(StoreError::backend)?;
        if let Some((role, taken)) = like
            .into_iter()
            .find(|(role, taken)| *role == Role::User || taken != name)
        {
            return Err(NameTaken { role, name: taken }.into());
        }
        let active = queries::find_agent(&tx, name)
            .map_err(StoreError::backend)?
            .is_some_and(|agent| agent.token_hash.is_some());
        if active {
            return Ok(None);
        }
        let token = new_token()?;
        queries::upsert_agent(&tx, name, &token::hash(&token), Timestamp::now())
            .and_then(|()| queries::set_supervisor(&tx, name, supervisor))
            .and_then(|_| tx.commit())
            .map_err(StoreError::backend)?;
        Ok(Some(token))
    }

    /// Gives an active agent `token` instead of its old one; false if there
    /// is no such active agent.
    pub fn rotate(&mut self, name: &Name, token: &Token) -> Result<bool, StoreError> {
        queries::set_agent_token(&self.conn, name, &token::hash(token)).map_err(StoreError::backend)
    }

    /// Removes an active agent's token; false if there is no such active
    /// agent. Its conversations count as unassigned from now on; a server
    /// announces their release (`queries::release_removed_agents`).
    pub fn remove(&mut self, name: &Name) -> Result<bool, StoreError> {
        let tx = self.write_transaction()?;
        if !queries::remove_agent(&tx, name).map_err(StoreError::backend)? {
            return Ok(false);
        }
        tx.commit().map_err(StoreError::backend)?;
        Ok(true)
    }

    /// A transaction that holds the write lock from its start
    /// (`BEGIN IMMEDIATE`), waiting for it up to the busy timeout. A
    /// deferred one that reads and then writes fails at once with "database
    /// is locked" when the server commits in between, which under load it
    /// nearly always does (issue 15, finding 5: 12 failures in 20).
    fn write_transaction(&mut self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::backend)
    }

    /// Makes an active agent a supervisor or not; false if there is no
    /// such active agent.
    pub fn set_supervisor(&mut self, name: &Name, supervisor: bool) -> Result<bool, StoreError> {
        queries::set_supervisor(&self.conn, name, supervisor).map_err(StoreError::backend)
    }

    /// Active agents, how many conversations each holds and whether each
    /// is a supervisor, by name.
    pub fn list(&mut self) -> Result<Vec<AgentListing>, StoreError> {
        queries::list_agents(&self.conn).map_err(StoreError::backend)
    }
}
