//! A cluster node's feed, in order, with its own answers in their place:
//! the pure half of `cluster_feed.rs` (issue 16).
//!
//! A node's router must apply every node's batches in position order
//! ([`FeedOrder`] does that), and this node's answers (refusals, replayed
//! keys, the failures of a group that did not commit) exactly where they
//! fell among its own batch's events: a connection's replies keep its request
//! order. Other nodes' batches carry no answers (answers never leave the
//! node that asked). So this node's answers wait here, keyed by the
//! position of the batch they belong with, and join that batch whichever
//! way it arrives: from this node's writer, or read back from the feed table
//! because another node's later batch came first. A batch of this node's
//! own that is heard or read back before its writer hands it over is held
//! until it does (it does within a moment of its commit), so that its
//! answers go where they fell; if the writer instead reports its group
//! failed (a commit whose outcome was lost), the batch is applied as it is.
//! Answers of a commit with no batch follow this node's newest batch not
//! yet applied, or go at once.

use std::collections::BTreeMap;

use super::feed_order::{FeedOrder, Gap, Linked, Offered};
use crate::event::{Answer, Batch, Commit, NodeId, Seq};

/// The most batches held while a gap before them is read back; past it
/// they are read back too (`FeedOrder`).
const EARLY_LIMIT: usize = 4_096;

/// What the router may apply now, and what to read back from storage.
#[derive(Debug, Default)]
pub struct Step {
    pub ready: Vec<Commit>,
    pub gap: Option<Gap>,
}

/// The order of one node's feed.
pub struct ClusterOrder {
    order: FeedOrder<Batch>,
    /// This node: a batch is its own when an event's origin names it.
    node: NodeId,
    /// This node's batches heard or read back before its writer handed
    /// them over.
    own_early: BTreeMap<Seq, Linked<Batch>>,
    /// This node's answers, by the position of the batch they come with.
    answers: BTreeMap<Seq, Vec<(usize, Answer)>>,
    /// The position of this node's newest batch.
    own_newest: Seq,
}

impl ClusterOrder {
    /// `node`'s feed, which has applied everything up to `applied`.
    pub fn starting_at(applied: Seq, node: NodeId) -> ClusterOrder {
        ClusterOrder {
            order: FeedOrder::starting_at(applied, EARLY_LIMIT),
            node,
            own_early: BTreeMap::new(),
            answers: BTreeMap::new(),
            own_newest: applied,
        }
    }

    /// The position of the last batch applied.
    pub fn applied(&self) -> Seq {
        self.order.applied()
    }

    /// A commit of this node's writer, in commit order.
    pub fn own(&mut self, commit: Commit) -> Step {
        let Commit {
            batch,
            answers,
            feed,
        } = commit;
        match (batch, feed) {
            (Some(batch), Some(entry)) => {
                // Held ones before it were commits whose outcome was lost.
                let mut step = self.release_own_early(batch.seq);
                self.own_early.remove(&batch.seq);
                if batch.seq <= self.applied() {
                    // Applied already (its writer's hand-over came after a
                    // skip): its answers follow now.
                    step.then(Step::now(answers));
                    return step;
                }
                self.own_newest = batch.seq;
                if !answers.is_empty() {
                    self.answers.entry(batch.seq).or_default().extend(answers);
                }
                let offered = self.offer(Linked {
                    after: entry.after,
                    seq: batch.seq,
                    item: batch,
                });
                step.then(offered);
                step
            }
            (Some(batch), None) => {
                // Every batch on a shared database is in its feed; one that
                // is not cannot be placed among the others' batches.
                tracing::error!(
                    seq = batch.seq.0,
                    "a batch without its feed link; its events are not delivered live"
                );
                Step::now(answers)
            }
            (None, _) => {
                // A group that committed nothing anyone hears of, or failed:
                // a batch of this node's held now was a commit whose
                // outcome was lost; it is applied as it is.
                let mut step = self.release_own_early(Seq(u64::MAX));
                if answers.is_empty() {
                    return step;
                }
                if self.own_newest > self.applied() {
                    // After every event of the batch before them.
                    let after_all = answers.into_iter().map(|(_, answer)| (usize::MAX, answer));
                    self.answers
                        .entry(self.own_newest)
                        .or_default()
                        .extend(after_all);
                } else {
                    step.then(Step::now(answers));
                }
                step
            }
        }
    }

