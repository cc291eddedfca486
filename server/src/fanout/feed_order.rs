//! A cluster's feed, put in order: the rule each node's router needs before
//! it can apply other nodes' commits (issue 16; `cluster_feed.rs` runs it).
//!
//! In a cluster every node hears every node's committed batches on the bus
//! (NATS core), which promises nothing: a batch may come late, early, twice,
//! or never. The router must still apply them in position order with no gap
//! and none twice ("live events arrive in commit order", docs/protocol.md).
//! PostgreSQL is the truth: whatever the bus lost is read back from it by
//! position. This file is the pure half of that: given what arrived, what can
//! be applied now, and which range must be read back.
//!
//! Each batch travels [`Linked`] to the position of the batch committed just
//! before it (`after`), so a node knows from one batch whether it missed any:
//! positions need not be consecutive (`crate::event::Seq`), but the storage
//! that hands them out knows the previous one.

use std::collections::BTreeMap;

use crate::event::Seq;
pub use crate::feed_wire::Linked;

/// Positions to read back from storage: every batch with
/// `after < seq <= upto`, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub after: Seq,
    pub upto: Seq,
}

/// What a batch from the bus allowed.
#[derive(Debug, PartialEq, Eq)]
pub struct Offered<T> {
    /// Batches to apply now, in order: the one offered, if it was next, and
    /// any held ones it joined up with.
    pub ready: Vec<T>,
    /// A range to read back from storage, when a batch came early.
    pub gap: Option<Gap>,
}

/// The feed's order: the position applied last, and batches that came early.
#[derive(Debug)]
pub struct FeedOrder<T> {
    applied: Seq,
    /// Early batches, by the position they follow.
    early: BTreeMap<Seq, Linked<T>>,
    /// How many early batches are kept at most: past it the newest are
    /// dropped, and read back from storage in their turn. Bounds what a
    /// long gap (a node that stops hearing the database) can make a node
    /// hold. A dropped batch leaves no trace here, so the caller must
    /// [`probe`](FeedOrder::probe) storage when the bus is idle: that is
    /// how it learns of batches past the last one it holds.
    early_limit: usize,
}

impl<T> FeedOrder<T> {
    /// A feed that has applied everything up to `applied` (a node's first
    /// snapshot position when it starts).
    pub fn starting_at(applied: Seq, early_limit: usize) -> FeedOrder<T> {
        FeedOrder {
            applied,
            early: BTreeMap::new(),
            early_limit: early_limit.max(1),
        }
    }

    /// The position of the last batch applied.
    pub fn applied(&self) -> Seq {
        self.applied
    }

    /// A batch from the bus, or read back from storage.
    ///
    /// One already applied (a duplicate, or one read back before the bus
    /// delivered it) is dropped. The next one is applied with every held
    /// batch it joins up with. An early one is held, and the range before
    /// it is to be read back.
    pub fn offer(&mut self, batch: Linked<T>) -> Offered<T> {
        if batch.seq <= self.applied {
            return Offered {
                ready: Vec::new(),
                gap: None,
            };
        }
        if batch.after == self.applied {
            let mut ready = vec![self.apply(batch)];
            while let Some(next) = self.early.remove(&self.applied) {
                ready.push(self.apply(next));
            }
            self.drop_stale();
            return Offered {
                ready,
                gap: self.missing(),
            };
        }
        if batch.after > self.applied {
            self.hold(batch);
            return Offered {
                ready: Vec::new(),
                gap: self.missing(),
            };
        }
        // `after < applied < seq`: the batch straddles the position applied,
        // which one sequencer never hands out; there is nothing to apply.
        tracing::warn!(
            after = batch.after.0,
            seq = batch.seq.0,
            applied = self.applied.0,
            "a feed batch straddles the position applied; dropped"
        );
        Offered {
            ready: Vec::new(),
            gap: self.missing(),
        }
    }

    /// Storage says its newest commit is at `newest` (probed when the bus
    /// is idle, and after it reconnects): the range to read back, if this
    /// node is behind it.
    pub fn probe(&self, newest: Seq) -> Option<Gap> {
        self.missing().or_else(|| {
            (newest > self.applied).then_some(Gap {
                after: self.applied,
                upto: newest,
            })
        })
    }

    /// The range before the first held batch, if any is held.
    fn missing(&self) -> Option<Gap> {
        self.early.keys().next().map(|&upto| Gap {
            after: self.applied,
            upto,
        })
    }

    fn apply(&mut self, batch: Linked<T>) -> T {
        self.applied = batch.seq;
        batch.item
    }

    /// Storage no longer holds the batches up to `to` (the feed table
    /// keeps them for a while, then prunes them): this node moves on past
    /// them, and applies whatever held batch now follows.
    pub fn skip_to(&mut self, to: Seq) -> Offered<T> {
        let mut ready = Vec::new();
        if to > self.applied {
            self.applied = to;
            self.drop_stale();
            while let Some(next) = self.early.remove(&self.applied) {
                ready.push(self.apply(next));
            }
        }
        Offered {
            ready,
            gap: self.missing(),
        }
    }

    fn hold(&mut self, batch: Linked<T>) {
        self.early.insert(batch.after, batch);
        while self.early.len() > self.early_limit {
            self.early.pop_last();
        }
    }

