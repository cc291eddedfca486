//! The `agent` commands' operations (add, rotate, remove, list) on a
//! PostgreSQL database, each in its own transaction. Each write takes the
//! sequencer row first, as the writer's transactions do, so an `agent add`
//! and a user's registration of the same name (in any case) are decided
//! one after the other. What the commands mean stays in `crate::admin`.

use switchboard_protocol::{Name, Role, Timestamp, Token};

use super::conn::Conn;
use super::queries::{agents, clock, names};
use super::schema::Settle;
use super::url::PostgresUrl;
use crate::store::{AgentListing, NameTaken, OpenError, StoreError};
use crate::token;

/// A PostgreSQL database opened for the `agent` commands.
pub struct PostgresAdmin {
    conn: Conn,
}

impl PostgresAdmin {
    /// Connects and checks the schema: `settle` says whether a new one may
    /// be created (`agent add`) or must already be there.
    pub(in crate::store) fn open(
        url: &PostgresUrl,
        settle: Settle,
    ) -> std::result::Result<Self, OpenError> {
        let conn = super::connect(url)?;
        super::settle_schema(conn, settle).map(|conn| PostgresAdmin { conn })
    }

    /// As SQLite's `Admin::add_agent`: `None` when an active agent has the
    /// name; [`NameTaken`] when a user has it, or another agent in another
    /// case.
    pub fn add_agent<E: From<StoreError> + From<NameTaken>>(
        &mut self,
        name: &Name,
        supervisor: bool,
        new_token: impl FnOnce() -> Result<Token, E>,
    ) -> Result<Option<Token>, E> {
        self.in_transaction(|conn| {
            let like = names::names_like(conn, name).map_err(StoreError::backend)?;
            if let Some((role, taken)) = like
                .into_iter()
                .find(|(role, taken)| *role == Role::User || taken != name)
            {
                return Err(NameTaken { role, name: taken }.into());
            }
            let active = agents::find_agent(conn, name)
                .map_err(StoreError::backend)?
                .is_some_and(|agent| agent.token_hash.is_some());
            if active {
                return Ok(None);
            }
            let token = new_token()?;
            agents::upsert_agent(conn, name, &token::hash(&token), Timestamp::now())
                .and_then(|()| agents::set_supervisor(conn, name, supervisor))
                .map_err(StoreError::backend)?;
            Ok(Some(token))
        })
    }

    /// Gives an active agent `token`; false if there is no such agent.
    pub fn rotate(&mut self, name: &Name, token: &Token) -> Result<bool, StoreError> {
        self.in_transaction(|conn| {
            agents::set_agent_token(conn, name, &token::hash(token)).map_err(StoreError::backend)
        })
    }

    /// Removes an active agent's token; false if there is no such agent.
    pub fn remove(&mut self, name: &Name) -> Result<bool, StoreError> {
        self.in_transaction(|conn| agents::remove_agent(conn, name).map_err(StoreError::backend))
    }

    /// Makes an active agent a supervisor or not; false if there is no
    /// such agent.
    pub fn set_supervisor(&mut self, name: &Name, supervisor: bool) -> Result<bool, StoreError> {
        self.in_transaction(|conn| {
            agents::set_supervisor(conn, name, supervisor).map_err(StoreError::backend)
        })
    }

    /// Active agents, how many conversations each holds and whether each
    /// is a supervisor, by name.
    pub fn list(&mut self) -> Result<Vec<AgentListing>, StoreError> {
        agents::list_agents(&mut self.conn).map_err(StoreError::backend)
    }

    /// Runs `write` holding the sequencer row; commits on `Ok`, rolls back
    /// otherwise.
    fn in_transaction<T, E: From<StoreError>>(
        &mut self,
        write: impl FnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        clock::begin_locked(&mut self.conn).map_err(StoreError::backend)?;
        match write(&mut self.conn) {
            Ok(value) => {
                self.conn.batch("COMMIT").map_err(StoreError::backend)?;
                Ok(value)
            }
            Err(error) => {
                let _ = self.conn.batch("ROLLBACK");
                Err(error)
            }
        }
    }
}
