//! Long replies read a chunk at a time: a `history` page is planned as the
//! ids of its messages (a few bytes each), and its messages, like the rest
//! of a user's backlog ([`crate::event::Backlog::rest`]), are read
//! [`super::REPLY_CHUNK`] at a time, each chunk one short read on a reader,
//! as the session writes the previous one out. A thousand messages of
//! 16 KB are then never in memory at once: a slow reader holds one chunk.
//!
//! Messages never change once stored, and a plan's ids are fixed when it is
//! made, so the chunks read later hold exactly the messages the plan's
//! snapshot saw: nothing twice, nothing skipped.

use switchboard_protocol::{Message, Name};

use super::reader::ReadJob;
use super::{Notes, Store, StoreError};

impl Store {
    /// The ids of a page of `user`'s conversation, oldest first, with or
    /// without the agents' notes; `None` if there is no such user.
    pub async fn history(
        &self,
        user: Name,
        before: Option<u64>,
        limit: u32,
        notes: Notes,
    ) -> Result<Option<Vec<u64>>, StoreError> {
        self.read(|reply| ReadJob::History {
            user,
            before,
            limit,
            notes,
            reply,
        })
        .await
    }

    /// The messages of the first of `ids`, oldest first: at most one
    /// [`super::REPLY_CHUNK`], and at least one message when `ids` names
    /// any.
    pub async fn chunk(&self, ids: &[u64]) -> Result<Vec<Message>, StoreError> {
        let ids = ids[..ids.len().min(super::REPLY_CHUNK.messages)].to_vec();
        self.read(|reply| ReadJob::Chunk { ids, reply }).await
    }
}
