//! Users' row ids, remembered by the writer: a user's send needs only its
//! id, and a user is never deleted nor renamed, so once an id is read it
//! stands. Saves a round trip per send inside the serialised section
//! (why that matters: `held_back.rs`).
//!
//! Only ids read in a transaction that committed are kept: a row inserted
//! in a transaction that rolled back never existed. Bounded: when full it
//! starts again empty, which costs one read per user.

use std::collections::HashMap;

use switchboard_protocol::Name;

/// The most ids remembered.
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub(super) struct KnownUsers {
    ids: HashMap<Name, i64>,
    /// Read by the open transaction; kept if it commits.
    pending: Vec<(Name, i64)>,
}

impl KnownUsers {
    pub(super) fn get(&self, name: &Name) -> Option<i64> {
        self.ids.get(name).copied()
    }

    /// An id read in the open transaction.
    pub(super) fn read(&mut self, name: &Name, id: i64) {
        self.pending.push((name.clone(), id));
    }

    /// The open transaction committed: what it read stands.
    pub(super) fn committed(&mut self) {
        if self.ids.len() + self.pending.len() > CAPACITY {
            self.ids.clear();
        }
        self.ids.extend(self.pending.drain(..));
    }

    /// The open transaction, or a part of it, rolled back.
    pub(super) fn rolled_back(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::parse(text).expect("valid")
    }

    #[test]
    fn only_ids_read_in_a_committed_transaction_are_kept() {
        let mut known = KnownUsers::default();
        known.read(&name("ann"), 1);
        known.rolled_back();
        known.committed();
        assert_eq!(known.get(&name("ann")), None);
        known.read(&name("ann"), 1);
        assert_eq!(known.get(&name("ann")), None, "not before the commit");
        known.committed();
        assert_eq!(known.get(&name("ann")), Some(1));
    }
}
