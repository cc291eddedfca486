//! Where the writer's last commit sits in the stream of commits: the `Seq`
//! it gives each batch, continued from what the backend stored.

use super::backend::Backend;
use crate::event::{Event, Seq};

/// Where the last commit sits: the newest message id plus the releases made
/// (schema 7) and, in a cluster, the connection events committed. Their sum rises with every commit that has events, and a
/// reader computes the same sum from its snapshot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Position {
    last_message_id: u64,
    releases: u64,
}

impl Position {
    pub(super) fn read<B: Backend>(backend: &mut B) -> Result<Self, B::Error> {
        let (last_message_id, releases) = backend.position_parts()?;
        Ok(Self::at(last_message_id, releases))
    }

    /// The position after `last_message_id` and `releases`.
    pub(super) fn at(last_message_id: u64, releases: u64) -> Self {
        Self {
            last_message_id,
            releases,
        }
    }

    /// The position itself: the `Seq` of the last commit with events.
    pub(super) fn seq(&self) -> Seq {
        Seq(self.last_message_id + self.releases)
    }

    /// Moves past a committed batch of `events`.
    pub(super) fn advance<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) -> Seq {
        for event in events {
            match event {
                Event::Sent { message, .. } => {
                    self.last_message_id = self.last_message_id.max(message.id);
                }
                // Schema 7 named the count for releases; every other event
                // (claims, transfers, resolves, a cluster's connections)
                // moves positions the same way.
                Event::Released { .. }
                | Event::Assigned { .. }
                | Event::Resolved { .. }
                | Event::Member { .. } => self.releases += 1,
            }
        }
        self.seq()
    }
}
