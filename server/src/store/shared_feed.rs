//! A shared database's feed, read back by position (cluster mode, issue
//! 16): the handle a node's cluster feed (`fanout/cluster_feed.rs`) asks for
//! the batches after the last one it applied, and the thread that answers
//! on a connection of its own, so that a read-back never waits behind the
//! readers' backlogs and history pages.
//!
//! The thread also prunes the feed: batches older than [`RETENTION`] are
//! deleted (every node does it; deleting twice is harmless). A node that
//! falls further behind than that cannot be caught up from the feed; the
//! cluster feed says so and moves on (docs/cluster.md).

use std::time::{Duration, Instant};

use switchboard_protocol::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use crate::event::Seq;
pub use crate::feed_wire::StoredBatch;
use crate::feed_wire::{FeedTable, READ_BACK_LIMIT};

/// How long the feed keeps a batch: far longer than any node takes to read
/// back what its bus lost, short enough that the table stays small.
pub const RETENTION: Duration = Duration::from_secs(600);

/// How often the thread prunes, at most.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// Read-backs waiting for the thread; one node asks one at a time.
const QUEUE: usize = 4;

/// The cluster feed's handle on the feed table.
#[derive(Clone)]
pub struct SharedFeed {
    jobs: mpsc::Sender<FeedJob>,
}

pub(super) struct FeedJob {
    after: Seq,
    reply: oneshot::Sender<Result<Vec<StoredBatch>, StoreError>>,
}

impl SharedFeed {
    /// The batches after position `after`, oldest first, at most
    /// [`READ_BACK_LIMIT`].
    pub async fn after(&self, after: Seq) -> Result<Vec<StoredBatch>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(FeedJob { after, reply })
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
    fn prune(&mut self, before: Timestamp) -> Result<u64, Self::Error>;
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
            while let Some(job) = queue.blocking_recv() {
                let read = backend
                    .after(job.after, READ_BACK_LIMIT)
                    .map_err(StoreError::backend);
                // The cluster feed may have stopped waiting; nothing to do.
                let _ = job.reply.send(read);
                if pruned.elapsed() >= PRUNE_EVERY {
                    pruned = Instant::now();
                    prune(&mut backend);
                }
            }
        })?;
    Ok((SharedFeed { jobs }, thread))
}

fn prune<B: FeedBackend>(backend: &mut B) {
    let before = Timestamp::from_micros(
        Timestamp::now()
            .as_micros()
            .saturating_sub(RETENTION.as_micros() as i64),
    );
    match backend.prune(before) {
        Ok(0) => {}
        Ok(deleted) => tracing::debug!(deleted, "pruned the cluster feed"),
        Err(error) => {
            tracing::warn!(%error, "could not prune the cluster feed; trying again later")
        }
    }
}
