//! The bus: how each commit reaches the routers that apply it.
//!
//! The writer publishes every commit, in commit order, from its own thread
//! (it is the writer's [`CommitSink`]); a router applies the commits of its
//! [`Feed`], in `Seq` order with no gap. One node needs nothing more than a
//! bounded queue between the two: [`LocalBus`]. A cluster's bus (NATS)
//! publishes each batch to every node, sends the answers back to the node
//! that asked, and feeds each router every node's batches in `Seq` order,
//! reading a gap back from storage. The router and the subscribe rule
//! (`subscribe.rs`: a backlog joins the feed at its snapshot's `Seq`) stay
//! as they are.

use tokio::sync::mpsc;

use crate::event::{Commit, CommitSink};

/// Commits published and not yet applied. The writer waits when it is
/// full, which is back-pressure, not loss.
const FEED_QUEUE: usize = 16_384;

/// The commits a router applies, in order.
pub struct Feed(mpsc::Receiver<Commit>);

impl Feed {
    /// A feed and the sender that fills it (a cluster's feed task).
    pub fn channel() -> (mpsc::Sender<Commit>, Feed) {
        let (commits, feed) = mpsc::channel(FEED_QUEUE);
        (commits, Feed(feed))
    }

    /// The next commit; `None` once every publisher is gone.
    pub async fn next(&mut self) -> Option<Commit> {
        self.0.recv().await
    }
}

/// One node's bus: the writer's commits go straight to this node's router.
pub struct LocalBus {
    commits: mpsc::Sender<Commit>,
}

impl LocalBus {
    /// A bus and the feed of every commit published on it from now on
    /// (nothing is committed before a node's router starts, so a single
    /// node's feed needs no earlier position).
    pub fn new() -> (LocalBus, Feed) {
        let (commits, feed) = Feed::channel();
        (LocalBus { commits }, feed)
    }
}

impl CommitSink for LocalBus {
    fn committed(&self, commit: Commit) {
        if self.commits.blocking_send(commit).is_err() {
            tracing::warn!("router stopped; a committed result was not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Batch, Event, Seq};
    use switchboard_protocol::Name;

    fn released_at(seq: u64) -> Commit {
        let name = Name::parse("ana").expect("valid");
        Commit {
            batch: Some(Batch {
                seq: Seq(seq),
                events: vec![Event::Released {
                    origin: None,
                    user: name.clone(),
                    agent: name,
                    by: None,
                    reason: None,
                }],
            }),
            answers: Vec::new(),
            feed: None,
        }
    }

    /// What the writer publishes from its thread reaches the feed whole and
    /// in order; the feed ends once the publisher is gone.
    #[tokio::test]
    async fn the_local_bus_feeds_every_commit_in_order() {
        let (bus, mut feed) = LocalBus::new();
        let publisher = tokio::task::spawn_blocking(move || {
            for seq in 1..=3 {
                bus.committed(released_at(seq));
            }
        });
        let mut seqs = Vec::new();
        while let Some(commit) = feed.next().await {
            seqs.push(commit.batch.expect("a batch").seq.0);
        }
        publisher.await.expect("published");
        assert_eq!(seqs, [1, 2, 3]);
    }
}
