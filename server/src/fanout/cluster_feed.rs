//! A cluster node's feed (issue 16): every node's commits, in position
//! order, for this node's router.
//!
//! One task merges three sources into the [`Feed`] the router applies:
//!
//! - this node's writer's commits (its `LocalBus`'s feed), each published
//!   on the bus for the other nodes, by a publisher task that never holds
//!   this one up;
//! - other nodes' batches, heard on the bus (NATS core, when `--nats` is
//!   given and it is up);
//! - the feed table (`sb_feed`), read back by position
//!   ([`FeedTable`]): what the bus lost or never carried. It is read when
//!   a batch arrives early (a gap before it), after the bus comes back, and
//!   on a timer: every [`PROBE_EVERY`] while the bus is up and quiet, every
//!   [`POLL_EVERY`] without a bus. Without NATS the cluster is therefore
//!   correct and slower: the timer is its whole delivery path.
//!
//! [`ClusterOrder`] (pure, `cluster_order.rs`) decides what is applied
//! when; this file only does the I/O. The database is the truth: nothing
//! the bus says is applied out of order, and nothing it loses is lost.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::bus::Feed;
use super::cluster_order::{ClusterOrder, Step};
use super::nats_bus::{NatsBus, NatsFeed};
use crate::event::{Commit, NodeId, Seq};
use crate::feed_wire::{self, FeedTable, Linked, READ_BACK_LIMIT, StoredBatch};
use crate::metrics::cluster::ClusterCounts;

/// How often the feed table is read while the bus is up and carries
/// nothing: a batch the bus lost without a later one to reveal the gap is
/// delivered within this.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// How often the feed table is read while there is no bus (none given, or
/// NATS down): the delivery latency of a cluster without its bus.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// Batches waiting for the publisher; past it a batch is not published
/// and the other nodes read it back.
const PUBLISH_QUEUE: usize = 1_024;

/// Starts the feed task for `node` on a shared database: `own` is the
/// node's writer's feed, `start` the position it has applied everything up
/// to, `table` the feed table, `bus` the cluster's bus if there is one. The
/// returned feed is the router's.
pub fn spawn<T: FeedTable>(
    own: Feed,
    node: NodeId,
    start: Seq,
    table: T,
    bus: Option<(NatsBus, NatsFeed)>,
    counts: Arc<ClusterCounts>,
) -> (Feed, JoinHandle<()>) {
    let (out, feed) = Feed::channel();
    let (publish, up, heard) = match bus {
        Some((bus, heard)) => {
            let up = bus.up();
            let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
            tokio::spawn(publish_all(bus, queue));
            (Some(publish), Some(up), Some(heard))
        }
        None => (None, None, None),
    };
    let task = ClusterFeed {
        own,
        out,
        order: ClusterOrder::starting_at(start, node),
        table,
        publish,
        up,
        heard,
        counts,
    };
    (feed, tokio::spawn(task.run()))
}

struct ClusterFeed<T> {
    own: Feed,
    out: mpsc::Sender<Commit>,
    order: ClusterOrder,
    table: T,
    publish: Option<mpsc::Sender<Bytes>>,
    up: Option<tokio::sync::watch::Receiver<bool>>,
    heard: Option<NatsFeed>,
    /// The newest position known, for the metrics.
    counts: Arc<ClusterCounts>,
}

