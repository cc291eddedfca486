//! [`Admin`]: the `agent` commands' store, on SQLite or PostgreSQL. The
//! operations and their meaning are each backend's (`sqlite/admin.rs`,
//! `postgres/admin.rs`); this only picks one.

use switchboard_protocol::{Name, Token};

use super::postgres::admin::PostgresAdmin;
use super::postgres::schema::Settle;
use super::sqlite::admin::SqliteAdmin;
use super::{AgentListing, Location, NameTaken, OpenError, StoreError};

/// A database opened for the `agent` commands.
pub enum Admin {
    Sqlite(SqliteAdmin),
    /// Boxed: a client is large, and the enum is passed around.
    Postgres(Box<PostgresAdmin>),
}

impl Admin {
    /// For `agent add`: opens the database, creating its schema if it has
    /// none; an older schema is refused, not upgraded (upgrades are
    /// `switchboard serve`'s).
    pub fn open(location: &Location) -> Result<Admin, OpenError> {
        match location {
            Location::Sqlite(path) => SqliteAdmin::open(path).map(Admin::Sqlite),
            Location::Postgres(url) => PostgresAdmin::open(url, Settle::CreateOnly)
                .map(|admin| Admin::Postgres(Box::new(admin))),
        }
    }

    /// For the other `agent` commands: a PostgreSQL database must already
    /// hold switchboard's schema (a SQLite file's existence is checked by
    /// the caller, which names the file).
    pub fn open_existing(location: &Location) -> Result<Admin, OpenError> {
        match location {
            Location::Sqlite(path) => SqliteAdmin::open(path).map(Admin::Sqlite),
            Location::Postgres(url) => PostgresAdmin::open(url, Settle::Existing)
                .map(|admin| Admin::Postgres(Box::new(admin))),
        }
    }

    /// Creates an agent, or brings back a removed one; see
    /// [`SqliteAdmin::add_agent`].
    pub fn add_agent<E: From<StoreError> + From<NameTaken>>(
        &mut self,
        name: &Name,
        supervisor: bool,
        new_token: impl FnOnce() -> Result<Token, E>,
    ) -> Result<Option<Token>, E> {
        match self {
            Admin::Sqlite(admin) => admin.add_agent(name, supervisor, new_token),
            Admin::Postgres(admin) => admin.add_agent(name, supervisor, new_token),
        }
    }

    /// Gives an active agent `token`; false if there is no such agent.
    pub fn rotate(&mut self, name: &Name, token: &Token) -> Result<bool, StoreError> {
        match self {
            Admin::Sqlite(admin) => admin.rotate(name, token),
            Admin::Postgres(admin) => admin.rotate(name, token),
        }
    }

    /// Removes an active agent's token; false if there is no such agent.
    pub fn remove(&mut self, name: &Name) -> Result<bool, StoreError> {
        match self {
            Admin::Sqlite(admin) => admin.remove(name),
            Admin::Postgres(admin) => admin.remove(name),
        }
    }

    /// Makes an active agent a supervisor or not; false if there is no
    /// such agent.
    pub fn set_supervisor(&mut self, name: &Name, supervisor: bool) -> Result<bool, StoreError> {
        match self {
            Admin::Sqlite(admin) => admin.set_supervisor(name, supervisor),
            Admin::Postgres(admin) => admin.set_supervisor(name, supervisor),
        }
    }

    /// Active agents, how many conversations each holds and whether each
    /// is a supervisor, by name.
    pub fn list(&mut self) -> Result<Vec<AgentListing>, StoreError> {
        match self {
            Admin::Sqlite(admin) => admin.list(),
            Admin::Postgres(admin) => admin.list(),
        }
    }
}
