//! One throwaway PostgreSQL per test process, started on first use, and a
//! fresh database on it for each caller: what the server's PostgreSQL
//! backend tests and the end-to-end suite in PostgreSQL mode stand on.
//!
//! `initdb` and a start cost about a second; `createdb` a few
//! milliseconds. So every test of a binary shares one server and gets a
//! database of its own, which keeps tests parallel-safe: nothing one test
//! writes is visible to another. The server outlives every test (a static
//! is never dropped), so a watchdog stops it and removes its files when the
//! test process ends (see [`TestPostgres::stop_when_this_process_exits`]).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::postgres::TestPostgres;

static SHARED: OnceLock<TestPostgres> = OnceLock::new();
static STARTING: Mutex<()> = Mutex::new(());

/// Databases handed out by this process, for unique names.
static NEXT: AtomicU32 = AtomicU32::new(1);

/// The shared server, started on first use. `None` only when PostgreSQL is
/// missing and [`crate::SKIP_CLUSTER_TESTS_ENV`] is set; missing otherwise,
/// the test fails with the line that installs it.
pub fn shared_postgres() -> Option<&'static TestPostgres> {
    // One start at a time: the tests that wait here then find it running.
    let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(postgres) = SHARED.get() {
        return Some(postgres);
    }
    let started = TestPostgres::start()?;
    started.stop_when_this_process_exits();
    Some(SHARED.get_or_init(|| started))
}

/// The URL of a new, empty database on the shared server, for one test.
pub fn fresh_database() -> Option<String> {
    let postgres = shared_postgres()?;
    let name = format!(
        "sb_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    postgres.create_database(&name);
    Some(postgres.database_url(&name))
}
