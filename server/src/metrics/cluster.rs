//! What a cluster node reports about its place in the cluster (issue 16):
//! how far its feed is behind the newest position it knows of, whether its
//! bus is connected, and how long ago it renewed its lease. The cluster
//! feed and the lease task write [`ClusterCounts`]; the collector reads it
//! with the router's applied position and the bus's state at each scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::event::Seq;
use crate::fanout::Router;

/// Written by the cluster feed and the lease task.
#[derive(Debug, Default)]
pub struct ClusterCounts {
    /// The newest position this node knows the cluster has reached: its
    /// own commits, batches heard on the bus, batches read back.
    newest: AtomicU64,
    /// When this node last renewed its lease.
    renewed: Mutex<Option<Instant>>,
}

impl ClusterCounts {
    /// A batch at `seq` exists (committed here, heard, or read back).
    pub fn saw(&self, seq: Seq) {
        self.newest.fetch_max(seq.0, Ordering::Relaxed);
    }

    /// The lease was renewed at `at`.
    pub fn renewed(&self, at: Instant) {
        *self.renewed.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
    }

    fn newest(&self) -> Seq {
        Seq(self.newest.load(Ordering::Relaxed))
    }

    /// How long ago the lease was renewed; `None` before the first time.
    fn lease_age(&self, now: Instant) -> Option<Duration> {
        let renewed = *self.renewed.lock().unwrap_or_else(PoisonError::into_inner);
        renewed.map(|at| now.saturating_duration_since(at))
    }
}

/// What the operator port reads of a cluster node.
pub struct ClusterObserved {
    pub counts: std::sync::Arc<ClusterCounts>,
    /// For the position its router has applied.
    pub router: Router,
    /// Whether the bus is connected; `None` without `--nats`.
    pub bus_up: Option<watch::Receiver<bool>>,
    /// How long a lease lasts: a node that has not renewed for longer may
    /// have been swept by the others.
    pub lease: Duration,
}

/// A scrape's figures.
pub(super) struct ClusterFigures {
    /// Positions between the newest known and the one applied.
    pub behind: u64,
    pub bus_connected: Option<bool>,
    pub lease_age: Option<Duration>,
}

impl ClusterObserved {
    pub(super) fn figures(&self, now: Instant) -> ClusterFigures {
        let applied = self.router.applied_position();
        ClusterFigures {
            behind: self.counts.newest().0.saturating_sub(applied.0),
            bus_connected: self.bus_up.as_ref().map(|up| *up.borrow()),
            lease_age: self.counts.lease_age(now),
        }
    }

    /// Unhealthy once the lease has gone unrenewed for longer than a lease.
    pub(super) fn check(&self, now: Instant) -> Result<(), String> {
        match self.counts.lease_age(now) {
            Some(age) if age > self.lease => Err(format!(
                "this node has not renewed its cluster lease for {:.0} s (a lease lasts {} s): \
                 the other nodes may have swept it; check its connection to PostgreSQL",
                age.as_secs_f64(),
                self.lease.as_secs()
            )),
            _ => Ok(()),
        }
    }
}
