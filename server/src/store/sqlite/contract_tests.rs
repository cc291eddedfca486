//! The backend contract ([`crate::store::contract`]) run on SQLite: every
//! test on a fresh in-memory database.

use rusqlite::Connection;
use switchboard_protocol::{Name, Timestamp};

use super::queries;
use super::reads::Snapshot;
use super::tables::HotStatements;
use crate::store::contract::{Subject, contract_tests};
use crate::store::test_support::db;

/// One connection: the writer's statements and a reader's snapshot both.
struct Sqlite(Connection);

impl Subject for Sqlite {
    type Error = rusqlite::Error;
    type Tables<'a> = HotStatements<'a>;
    type Reads<'a> = Snapshot<'a>;

    fn tables(&self) -> HotStatements<'_> {
        HotStatements::new(&self.0).expect("prepares")
    }

    fn reads(&self) -> Snapshot<'_> {
        Snapshot(&self.0)
    }

    fn upsert_agent(&self, name: &Name, token_hash: &[u8], now: Timestamp) -> rusqlite::Result<()> {
        queries::upsert_agent(&self.0, name, token_hash, now)
    }

    fn remove_agent(&self, name: &Name) -> rusqlite::Result<bool> {
        queries::remove_agent(&self.0, name)
    }

    fn set_supervisor(&self, name: &Name, supervisor: bool) -> rusqlite::Result<bool> {
        queries::set_supervisor(&self.0, name, supervisor)
    }

    fn list_agents(&self) -> rusqlite::Result<Vec<crate::store::AgentListing>> {
        queries::list_agents(&self.0)
    }

    fn removed_agents_hold_conversations(&self) -> rusqlite::Result<bool> {
        queries::removed_agents_hold_conversations(&self.0)
    }

    fn release_removed_agents(&self) -> rusqlite::Result<Vec<(Name, Name)>> {
        let mut tables = super::tables::HotStatements::new(&self.0)?;
        crate::store::rules::release_removed_agents(&mut tables)
    }

    fn add_releases(&self, released: u64) -> rusqlite::Result<()> {
        queries::add_releases(&self.0, released)
    }
}

contract_tests!(|| Sqlite(db()));
