//! What the throwaway servers a cluster test stands on ([`crate::TestPostgres`],
//! [`crate::TestNats`]) share: finding a system program, the one switch that
//! may skip a test whose program is missing, a free loopback port, and the
//! log file a failure message quotes.
//!
//! A missing program fails the test with the line that installs it: CI
//! (`.ci/run`) installs both packages, so a missing one there is a broken
//! machine, not a reason to pass. Only [`SKIP_CLUSTER_TESTS_ENV`], which CI
//! never sets, turns that failure into a skip, and the skip is printed.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable that lets a developer without PostgreSQL or
/// `nats-server` skip the tests that need them. CI never sets it.
pub const SKIP_CLUSTER_TESTS_ENV: &str = "SWITCHBOARD_SKIP_CLUSTER_TESTS";

/// How long a throwaway server may take to accept clients. PostgreSQL's
/// first start includes nothing slow (`initdb` runs before), so this is a
/// wide upper bound for a loaded 2-core machine, not an expectation.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How many free ports a first start tries: a port found free can be taken
/// by a parallel test before the server binds it.
pub(crate) const PORT_ATTEMPTS: usize = 3;

/// How often a wait for a server looks again; only a test waits.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The program `found`, or what to do without it: `None` (skip) when
/// [`SKIP_CLUSTER_TESTS_ENV`] is set, which is then written where the test
/// summary shows it; otherwise the test fails with `install`, the line that
/// installs it.
pub(crate) fn require(what: &str, found: Option<PathBuf>, install: &str) -> Option<PathBuf> {
    if found.is_some() {
        return found;
    }
    crate::missing::skip_or_fail(
        &format!("{what}, which is not installed"),
        &format!("run `{install}`"),
        SKIP_CLUSTER_TESTS_ENV,
    )
}

/// `name` in the directories of `PATH`, then in the `sbin` directories that
/// a non-root `PATH` often lacks (Debian puts `nats-server` in `/usr/sbin`).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A loopback port that was free a moment ago. The listener is closed before
/// the server binds the port, so a parallel test may take it first: callers
/// retry a first start on another port ([`PORT_ATTEMPTS`]).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port to learn a free one")
        .port()
}

/// The whole of a server's log file, or why it cannot be read.
pub(crate) fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| format!("(cannot read {}: {error})", path.display()))
}

/// Whether a server's log says it lost the race for its port.
pub(crate) fn port_taken(log: &str) -> bool {
    log.contains("ddress already in use")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_fails_with_the_line_that_installs_it() {
        let missing = std::panic::catch_unwind(|| {
            require("nats-server", None, "apt-get install nats-server")
        });
        if std::env::var_os(SKIP_CLUSTER_TESTS_ENV).is_some_and(|value| !value.is_empty()) {
            assert_eq!(missing.ok(), Some(None), "skipped, not failed");
            return;
        }
        let panic = missing.expect_err("a missing program fails the test");
        let message = panic
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert!(
            message.contains("run `apt-get install nats-server`"),
            "{message}"
        );
    }

    #[test]
    fn a_present_program_is_used() {
        let found = Some(PathBuf::from("/bin/true"));
        assert_eq!(require("true", found.clone(), "never"), found);
    }
}