    /// Offers this node's held batches below `before`, in order.
    fn release_own_early(&mut self, before: Seq) -> Step {
        let mut step = Step::default();
        while let Some(entry) = self.own_early.first_entry() {
            if *entry.key() >= before {
                break;
            }
            let batch = entry.remove();
            let offered = self.offer(batch);
            step.then(offered);
        }
        step
    }

    /// Whether an event of `batch` answers a connection of this node.
    fn is_own(&self, batch: &Batch) -> bool {
        batch.events.iter().any(|event| {
            event
                .requester()
                .is_some_and(|origin| origin.node == self.node)
        })
    }

    /// A batch from the bus or read back from the feed table: another
    /// node's, or this node's own.
    pub fn heard(&mut self, batch: Linked<Batch>) -> Step {
        if batch.seq > self.own_newest && batch.seq > self.applied() && self.is_own(&batch.item) {
            // Its writer has not handed it over yet: it will, with its
            // answers.
            self.own_early.insert(batch.seq, batch);
            return Step::default();
        }
        self.offer(batch)
    }

    /// The feed table no longer holds the batches up to `to`: move on past
    /// them (their answers, if this node's, go now).
    pub fn skip_to(&mut self, to: Seq) -> Step {
        let mut step = Step::default();
        let skipped: Vec<Seq> = self.answers.range(..=to).map(|(&seq, _)| seq).collect();
        for seq in skipped {
            if let Some(answers) = self.answers.remove(&seq) {
                step.ready.extend(Step::now(answers).ready);
            }
        }
        if to > self.applied() {
            // No events, only the position: the router's applied position
            // moves past the skipped range too (its barrier waits on it).
            step.ready.push(Commit {
                batch: Some(Batch {
                    seq: to,
                    events: Vec::new(),
                }),
                answers: Vec::new(),
                feed: None,
            });
        }
        let offered = self.order.skip_to(to);
        step.then(self.ready(offered));
        step
    }

    fn offer(&mut self, batch: Linked<Batch>) -> Step {
        let offered = self.order.offer(batch);
        self.ready(offered)
    }

    fn ready(&mut self, offered: Offered<Batch>) -> Step {
        let ready = offered
            .ready
            .into_iter()
            .map(|batch| Commit {
                answers: self.answers.remove(&batch.seq).unwrap_or_default(),
                batch: Some(batch),
                feed: None,
            })
            .collect();
        Step {
            ready,
            gap: offered.gap,
        }
    }
}

impl Step {
    /// `next` after this.
    fn then(&mut self, mut next: Step) {
        self.ready.append(&mut next.ready);
        self.gap = next.gap;
    }