    /// Held batches a read-back has overtaken.
    fn drop_stale(&mut self) {
        let applied = self.applied;
        self.early.retain(|_, batch| batch.seq > applied);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn linked(after: u64, seq: u64) -> Linked<u64> {
        Linked {
            after: Seq(after),
            seq: Seq(seq),
            item: seq,
        }
    }

    #[test]
    fn the_next_batch_is_applied_and_a_duplicate_dropped() {
        let mut feed = FeedOrder::starting_at(Seq(3), 8);
        let offered = feed.offer(linked(3, 5));
        assert_eq!(offered.ready, [5]);
        assert_eq!(offered.gap, None);
        assert_eq!(feed.offer(linked(3, 5)).ready, Vec::<u64>::new());
        assert_eq!(feed.applied(), Seq(5));
    }

    #[test]
    fn an_early_batch_waits_for_the_gap_to_be_read_back() {
        let mut feed = FeedOrder::starting_at(Seq(0), 8);
        let offered = feed.offer(linked(2, 3));
        assert!(offered.ready.is_empty());
        assert_eq!(
            offered.gap,
            Some(Gap {
                after: Seq(0),
                upto: Seq(2)
            })
        );
        assert_eq!(feed.offer(linked(1, 2)).ready, Vec::<u64>::new());
        let offered = feed.offer(linked(0, 1));
        assert_eq!(offered.ready, [1, 2, 3]);
        assert_eq!(offered.gap, None);
    }

    #[test]
    fn a_probe_ahead_of_the_feed_names_the_range_to_read() {
        let feed: FeedOrder<u64> = FeedOrder::starting_at(Seq(4), 8);
        assert_eq!(feed.probe(Seq(4)), None);
        assert_eq!(
            feed.probe(Seq(9)),
            Some(Gap {
                after: Seq(4),
                upto: Seq(9)
            })
        );
    }

    #[test]
    fn held_batches_are_bounded_and_the_dropped_ones_read_back() {
        let mut feed = FeedOrder::starting_at(Seq(0), 2);
        for seq in 2..=5 {
            feed.offer(linked(seq - 1, seq));
        }
        assert_eq!(feed.offer(linked(0, 1)).ready, [1, 2, 3]);
        assert_eq!(
            feed.probe(Seq(5)),
            Some(Gap {
                after: Seq(3),
                upto: Seq(5)
            })
        );
    }

    /// The truth: batches at positions with holes between them, as a
    /// sequencer hands them out.
    fn chain(steps: &[u8]) -> Vec<Linked<u64>> {
        let mut after = 0;
        steps
            .iter()
            .map(|&step| {
                let seq = after + u64::from(step) + 1;
                let batch = linked(after, seq);
                after = seq;
                batch
            })
            .collect()
    }

    #[test]
    fn skipping_past_pruned_batches_applies_what_follows() {
        let mut feed = FeedOrder::starting_at(Seq(1), 8);
        assert_eq!(
            feed.offer(linked(6, 8)).gap,
            Some(Gap {
                after: Seq(1),
                upto: Seq(6)
            })
        );
        let offered = feed.skip_to(Seq(6));
        assert_eq!(offered.ready, [8]);
        assert_eq!(offered.gap, None);
        assert_eq!(feed.applied(), Seq(8));
        assert_eq!(feed.skip_to(Seq(3)).ready, Vec::<u64>::new(), "never back");
    }

    proptest! {
        /// Whatever the bus does (reorders, repeats, loses), a node that
        /// reads back the gaps it is told of (or some of them: it may put
        /// one off) and probes storage while idle, applies every batch
        /// once, in order.
        #[test]
        fn any_delivery_order_applies_every_batch_once_in_order(
            steps in prop::collection::vec(0u8..3, 1..40),
            deliveries in prop::collection::vec((0usize..40, any::<bool>()), 0..80),
            limit in 1usize..6,
        ) {
            let truth = chain(&steps);
            let read_back = |gap: Gap| -> Vec<Linked<u64>> {
                truth
                    .iter()
                    .filter(|batch| gap.after < batch.seq && batch.seq <= gap.upto)
                    .cloned()
                    .collect()
            };
            let mut feed = FeedOrder::starting_at(Seq(0), limit);
            let mut applied = Vec::new();
            let mut take = |feed: &mut FeedOrder<u64>, offered: Offered<u64>| {
                applied.extend(offered.ready);
                let mut gap = offered.gap;
                while let Some(range) = gap.take() {
                    for batch in read_back(range) {
                        let more = feed.offer(batch);
                        applied.extend(more.ready);
                        gap = more.gap;
                    }
                }
            };
            for (index, reads_back) in deliveries {
                let Some(batch) = truth.get(index % truth.len()).cloned() else {
                    continue;
                };
                let mut offered = feed.offer(batch);
                if !reads_back {
                    offered.gap = None; // the node put the read-back off
                }
                take(&mut feed, offered);
            }
            let newest = truth.last().map_or(Seq(0), |batch| batch.seq);
            // The node probes while idle until it has caught up.
            for _ in 0..=truth.len() {
                let gap = feed.probe(newest);
                take(&mut feed, Offered { ready: Vec::new(), gap });
            }
            let expected: Vec<u64> = truth.iter().map(|batch| batch.item).collect();
            prop_assert_eq!(applied, expected);
        }
    }
}
