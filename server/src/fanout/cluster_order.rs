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
//! because another node's later batch came first. Answers of a commit with
//! no batch follow this node's newest batch not yet applied, or go at once.

use std::collections::BTreeMap;

use super::feed_order::{FeedOrder, Gap, Linked, Offered};
use crate::event::{Answer, Batch, Commit, Seq};

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
    /// This node's answers, by the position of the batch they come with.
    answers: BTreeMap<Seq, Vec<(usize, Answer)>>,
    /// The position of this node's newest batch.
    own_newest: Seq,
}

impl ClusterOrder {
    /// A feed that has applied everything up to `applied`.
    pub fn starting_at(applied: Seq) -> ClusterOrder {
        ClusterOrder {
            order: FeedOrder::starting_at(applied, EARLY_LIMIT),
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
                if batch.seq <= self.applied() {
                    // Read back already (another node's later batch came
                    // first): its events are out, its answers follow now.
                    return Step::now(answers);
                }
                self.own_newest = batch.seq;
                if !answers.is_empty() {
                    self.answers.entry(batch.seq).or_default().extend(answers);
                }
                self.offer(Linked {
                    after: entry.after,
                    seq: batch.seq,
                    item: batch,
                })
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
            (None, _) if answers.is_empty() => Step::default(),
            (None, _) if self.own_newest > self.applied() => {
                // After every event of the batch before them.
                let after_all = answers.into_iter().map(|(_, answer)| (usize::MAX, answer));
                self.answers
                    .entry(self.own_newest)
                    .or_default()
                    .extend(after_all);
                Step::default()
            }
            (None, _) => Step::now(answers),
        }
    }

    /// A batch from the bus or read back from the feed table: another
    /// node's, or this node's own.
    pub fn heard(&mut self, batch: Linked<Batch>) -> Step {
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
        let offered = self.order.skip_to(to);
        let mut then = self.ready(offered);
        step.ready.append(&mut then.ready);
        step.gap = then.gap;
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
    use crate::event::{Event, FeedEntry, NodeId, Origin, Refusal};

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
        let mut order = ClusterOrder::starting_at(Seq(4));
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
        let mut order = ClusterOrder::starting_at(Seq(4));
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

    /// Read back before the writer's hand-over reached the feed (another
    /// node's later batch forced the read): the events are delivered once,
    /// from the read-back, with this node's answers joined to them; the
    /// hand-over then brings nothing twice.
    #[test]
    fn own_batch_read_back_first_keeps_its_answers() {
        let mut order = ClusterOrder::starting_at(Seq(4));
        let step = order.heard(linked(5, 6));
        assert_eq!(
            step.gap,
            Some(Gap {
                after: Seq(4),
                upto: Seq(5)
            })
        );
        let step = order.heard(linked(4, 5));
        assert_eq!(shape(&step), [(Some(5), 0), (Some(6), 0)]);
        let step = order.own(own(4, 5, vec![(0, refused(1))]));
        assert_eq!(shape(&step), [(None, 1)], "answers only");
    }

    #[test]
    fn skipping_pruned_batches_delivers_their_answers() {
        let mut order = ClusterOrder::starting_at(Seq(1));
        assert!(order.own(own(3, 4, vec![(0, refused(1))])).ready.is_empty());
        let step = order.skip_to(Seq(4));
        assert_eq!(shape(&step), [(None, 1)]);
        assert_eq!(order.applied(), Seq(4));
    }
}
