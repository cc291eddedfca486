//! The nodes of one help desk (`--server a:7878,b:7878,c:7878`) and which
//! one the client is on. Every node serves the same help desk, so the
//! client may sign in on any of them with the same identity; when it loses
//! one it tries the others in a fixed cycle.
//!
//! The order is a rule of its own, kept pure here: the first sign-in tries
//! the list from one node on, wrapping around (the caller picks it at
//! random unless told to keep the listed order, so that customers given the
//! same list spread over the nodes instead of all signing in on the first);
//! after losing node `i` a round tries `i + 1`,
//! `i + 2`, … and the lost node last, wrapping around, so that clients of a
//! dead node move to the next one rather than hammering the one that just
//! went away, and a node that only dropped the connection is still tried.
//! The waits between rounds are `retry`'s.

use super::Endpoint;

/// Where the client may connect, in the order given, and where it is.
#[derive(Clone)]
pub struct Nodes {
    endpoints: Vec<Endpoint>,
    current: usize,
    /// Where the first sign-in's round starts.
    first: usize,
}

impl Nodes {
    /// `None` if `endpoints` is empty: a client needs somewhere to go.
    pub fn new(endpoints: Vec<Endpoint>) -> Option<Self> {
        (!endpoints.is_empty()).then_some(Self {
            endpoints,
            current: 0,
            first: 0,
        })
    }

    /// The first sign-in starts at the node at `index` (modulo the number
    /// of nodes) instead of the first listed.
    pub fn starting_at(mut self, index: usize) -> Self {
        self.first = index % self.endpoints.len();
        self
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Never: [`Nodes::new`] refuses an empty list. (Clippy asks for it.)
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The node at `index` (taken modulo the number of nodes).
    pub fn endpoint(&self, index: usize) -> &Endpoint {
        &self.endpoints[index % self.endpoints.len()]
    }

    /// The node the client is on (or was on, while it reconnects).
    pub fn current(&self) -> &Endpoint {
        self.endpoint(self.current)
    }

    /// The client is now on the node at `index`.
    pub fn settle_on(&mut self, index: usize) {
        self.current = index % self.endpoints.len();
    }

    /// The first sign-in's round: every node, from the starting one
    /// ([`Nodes::starting_at`]; the first listed unless told otherwise).
    pub fn first_round(&self) -> impl Iterator<Item = usize> + use<> {
        round(self.first, self.len())
    }

    /// A round after losing the current node: the next ones, cycling, and
    /// the lost one last.
    pub fn round_after_current(&self) -> impl Iterator<Item = usize> + use<> {
        round(self.current + 1, self.len())
    }
}

/// `len` indices starting at `start`, wrapping around.
fn round(start: usize, len: usize) -> impl Iterator<Item = usize> {
    (0..len).map(move |step| (start + step) % len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(count: usize) -> Nodes {
        let endpoints = (0..count)
            .map(|i| Endpoint::plain(format!("n{i}:7878")))
            .collect();
        Nodes::new(endpoints).expect("not empty")
    }

    #[test]
    fn the_first_sign_in_tries_every_node_from_the_starting_one() {
        assert_eq!(nodes(3).first_round().collect::<Vec<_>>(), [0, 1, 2]);
        let spread = nodes(3).starting_at(4);
        assert_eq!(spread.first_round().collect::<Vec<_>>(), [1, 2, 0]);
    }

    #[test]
    fn after_a_loss_the_next_nodes_come_first_and_the_lost_one_last() {
        let mut nodes = nodes(3);
        assert_eq!(nodes.round_after_current().collect::<Vec<_>>(), [1, 2, 0]);
        nodes.settle_on(1);
        assert_eq!(nodes.current().addr, "n1:7878");
        assert_eq!(nodes.round_after_current().collect::<Vec<_>>(), [2, 0, 1]);
        nodes.settle_on(2);
        assert_eq!(nodes.round_after_current().collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn one_node_is_tried_again_as_before() {
        assert_eq!(nodes(1).round_after_current().collect::<Vec<_>>(), [0]);
        assert!(Nodes::new(Vec::new()).is_none());
    }
}