impl<T: FeedTable> ClusterFeed<T> {
    async fn run(mut self) {
        let mut read: Option<JoinHandle<Result<Vec<StoredBatch>, String>>> = None;
        // A read of the feed table is owed (a gap, a probe, a reconnect).
        let mut owed = true;
        let mut timer = tokio::time::interval(self.timer_period());
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if owed && read.is_none() {
                owed = false;
                let table = self.table.clone();
                let after = self.order.applied();
                read = Some(tokio::spawn(async move { table.after(after).await }));
            }
            let step = tokio::select! {
                commit = self.own.next() => match commit {
                    Some(commit) => {
                        self.publish(&commit);
                        if let Some(batch) = &commit.batch {
                            self.counts.saw(batch.seq);
                        }
                        self.order.own(commit)
                    }
                    // The writer has stopped: so has the node.
                    None => break,
                },
                Some(bytes) = next_heard(&mut self.heard) => {
                    timer.reset();
                    match feed_wire::decode(&bytes) {
                        Ok(batch) => {
                            self.counts.saw(batch.seq);
                            self.order.heard(batch)
                        }
                        Err(error) => {
                            tracing::warn!(%error);
                            owed = true;
                            Step::default()
                        }
                    }
                },
                Some(()) = bus_changed(&mut self.up) => {
                    // Back: what was published meanwhile never reaches
                    // this node. Down: poll from now on.
                    timer = tokio::time::interval(self.timer_period());
                    owed = true;
                    Step::default()
                },
                _ = timer.tick() => {
                    owed = true;
                    Step::default()
                },
                done = wait(&mut read) => {
                    read = None;
                    let (step, more) = self.read_back(done);
                    owed |= more;
                    step
                },
            };
            owed |= step.gap.is_some();
            for commit in step.ready {
                if self.out.send(commit).await.is_err() {
                    return; // the router has stopped
                }
            }
        }
        tracing::debug!("cluster feed stopped: the writer has stopped");
    }

    /// How often to read the feed table unasked: rarely while the bus
    /// carries the batches, often without it.
    fn timer_period(&self) -> Duration {
        match &self.up {
            Some(up) if *up.borrow() => PROBE_EVERY,
            _ => POLL_EVERY,
        }
    }

    /// Hands this node's batch to the publisher, unless it is full: then
    /// the other nodes read it back.
    fn publish(&self, commit: &Commit) {
        if let (Some(publish), Some(entry)) = (&self.publish, &commit.feed) {
            let _ = publish.try_send(entry.encoded.clone());
        }
    }

    /// Applies a read-back; whether to read again at once (it was full).
    fn read_back(
        &mut self,
        done: Result<Result<Vec<StoredBatch>, String>, tokio::task::JoinError>,
    ) -> (Step, bool) {
        let rows = match done {
            Ok(Ok(rows)) => rows,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read the cluster feed from the database; trying again");
                return (Step::default(), false);
            }
            Err(error) => {
                tracing::error!(%error, "a read of the cluster feed failed");
                return (Step::default(), false);
            }
        };
        let more = rows.len() >= READ_BACK_LIMIT as usize;
        let mut step = Step::default();
        if let Some(first) = rows.first()
            && first.after > self.order.applied()
        {
            // Pruned before this node read it (it was stopped or cut off
            // for longer than the feed keeps batches).
            tracing::error!(
                from = self.order.applied().0,
                to = first.after.0,
                "this node fell behind the cluster feed's retention; its clients \
                 missed live events in between and see them on their next subscribe"
            );
            step = self.order.skip_to(first.after);
        }
        for row in rows {
            let Linked { after, seq, item } = row;
            match feed_wire::decode(&item) {
                Ok(batch) if batch.after == after && batch.seq == seq => {
                    self.counts.saw(seq);
                    let mut next = self.order.heard(batch);
                    step.ready.append(&mut next.ready);
                    step.gap = next.gap;
                }
                Ok(_) | Err(_) => {
                    tracing::error!(
                        seq = seq.0,
                        "a batch in the cluster feed is not readable by this node; every \
                         node of a cluster must run the same release"
                    );
                    let mut next = self.order.skip_to(seq);
                    step.ready.append(&mut next.ready);
                    step.gap = next.gap;
                }
            }
        }
        (step, more)
    }
}

/// The next batch heard on the bus; never, without a bus.
async fn next_heard(heard: &mut Option<NatsFeed>) -> Option<Bytes> {
    match heard {
        Some(heard) => heard.next().await,
        None => std::future::pending().await,
    }
}

/// Resolves when the bus goes up or down; never, without a bus.
async fn bus_changed(up: &mut Option<tokio::sync::watch::Receiver<bool>>) -> Option<()> {
    match up {
        Some(up) => up.changed().await.ok(),
        None => std::future::pending().await,
    }
}

/// The read in flight, once done; never, with none in flight.
async fn wait<T>(read: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match read {
        Some(read) => read.await,
        None => std::future::pending().await,
    }
}

/// Publishes this node's batches in order, each waiting at most the bus's
/// own bound (`nats_bus.rs`); a batch the bus refuses is read back by the
/// other nodes.
async fn publish_all(bus: NatsBus, mut queue: mpsc::Receiver<Bytes>) {
    while let Some(batch) = queue.recv().await {
        if let Err(error) = bus.publish(batch).await {
            tracing::debug!(%error, "a batch was not published");
        }
    }
    if let Err(error) = bus.flush().await {
        tracing::debug!(%error, "the bus was not flushed on the way out");
    }
}
