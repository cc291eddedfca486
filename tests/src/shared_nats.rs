//! One throwaway `nats-server` per test process, started on first use: the
//! bus every cluster of the suite in cluster mode ([`crate::store`]) shares.
//!
//! Like [`crate::shared_postgres`](mod@crate::shared_postgres): a start
//! costs far more than a test needs the bus for, so one server serves every
//! test of a binary. It outlives every test (a static is never dropped), so
//! a watchdog kills it and removes its log when the test process ends (see
//! `TestNats::stop_when_this_process_exits`). Tests never stop or freeze
//! it: a test about the bus failing starts a [`TestNats`] of its own.
//!
//! What keeps parallel tests apart is their databases, one each: every
//! cluster of a test binary publishes on this one server, so the nodes of
//! one help desk must tell their own batches from another help desk's on
//! the same NATS. A node that applied another database's batches would fail
//! the tests here, as it would mix up two help desks sharing a NATS in
//! production.

use std::sync::{Mutex, OnceLock, PoisonError};

use crate::nats::TestNats;

static SHARED: OnceLock<TestNats> = OnceLock::new();
static STARTING: Mutex<()> = Mutex::new(());

/// The shared server, started on first use. `None` only when `nats-server`
/// is missing and [`crate::SKIP_CLUSTER_TESTS_ENV`] is set; missing
/// otherwise, the test fails with the line that installs it.
pub fn shared_nats() -> Option<&'static TestNats> {
    // One start at a time: the tests that wait here then find it running.
    let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(nats) = SHARED.get() {
        return Some(nats);
    }
    let started = TestNats::start()?;
    started.stop_when_this_process_exits();
    Some(SHARED.get_or_init(|| started))
}
