//! Fitting `--max-connections` to the open-file limit.
//!
//! Every connection holds a file descriptor. Past the process's soft limit
//! `accept` fails: clients then wait in the kernel's queue with neither a
//! greeting nor `server_busy` while the server retries. Many systems start
//! processes with a soft limit of 1,024 and a far higher hard one, below the
//! default of 10,000 connections, so the server raises its soft limit as far
//! as it needs and may; if that is still short, it serves fewer connections
//! and says so, and the ones past them get `server_busy`.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for everything but clients: 64 for the database, its
/// WAL and shared-memory files for the writer and each reader, SQLite's
/// temporary files, the listener, the runtime's poller and wakers and the
/// standard streams (an idle server holds about 20), plus the connections
/// over the cap being told `server_busy` at once.
pub const RESERVED: u64 = 64 + crate::server::MAX_REFUSALS as u64;

/// What [`fit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fitted {
    /// The connections the server can hold: as asked, or fewer.
    pub max_connections: u64,
    /// The soft limit before, if it was raised.
    pub raised_from: Option<u64>,
    /// The soft limit now; `None` for unlimited.
    pub limit: Option<u64>,
}

/// Raises the soft open-file limit to hold `max_connections`, within the
/// hard limit, and says how many connections fit.
pub fn fit(max_connections: u64) -> Fitted {
    let now = getrlimit(Resource::Nofile);
    let wanted = plan(max_connections, now.current, now.maximum);
    let Some(target) = wanted else {
        return fitted(max_connections, now.current, None);
    };
    let raised = Rlimit {
        current: Some(target),
        maximum: now.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => fitted(max_connections, Some(target), now.current),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit");
            fitted(max_connections, now.current, None)
        }
    }
}

/// The soft limit to ask for, if the current one is too low and can go up.
fn plan(max_connections: u64, current: Option<u64>, maximum: Option<u64>) -> Option<u64> {
    let needed = max_connections.saturating_add(RESERVED);
    let current = current?;
    if current >= needed {
        return None;
    }
    let target = maximum.map_or(needed, |maximum| needed.min(maximum));
    (target > current).then_some(target)
}

fn fitted(max_connections: u64, limit: Option<u64>, raised_from: Option<u64>) -> Fitted {
    let fits = limit.map_or(max_connections, |limit| {
        max_connections.min(limit.saturating_sub(RESERVED).max(1))
    });
    Fitted {
        max_connections: fits,
        raised_from,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_the_soft_limit_only_as_far_as_needed_and_allowed() {
        // Enough already, or unlimited: nothing to do.
        assert_eq!(plan(100, Some(1_024), Some(4_096)), None);
        assert_eq!(plan(10_000, None, None), None);
        // Short: up to what is needed, within the hard limit.
        assert_eq!(plan(10_000, Some(1_024), Some(524_288)), Some(10_128));
        assert_eq!(plan(10_000, Some(1_024), None), Some(10_128));
        assert_eq!(plan(10_000, Some(1_024), Some(4_096)), Some(4_096));
        // Short with no room to grow.
        assert_eq!(plan(10_000, Some(1_024), Some(1_024)), None);
    }

    #[test]
    fn serves_what_the_limit_holds() {
        assert_eq!(
            fitted(10_000, Some(10_128), Some(1_024)).max_connections,
            10_000
        );
        assert_eq!(fitted(10_000, Some(1_024), None).max_connections, 896);
        assert_eq!(fitted(10_000, None, None).max_connections, 10_000);
        // Even a tiny limit leaves one connection to serve.
        assert_eq!(fitted(10_000, Some(16), None).max_connections, 1);
    }
}
