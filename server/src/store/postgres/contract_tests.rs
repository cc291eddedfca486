//! The backend contract ([`crate::store::contract`]) run on PostgreSQL:
//! every test on a fresh database of the throwaway PostgreSQL this test
//! binary shares (`switchboard_tests::shared_postgres`). Without
//! PostgreSQL the tests fail with the line that installs it, unless
//! `SWITCHBOARD_SKIP_CLUSTER_TESTS` is set, and then say they were skipped.

use std::cell::RefCell;

use switchboard_protocol::{Name, Timestamp};

use super::conn::Conn;
use super::held_back::HeldBack;
use super::known_users::KnownUsers;
use super::queries::{agents, clock};
use super::reads::Snapshot;
use super::schema::Settle;
use super::tables::Writes;
use super::url::PostgresUrl;
use super::{PostgresError, connect, settle_schema};
use crate::store::contract::{Subject, contract_tests};

/// One connection: the writer's tables and a reader's snapshot both, each
/// statement in its own transaction. The rows the tables hold back
/// (`held_back.rs`) are written before the next tables or reads are
/// handed out, as the writer writes them before it commits.
pub(in crate::store) struct Postgres {
    conn: RefCell<Conn>,
    held: RefCell<HeldBack>,
    known_users: RefCell<KnownUsers>,
}

impl Postgres {
    /// Writes what the last tables held back; ids continue from the
    /// sequencer row.
    fn settle(&self) {
        let mut conn = self.conn.borrow_mut();
        self.held
            .borrow_mut()
            .write(&mut conn)
            .expect("writes the held rows");
        let (last_id, _) = clock::position_parts(&mut conn).expect("reads the sequencer row");
        *self.held.borrow_mut() = HeldBack::after(last_id);
    }
}

/// A fresh database at the current schema; `None` when PostgreSQL is
/// missing and the tests may skip (already said on stderr).
pub(in crate::store) fn fresh() -> Option<Postgres> {
    let url: PostgresUrl = switchboard_tests::fresh_database()?
        .parse()
        .expect("the harness gives a valid URL");
    let conn = settle_schema(connect(&url).expect("connects"), Settle::Migrate)
        .expect("creates the schema");
    Some(Postgres {
        conn: RefCell::new(conn),
        held: RefCell::new(HeldBack::after(0)),
        known_users: RefCell::default(),
    })
}

/// A writer on a fresh database at the current schema, and a plain client
/// of the same database for the test to look with; `None` as [`fresh`].
pub(in crate::store) fn fresh_writer() -> Option<(super::backend::PostgresWriter, postgres::Client)>
{
    let url: PostgresUrl = switchboard_tests::fresh_database()?
        .parse()
        .expect("the harness gives a valid URL");
    let conn = settle_schema(connect(&url).expect("connects"), Settle::Migrate)
        .expect("creates the schema");
    let client = url.config().connect(postgres::NoTls).expect("connects");
    Some((super::backend::PostgresWriter::new(conn), client))
}

impl Subject for Postgres {
    type Error = PostgresError;
    type Tables<'a> = Writes<'a>;
    type Reads<'a> = Snapshot<'a>;

    fn tables(&self) -> Writes<'_> {
        self.settle();
        Writes {
            conn: &self.conn,
            held: &self.held,
            known_users: &self.known_users,
        }
    }

    fn reads(&self) -> Snapshot<'_> {
        self.settle();
        Snapshot {
            conn: &self.conn,
            alone: true,
        }
    }

    fn upsert_agent(&self, name: &Name, token_hash: &[u8], now: Timestamp) -> super::Result<()> {
        agents::upsert_agent(&mut self.conn.borrow_mut(), name, token_hash, now)
    }

    fn remove_agent(&self, name: &Name) -> super::Result<bool> {
        agents::remove_agent(&mut self.conn.borrow_mut(), name)
    }

    fn set_supervisor(&self, name: &Name, supervisor: bool) -> super::Result<bool> {
        agents::set_supervisor(&mut self.conn.borrow_mut(), name, supervisor)
    }

    fn list_agents(&self) -> super::Result<Vec<crate::store::AgentListing>> {
        agents::list_agents(&mut self.conn.borrow_mut())
    }

    fn removed_agents_hold_conversations(&self) -> super::Result<bool> {
        agents::removed_agents_hold_conversations(&mut self.conn.borrow_mut())
    }

    fn release_removed_agents(&self) -> super::Result<Vec<(Name, Name)>> {
        crate::store::rules::release_removed_agents(&mut self.tables())
    }

    fn add_releases(&self, released: u64) -> super::Result<()> {
        clock::add_releases(&mut self.conn.borrow_mut(), released)
    }
}

contract_tests!(fresh);
