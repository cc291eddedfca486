//! The backend contract ([`crate::store::contract`]) run on PostgreSQL:
//! every test on a fresh database of the throwaway PostgreSQL this test
//! binary shares (`switchboard_tests::shared_postgres`). Without
//! PostgreSQL the tests fail with the line that installs it, unless
//! `SWITCHBOARD_SKIP_CLUSTER_TESTS` is set, and then say they were skipped.

use std::cell::RefCell;

use switchboard_protocol::{Name, Timestamp};

use super::conn::Conn;
use super::queries::{agents, clock};
use super::reads::Snapshot;
use super::schema::Settle;
use super::tables::Writes;
use super::url::PostgresUrl;
use super::{PostgresError, connect, settle_schema};
use crate::store::contract::{Subject, contract_tests};

/// One connection: the writer's tables and a reader's snapshot both, each
/// statement in its own transaction.
pub(in crate::store) struct Postgres(RefCell<Conn>);

/// A fresh database at the current schema; `None` when PostgreSQL is
/// missing and the tests may skip (already said on stderr).
pub(in crate::store) fn fresh() -> Option<Postgres> {
    let url: PostgresUrl = switchboard_tests::fresh_database()?
        .parse()
        .expect("the harness gives a valid URL");
    let conn = settle_schema(connect(&url).expect("connects"), Settle::Migrate)
        .expect("creates the schema");
    Some(Postgres(RefCell::new(conn)))
}

impl Subject for Postgres {
    type Error = PostgresError;
    type Tables<'a> = Writes<'a>;
    type Reads<'a> = Snapshot<'a>;

    fn tables(&self) -> Writes<'_> {
        Writes { conn: &self.0 }
    }

    fn reads(&self) -> Snapshot<'_> {
        Snapshot {
            conn: &self.0,
            alone: true,
        }
    }

    fn upsert_agent(&self, name: &Name, token_hash: &[u8], now: Timestamp) -> super::Result<()> {
        agents::upsert_agent(&mut self.0.borrow_mut(), name, token_hash, now)
    }

    fn remove_agent(&self, name: &Name) -> super::Result<bool> {
        agents::remove_agent(&mut self.0.borrow_mut(), name)
    }

    fn list_agents(&self) -> super::Result<Vec<(Name, u64)>> {
        agents::list_agents(&mut self.0.borrow_mut())
    }

    fn removed_agents_hold_conversations(&self) -> super::Result<bool> {
        agents::removed_agents_hold_conversations(&mut self.0.borrow_mut())
    }

    fn release_removed_agents(&self) -> super::Result<Vec<(Name, Name)>> {
        crate::store::rules::release_removed_agents(&mut self.tables())
    }

    fn add_releases(&self, released: u64) -> super::Result<()> {
        clock::add_releases(&mut self.0.borrow_mut(), released)
    }
}

contract_tests!(fresh);
