//! The run's correctness checks, as pure functions of what was seen:
//!
//! - every acked message reached every agent exactly once;
//! - in commit order: ids strictly increase along each agent's deliveries
//!   and along each user's acks (its replies come in request order), and no
//!   id was handed out twice.
//!
//! The third, that every acked message is stored, reads the server back
//! after the run: [`crate::history`].

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;

use serde::Serialize;

use crate::fast_hash::FastSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

/// One check: how many things it looked at and what was wrong, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub status: Status,
    pub checked: u64,
    pub problems: BTreeMap<&'static str, u64>,
}

impl Check {
    pub fn new(checked: u64, problems: &[(&'static str, u64)]) -> Check {
        let problems: BTreeMap<_, _> = problems
            .iter()
            .filter(|(_, count)| *count > 0)
            .copied()
            .collect();
        Check {
            status: if problems.is_empty() {
                Status::Passed
            } else {
                Status::Failed
            },
            checked,
            problems,
        }
    }

    pub fn skipped() -> Check {
        Check {
            status: Status::Skipped,
            checked: 0,
            problems: BTreeMap::new(),
        }
    }

    pub fn failed(&self) -> bool {
        self.status == Status::Failed
    }
}

/// Every acked id delivered to every agent exactly once, and nothing else of
/// this run delivered.
pub fn delivered_exactly_once<S: BuildHasher>(acked: &HashSet<u64, S>, agents: &[&[u64]]) -> Check {
    if agents.is_empty() {
        return Check::skipped();
    }
    let (mut missing, mut duplicates, mut unexpected) = (0, 0, 0);
    for delivered in agents {
        let mut seen = FastSet::with_capacity_and_hasher(delivered.len(), Default::default());
        for id in *delivered {
            if !seen.insert(*id) {
                duplicates += 1;
            } else if !acked.contains(id) {
                unexpected += 1;
            }
        }
        missing += acked.iter().filter(|id| !seen.contains(id)).count() as u64;
    }
    Check::new(
        acked.len() as u64 * agents.len() as u64,
        &[
            ("missing", missing),
            ("duplicate", duplicates),
            ("delivered_but_not_acked", unexpected),
        ],
    )
}

/// Ids strictly increase along every agent's stream and every user's acks,
/// and no id was acked twice.
pub fn commit_order(agents: &[&[u64]], users: &[Vec<u64>]) -> Check {
    let descents = |ids: &[u64]| ids.windows(2).filter(|w| w[1] <= w[0]).count() as u64;
    let mut all = FastSet::default();
    let duplicate_ids = users
        .iter()
        .flatten()
        .filter(|id| !all.insert(**id))
        .count() as u64;
    let checked = agents.iter().map(|a| a.len() as u64).sum::<u64>() + all.len() as u64;
    Check::new(
        checked,
        &[
            (
                "deliveries_out_of_order",
                agents.iter().map(|a| descents(a)).sum(),
            ),
            ("acks_out_of_order", users.iter().map(|u| descents(u)).sum()),
            ("id_acked_twice", duplicate_ids),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_must_get_every_acked_message_once() {
        let acked: HashSet<u64> = [1, 2, 3].into();
        let good = delivered_exactly_once(&acked, &[&[1, 2, 3], &[1, 2, 3]]);
        assert_eq!(good.status, Status::Passed);
        assert_eq!(good.checked, 6);
        let bad = delivered_exactly_once(&acked, &[&[1, 2, 2, 3], &[1, 3, 9]]);
        assert_eq!(bad.status, Status::Failed);
        assert_eq!(
            bad.problems,
            [
                ("missing", 1),
                ("duplicate", 1),
                ("delivered_but_not_acked", 1)
            ]
            .into()
        );
        assert_eq!(delivered_exactly_once(&acked, &[]).status, Status::Skipped);
    }

    #[test]
    fn ids_must_increase_along_each_stream() {
        let users = vec![vec![1, 4], vec![2, 3]];
        assert_eq!(
            commit_order(&[&[1, 2, 3, 4]], &users).status,
            Status::Passed
        );
        let bad = commit_order(&[&[1, 3, 2, 4]], &[vec![1, 4], vec![4, 3]]);
        assert_eq!(
            bad.problems,
            [
                ("deliveries_out_of_order", 1),
                ("acks_out_of_order", 1),
                ("id_acked_twice", 1)
            ]
            .into()
        );
    }
}
