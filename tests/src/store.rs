//! Which store a [`crate::TestServer`] keeps its data in: a SQLite file in
//! its temporary directory (the default), or a fresh database on the test
//! process's shared throwaway PostgreSQL ([`crate::shared_postgres`]).
//!
//! [`TEST_STORE_ENV`]`=postgres` runs every test that starts a plain
//! `TestServer` on PostgreSQL instead: the whole suite against one node on
//! PostgreSQL, with no test written twice. Tests that open the SQLite file
//! themselves (to break it, or to read it) are about SQLite and fail there.

use std::ffi::OsString;
use std::path::PathBuf;

/// `SWITCHBOARD_TEST_STORE`: `sqlite` (or unset) or `postgres`.
pub const TEST_STORE_ENV: &str = "SWITCHBOARD_TEST_STORE";

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

/// Whether [`TEST_STORE_ENV`] asks for PostgreSQL; any value but `sqlite`,
/// `postgres` or nothing fails, so a typo does not run the suite on SQLite
/// while claiming PostgreSQL.
pub fn postgres_requested() -> bool {
    match std::env::var(TEST_STORE_ENV).as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => false,
        Ok("postgres") => true,
        Ok(other) => panic!("{TEST_STORE_ENV}={other:?}: use `sqlite` or `postgres`"),
    }
}
