//! A cluster node's lease, and keeping its connection records true (issue
//! 16).
//!
//! A node renews its lease in the shared database every
//! [`RENEW_EVERY`](crate::store::shared_feed::RENEW_EVERY); a lease lasts
//! [`LEASE`](crate::store::shared_feed::LEASE) by the database's clock.
//! When a renewal sees another node's lease run out, this node sweeps it
//! (once its own renewals have gone through without a break for a lease
//! and a reconnection's time, so that after the database was down every
//! node has renewed before any sweeps; never itself): the swept node's
//! connections go offline on every node, through the ordered feed. When a
//! renewal finds this node's own lease gone (it was frozen or cut off for
//! longer, and another node swept it), it takes its id again and closes
//! every connection: what its registry held may be stale, and its clients
//! connect again and resume.
//!
//! Each session records its connection when it first subscribes and
//! removes the record as it goes (`session/member.rs`); a removal can be
//! lost (the writer's queue full, the database down, a commit whose
//! outcome was lost). So every [`RECONCILE_EVERY`] the node also removes
//! every record of its own that no live session holds ([`OwnRecords`]),
//! and the other nodes hear those connections go.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::event::{ConnId, NodeId};
use crate::fanout::Router;
use crate::metrics::cluster::ClusterCounts;
use crate::store::CONNECT_TIMEOUT;
use crate::store::shared_feed::{LEASE, RENEW_EVERY, Renewal};
use crate::store::{SharedFeed, Store};

/// How long a node renews without a break before it sweeps another: a
/// lease, plus the time any other node's reconnection to PostgreSQL may
/// take after an outage, plus a renewal, so that once the database is back
/// every node renews before any sweeps.
const SWEEP_AFTER: Duration = LEASE
    .saturating_add(CONNECT_TIMEOUT)
    .saturating_add(RENEW_EVERY);

/// How often a node removes the records of its own that no session holds.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// The connections of this node whose sessions hold a record (or are
/// writing one).
#[derive(Debug, Default)]
pub struct OwnRecords(Mutex<HashSet<ConnId>>);

impl OwnRecords {
    pub fn insert(&self, conn: ConnId) {
        self.lock().insert(conn);
    }

    pub fn remove(&self, conn: ConnId) {
        self.lock().remove(&conn);
    }

    pub fn snapshot(&self) -> Vec<ConnId> {
        self.lock().iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<ConnId>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the lease task works with.
pub struct Lease {
    pub node: NodeId,
    pub feed: SharedFeed,
    pub store: Store,
    pub router: Router,
    pub counts: Arc<ClusterCounts>,
    pub records: Arc<OwnRecords>,
}

/// Removes every record of `node`'s that no live session holds (`records`
/// lists those that do); the other nodes hear those connections go.
async fn reconcile(store: &Store, node: NodeId, records: &Arc<OwnRecords>) {
    let records = Arc::clone(records);
    let live = Box::new(move || records.snapshot());
    let _ = store.reconcile_members(node, live).await;
}

/// One node (SQLite) keeps records of its agents' connections too, the
/// clock of auto-release (`store/rules/connections.rs`): with no lease to
/// renew, this keeps them true every [`RECONCILE_EVERY`], so a removal
/// lost (the writer's queue full as the agent left) does not keep the
/// agent present, and its conversations held, until the next start.
pub async fn keep_records_true(
    store: Store,
    records: Arc<OwnRecords>,
    stopping: CancellationToken,
) {
    let mut timer = tokio::time::interval(RECONCILE_EVERY);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer.tick().await;
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = timer.tick() => reconcile(&store, NodeId::LOCAL, &records).await,
        }
    }
}

impl Lease {
    /// Renews the lease until `stopping`, sweeping expired nodes,
    /// dismissing every connection if the lease was lost, and removing the
    /// records no session holds.
    pub async fn keep(self, stopping: CancellationToken) {
        let mut timer = tokio::time::interval(RENEW_EVERY);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Logged once per outage, not once a second.
        let mut failing = false;
        // Since when renewals have gone through without a break (failing,
        // or hanging while the database is away, both break it).
        let mut renewing_since = tokio::time::Instant::now();
        let mut last_renewed: Option<tokio::time::Instant> = None;
        let mut reconciled = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                _ = timer.tick() => {}
            }
            let renewal = match self.feed.renew(self.node).await {
                Ok(renewal) => renewal,
                Err(error) => {
                    if !failing {
                        failing = true;
                        tracing::warn!(%error, "cannot renew this node's lease; retrying every second");
                    }
                    continue;
                }
            };
            if failing {
                tracing::info!("renewing this node's lease again");
                failing = false;
            }
            let now = tokio::time::Instant::now();
            if last_renewed.is_none_or(|at| now - at > 2 * RENEW_EVERY) {
                renewing_since = now;
            }
            last_renewed = Some(now);
            self.counts.renewed(now.into_std());
            let Renewal {
                held,
                others_expired,
            } = renewal;
            if !held && !self.take_again().await {
                continue;
            }
            if others_expired && now - renewing_since >= SWEEP_AFTER {
                let _ = self.store.sweep_expired_nodes(self.node).await;
            }
            if now - reconciled >= RECONCILE_EVERY {
                reconciled = now;
                reconcile(&self.store, self.node, &self.records).await;
            }
        }
    }

    /// The lease was lost: takes it again and closes every connection;
    /// `false` if it could not be taken (tried again next time).
    async fn take_again(&self) -> bool {
        tracing::warn!(
            node = self.node.0,
            "this node's lease ran out and another node swept it; taking it again and \
             closing every connection"
        );
        if let Err(error) = self.feed.rejoin(self.node).await {
            tracing::error!(%error, "could not take the lease again; retrying");
            return false;
        }
        self.router.dismiss_all().await;
        true
    }
}
