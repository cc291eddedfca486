//! A cluster node's lease (issue 16).
//!
//! A node renews its lease in the shared database every
//! [`RENEW_EVERY`](crate::store::shared_feed::RENEW_EVERY); a lease lasts
//! [`LEASE`](crate::store::shared_feed::LEASE) by the database's clock.
//! When a renewal sees another node's lease run out, this node sweeps it
//! (once its own renewals have gone through for a whole lease, so that
//! after the database was down every node has renewed before any sweeps):
//! the swept node's connections go offline on every node, through the
//! ordered feed. When a renewal finds this node's own lease gone (it was
//! frozen or cut off for longer, and another node swept it), it takes its
//! id again and closes every connection: what its registry held may be
//! stale, and its clients connect again and resume.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::event::NodeId;
use crate::fanout::Router;
use crate::metrics::cluster::ClusterCounts;
use crate::store::shared_feed::{LEASE, RENEW_EVERY, Renewal};
use crate::store::{SharedFeed, Store};

/// Renews `node`'s lease until `stopping`, sweeping expired nodes and
/// dismissing every connection if the lease was lost.
pub async fn keep(
    node: NodeId,
    feed: SharedFeed,
    store: Store,
    router: Router,
    counts: Arc<ClusterCounts>,
    stopping: CancellationToken,
) {
    let mut timer = tokio::time::interval(RENEW_EVERY);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Logged once per outage, not once a second.
    let mut failing = false;
    // Since when renewals have gone through without a break: another node
    // is swept only by a node that has itself renewed for a whole lease, so
    // that after an outage of the database (renewals failing, or hanging)
    // every node had its chance to renew first.
    let mut renewing_since = tokio::time::Instant::now();
    let mut last_renewed: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = timer.tick() => {}
        }
        match feed.renew(node).await {
            Ok(Renewal {
                held,
                others_expired,
            }) => {
                if failing {
                    tracing::info!("renewing this node's lease again");
                    failing = false;
                }
                let now = tokio::time::Instant::now();
                if last_renewed.is_none_or(|at| now - at > 2 * RENEW_EVERY) {
                    renewing_since = now;
                }
                last_renewed = Some(now);
                counts.renewed(now.into_std());
                if !held {
                    tracing::warn!(
                        node = node.0,
                        "this node's lease ran out and another node swept it; taking it \
                         again and closing every connection"
                    );
                    if let Err(error) = feed.rejoin(node).await {
                        tracing::error!(%error, "could not take the lease again; retrying");
                        continue;
                    }
                    router.dismiss_all().await;
                }
                if others_expired && now - renewing_since >= LEASE {
                    let _ = store.sweep_expired_nodes().await;
                }
            }
            Err(error) => {
                if !failing {
                    failing = true;
                    tracing::warn!(%error, "cannot renew this node's lease; retrying every second");
                }
            }
        }
    }
}
