//! Which store a [`crate::TestServer`] keeps its data in: a SQLite file in
//! its temporary directory (the default), or a fresh database on the test
//! process's shared throwaway PostgreSQL
//! ([`crate::shared_postgres`](mod@crate::shared_postgres)); and, through
//! [`TEST_STORE_ENV`], what every plain `TestServer` of a run is.
//!
//! - `sqlite` (or unset): one node on a SQLite file.
//! - `postgres`: one node on a fresh PostgreSQL database: the whole suite
//!   against PostgreSQL, with no test written twice.
//! - `cluster`: [`CLUSTER_NODES`] nodes on one fresh PostgreSQL database,
//!   each with `--nats` pointing at the test process's shared `nats-server`
//!   ([`crate::shared_nats`](mod@crate::shared_nats)): one help desk served
//!   by several nodes. A test's connections take turns over the nodes
//!   ([`crate::TestServer::connect`]), so whatever the suite checks must
//!   hold across nodes too. The nodes start one after another, each once
//!   the one before logged `listening on`. `scripts/test-cluster.sh` runs
//!   it; it is not in `scripts/test.sh` until `serve` takes `--nats`.
//!
//! In every mode, tests that open the SQLite file themselves (to break it,
//! or to read it) are about SQLite and start their server with
//! [`crate::TestServer::start_on_sqlite`]; a test that names its store or
//! its listen address in the environment gets one node (see
//! [`crate::TestServer::start_with_env`]).

use std::ffi::OsString;
use std::path::PathBuf;

/// `SWITCHBOARD_TEST_STORE`: `sqlite` (or unset), `postgres` or `cluster`.
pub const TEST_STORE_ENV: &str = "SWITCHBOARD_TEST_STORE";

/// How many nodes a plain [`crate::TestServer`] has in cluster mode: three,
/// so that what one node commits must reach more than one other node, and a
/// test's first three connections each land on a different node.
pub const CLUSTER_NODES: usize = 3;

/// What every plain [`crate::TestServer`] of a run is ([`TEST_STORE_ENV`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteStore {
    /// One node on a SQLite file (the default).
    Sqlite,
    /// One node on a fresh PostgreSQL database.
    Postgres,
    /// [`CLUSTER_NODES`] nodes on one fresh PostgreSQL database and one NATS.
    Cluster,
}

impl SuiteStore {
    /// What [`TEST_STORE_ENV`] asks for. Any value but `sqlite`, `postgres`,
    /// `cluster` or nothing fails, so a typo does not run the suite on SQLite
    /// while claiming something else.
    pub fn requested() -> SuiteStore {
        SuiteStore::parse(std::env::var(TEST_STORE_ENV).ok().as_deref())
    }

    fn parse(value: Option<&str>) -> SuiteStore {
        match value {
            None | Some("") | Some("sqlite") => SuiteStore::Sqlite,
            Some("postgres") => SuiteStore::Postgres,
            Some("cluster") => SuiteStore::Cluster,
            Some(other) => {
                panic!("{TEST_STORE_ENV}={other:?}: use `sqlite`, `postgres` or `cluster`")
            }
        }
    }

    /// The value of [`TEST_STORE_ENV`] that asks for this, for messages.
    pub fn name(self) -> &'static str {
        match self {
            SuiteStore::Sqlite => "sqlite",
            SuiteStore::Postgres => "postgres",
            SuiteStore::Cluster => "cluster",
        }
    }
}

/// Where one server's data is.
#[derive(Debug, Clone)]
pub enum TestStore {
    /// The SQLite file (`--db`).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`--postgres`).
    Postgres(String),
}

impl TestStore {
    /// The `serve` and `agent` flag that names this store.
    pub fn flag(&self) -> [OsString; 2] {
        match self {
            TestStore::Sqlite(path) => ["--db".into(), path.into()],
            TestStore::Postgres(url) => ["--postgres".into(), url.into()],
        }
    }

    /// The environment variable that names this store instead of the flag.
    pub(crate) fn env_key(&self) -> &'static str {
        match self {
            TestStore::Sqlite(_) => "SWITCHBOARD_DB",
            TestStore::Postgres(_) => "SWITCHBOARD_POSTGRES",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_modes_are_named_and_nothing_else() {
        assert_eq!(SuiteStore::parse(None), SuiteStore::Sqlite);
        assert_eq!(SuiteStore::parse(Some("")), SuiteStore::Sqlite);
        for mode in [
            SuiteStore::Sqlite,
            SuiteStore::Postgres,
            SuiteStore::Cluster,
        ] {
            assert_eq!(SuiteStore::parse(Some(mode.name())), mode);
        }
        let typo = std::panic::catch_unwind(|| SuiteStore::parse(Some("clsuter")));
        let panic = typo.expect_err("a typo fails the run");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(
            message.contains("use `sqlite`, `postgres` or `cluster`"),
            "{message}"
        );
    }
}
