//! A node's own line to a shared database (cluster mode, issue 16): the
//! feed read back by position, and the node's lease. The handle the
//! cluster feed (`fanout/cluster_feed.rs`) asks for the batches after the
//! last one it applied, and the lease task (`crate::lease`) renews with;
//! and the thread that answers on a connection of its own, so that neither
//! waits behind the readers' backlogs and history pages, nor the writer's
//! groups.
//!
//! The thread also prunes the feed: batches older than [`RETENTION`] are
//! deleted (every node does it; deleting twice is harmless). A node that
//! falls further behind than that cannot be caught up from the feed; the
//! cluster feed says so and moves on (docs/cluster.md).

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use crate::event::{NodeId, Seq};
pub use crate::feed_wire::StoredBatch;
use crate::feed_wire::{FeedTable, READ_BACK_LIMIT};

/// How long the feed keeps a batch: far longer than any node takes to read
/// back what its bus lost, short enough that the table stays small.
pub const RETENTION: Duration = Duration::from_secs(600);

/// How often the thread prunes, at most.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// Requests waiting for the thread; one node asks one of each at a time.
const QUEUE: usize = 4;

/// How long a node's lease lasts, by the database's clock: a node frozen
/// or cut off for longer is swept by the others, and its connections go
/// offline everywhere.
pub const LEASE: Duration = Duration::from_secs(5);

/// How often a node renews its lease: several renewals fit in one lease,
/// so a slow one costs nothing.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// What renewing a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// This node still held its lease, and holds it for [`LEASE`] more.
    pub held: bool,
    /// Another node's lease has run out: it is due to be swept.
    pub others_expired: bool,
}

/// The cluster feed's handle on the feed table.
#[derive(Clone)]
pub struct SharedFeed {
    jobs: mpsc::Sender<FeedJob>,
}

pub(super) enum FeedJob {
    ReadBack {
        after: Seq,
        reply: oneshot::Sender<Result<Vec<StoredBatch>, StoreError>>,
    },
    Renew {
        node: NodeId,
        reply: oneshot::Sender<Result<Renewal, StoreError>>,
    },
    Rejoin {
        node: NodeId,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

impl SharedFeed {
    /// The batches after position `after`, oldest first, at most
    /// [`READ_BACK_LIMIT`].
    pub async fn after(&self, after: Seq) -> Result<Vec<StoredBatch>, StoreError> {
        self.ask(|reply| FeedJob::ReadBack { after, reply }).await
    }

    /// Renews `node`'s lease for [`LEASE`], if it still holds one.
    pub async fn renew(&self, node: NodeId) -> Result<Renewal, StoreError> {
        self.ask(|reply| FeedJob::Renew { node, reply }).await
    }

    /// Takes `node`'s id again, with a fresh lease, after it lost it.
    pub async fn rejoin(&self, node: NodeId) -> Result<(), StoreError> {
        self.ask(|reply| FeedJob::Rejoin { node, reply }).await
    }

    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> FeedJob,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(job(reply))
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }
}

impl FeedTable for SharedFeed {
    async fn after(&self, after: Seq) -> Result<Vec<StoredBatch>, String> {
        SharedFeed::after(self, after)
            .await
            .map_err(|error| error.to_string())
    }
}

/// What the thread reads and prunes with (PostgreSQL's connection).
pub(super) trait FeedBackend: Send + 'static {
    type Error: std::error::Error + Send + Sync + 'static;
    fn after(&mut self, after: Seq, limit: u32) -> Result<Vec<StoredBatch>, Self::Error>;
    /// Deletes up to `limit` batches older than `kept`; how many.
    fn prune(&mut self, kept: Duration, limit: u32) -> Result<u64, Self::Error>;
    fn renew(&mut self, node: NodeId, lease: Duration) -> Result<Renewal, Self::Error>;
    fn rejoin(&mut self, node: NodeId, lease: Duration) -> Result<(), Self::Error>;
}

/// Starts the thread; it ends once every handle is gone.
pub(super) fn start<B: FeedBackend>(
    mut backend: B,
) -> std::io::Result<(SharedFeed, std::thread::JoinHandle<()>)> {
    let (jobs, mut queue) = mpsc::channel::<FeedJob>(QUEUE);
    let thread = std::thread::Builder::new()
        .name("store-feed".into())
        .spawn(move || {
            let mut pruned = Instant::now();
            // Whoever asked may have stopped waiting: nothing to do then.
            while let Some(job) = queue.blocking_recv() {
                match job {
                    FeedJob::ReadBack { after, reply } => {
                        let read = backend.after(after, READ_BACK_LIMIT);
                        let _ = reply.send(read.map_err(StoreError::backend));
                    }
                    FeedJob::Renew { node, reply } => {
                        let renewed = backend.renew(node, LEASE);
                        let _ = reply.send(renewed.map_err(StoreError::backend));
                    }
                    FeedJob::Rejoin { node, reply } => {
                        let rejoined = backend.rejoin(node, LEASE);
                        let _ = reply.send(rejoined.map_err(StoreError::backend));
                    }
                }
                // A prune that hit its limit goes on after the next request
                // (a renewal comes every second), a bounded step each time.
                if pruned.elapsed() >= PRUNE_EVERY && !prune(&mut backend) {
                    pruned = Instant::now();
                }
            }
        })?;
    Ok((SharedFeed { jobs }, thread))
}

/// Batches one prune deletes at most: through the index by time, a few
/// milliseconds, never long enough to hold up a lease renewal.
const PRUNE_LIMIT: u32 = 5_000;

/// Prunes one bounded step; whether there is more to prune.
fn prune<B: FeedBackend>(backend: &mut B) -> bool {
    match backend.prune(RETENTION, PRUNE_LIMIT) {
        Ok(0) => false,
        Ok(deleted) => {
            tracing::debug!(deleted, "pruned the cluster feed");
            deleted >= u64::from(PRUNE_LIMIT)
        }
        Err(error) => {
            tracing::warn!(%error, "could not prune the cluster feed; trying again later");
            false
        }
    }
}