    /// Answers to deliver at once.
    fn now(answers: Vec<(usize, Answer)>) -> Step {
        let ready = (!answers.is_empty())
            .then(|| Commit {
                batch: None,
                answers,
                feed: None,
            })
            .into_iter()
            .collect();
        Step { ready, gap: None }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::Name;

    use super::*;
    use crate::event::{Event, FeedEntry, Origin, Refusal};

    fn origin(node: u32, conn: u64) -> Origin {
        Origin {
            node: NodeId(node),
            conn,
            request: None,
        }
    }

    fn released(seq: u64) -> Batch {
        let name = Name::parse("ana").expect("valid");
        Batch {
            seq: Seq(seq),
            events: vec![Event::Released {
                origin: None,
                user: name.clone(),
                agent: name,
                by: None,
                reason: None,
            }],
        }
    }

    fn refused(conn: u64) -> Answer {
        Answer::Refused {
            origin: origin(1, conn),
            refusal: Refusal::NotDone,
        }
    }

    fn own(after: u64, seq: u64, answers: Vec<(usize, Answer)>) -> Commit {
        Commit {
            batch: Some(released(seq)),
            answers,
            feed: Some(FeedEntry {
                after: Seq(after),
                encoded: Default::default(),
            }),
        }
    }

    fn linked(after: u64, seq: u64) -> Linked<Batch> {
        Linked {
            after: Seq(after),
            seq: Seq(seq),
            item: released(seq),
        }
    }

    /// (position or none, answers) of each commit made ready.
    fn shape(step: &Step) -> Vec<(Option<u64>, usize)> {
        step.ready
            .iter()
            .map(|commit| {
                (
                    commit.batch.as_ref().map(|batch| batch.seq.0),
                    commit.answers.len(),
                )
            })
            .collect()
    }

    #[test]
    fn own_commits_in_order_go_straight_through_with_their_answers() {
        let mut order = ClusterOrder::starting_at(Seq(4), NodeId(1));
        let step = order.own(own(4, 5, vec![(0, refused(1))]));
        assert_eq!(shape(&step), [(Some(5), 1)]);
        assert_eq!(
            shape(&order.own(Commit {
                answers: vec![(0, refused(2))],
                ..Commit::default()
            })),
            [(None, 1)]
        );
    }

    /// This node's batch waits for another node's earlier one; answers
    /// with no batch wait behind it, and all come out in order.
    #[test]
    fn own_answers_wait_behind_own_batch_held_for_a_gap() {
        let mut order = ClusterOrder::starting_at(Seq(4), NodeId(1));
        let step = order.own(own(6, 7, vec![(0, refused(1))]));
        assert!(step.ready.is_empty());
        assert_eq!(
            step.gap,
            Some(Gap {
                after: Seq(4),
                upto: Seq(6)
            })
        );
        let later = Commit {
            answers: vec![(0, refused(2))],
            ..Commit::default()
        };
        assert!(order.own(later).ready.is_empty(), "held behind batch 7");
        let step = order.heard(linked(4, 6));
        assert_eq!(shape(&step), [(Some(6), 0), (Some(7), 2)]);
        let answers = &step.ready[1].answers;
        assert_eq!(answers[0].0, 0);
        assert_eq!(answers[1].0, usize::MAX, "after the batch's events");
    }

    /// A batch of this node's own (an event's origin names it).
    fn mine(after: u64, seq: u64) -> Linked<Batch> {
        let name = Name::parse("ana").expect("valid");
        Linked {
            after: Seq(after),
            seq: Seq(seq),
            item: Batch {
                seq: Seq(seq),
                events: vec![Event::Released {
                    origin: Some(origin(1, 3)),
                    user: name.clone(),
                    agent: name,
                    by: None,
                    reason: None,
                }],
            },
        }
    }

    /// Read back before the writer's hand-over reached the feed (another
    /// node's later batch forced the read): this node's batch waits for the
    /// hand-over, and then goes with its answers in their place.
    #[test]
    fn own_batch_read_back_first_waits_for_its_answers() {
        let mut order = ClusterOrder::starting_at(Seq(4), NodeId(1));
        let step = order.heard(linked(5, 6));
        assert_eq!(
            step.gap,
            Some(Gap {
                after: Seq(4),
                upto: Seq(5)
            })
        );
        assert!(
            order.heard(mine(4, 5)).ready.is_empty(),
            "held for its answers"
        );
        let mut handed = own(4, 5, vec![(0, refused(1))]);
        handed.batch = Some(mine(4, 5).item);
        let step = order.own(handed);
        assert_eq!(shape(&step), [(Some(5), 1), (Some(6), 0)]);
    }

    /// A batch of this node's whose group then reports failure (the commit
    /// happened, its outcome was lost): applied as it is, before the
    /// failure's answers.
    #[test]
    fn own_batch_of_a_lost_commit_is_applied_when_its_group_fails() {
        let mut order = ClusterOrder::starting_at(Seq(4), NodeId(1));
        assert!(order.heard(mine(4, 5)).ready.is_empty());
        let failed = Commit {
            answers: vec![(0, refused(1))],
            ..Commit::default()
        };
        assert_eq!(shape(&order.own(failed)), [(Some(5), 0), (None, 1)]);
    }

    #[test]
    fn skipping_pruned_batches_delivers_their_answers() {
        let mut order = ClusterOrder::starting_at(Seq(1), NodeId(1));
        assert!(order.own(own(3, 4, vec![(0, refused(1))])).ready.is_empty());
        let step = order.skip_to(Seq(4));
        assert_eq!(
            shape(&step),
            [(None, 1), (Some(4), 0)],
            "answers, then the position"
        );
        assert_eq!(order.applied(), Seq(4));
    }
}
