//! [`Reads`]: what the read rules ([`super::read`]) ask of a backend, all
//! from one consistent snapshot.

use switchboard_protocol::{Message, Name, Role};

use super::{AgentRow, UserRow};
use crate::event::Seq;

/// Whether a read of one conversation holds the agents' private notes
/// (protocol version 2). Agents read a conversation with its notes in
/// place; **the user never sees a note**: not in a `history` page, not in
/// the backlog nor its count, not in a `since` resume (live delivery keeps
/// the same promise in `fanout/deliver.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notes {
    Shown,
    Hidden,
}

impl Notes {
    /// What `role` may read.
    pub fn seen_by(role: Role) -> Self {
        match role {
            Role::Agent => Notes::Shown,
            Role::User => Notes::Hidden,
        }
    }
}

/// How much a `since` resume returns at most: a number of messages, and a
/// total of body bytes. Without the second, 10,000 messages of 4,096
/// four-byte characters made a 160 MB reply, read on the writer thread while
/// every other client's sends waited, and held in memory until sent.
#[derive(Debug, Clone, Copy)]
pub struct ResumeCap {
    pub messages: u32,
    pub body_bytes: usize,
}

/// How much of a long reply (a `history` page, a user's backlog) is read
/// and held at once: a number of messages, and a total of body bytes (the
/// chunk stops after the message that reaches it). The reply's messages are
/// planned first, as ids, and read a chunk at a time as the client takes
/// them.
#[derive(Debug, Clone, Copy)]
pub struct ReplyChunk {
    pub messages: usize,
    pub body_bytes: usize,
}

/// Reads for answering, never for deciding: nothing here locks, and a
/// reader never waits for the writer nor holds it up.
///
/// Concurrency contract: every read a rule makes for one request sees the
/// same commit (SQLite: one WAL read transaction; PostgreSQL: `REPEATABLE
/// READ`), and [`position`](Reads::position) is the `Seq` of the newest
/// commit that snapshot sees, the same `Seq` the writer gave that commit's
/// batch. That is how a backlog meets the live stream without a gap or a
/// repeat. It relies on the writer's order (see [`super::Tables`]): ids
/// rise in commit order, so "everything after id N" read at position P is
/// everything committed up to P.
pub(in crate::store) trait Reads {
    type Error;

    /// A user, with the holder of its conversation; as
    /// [`Tables::find_user`](super::Tables::find_user), **a removed agent
    /// holds nothing**.
    fn find_user(&mut self, name: &Name) -> Result<Option<UserRow>, Self::Error>;
    /// An agent; `token_hash` is `None` once it was removed.
    fn find_agent(&mut self, name: &Name) -> Result<Option<AgentRow>, Self::Error>;
    /// The ids of the `limit` latest messages of one conversation older
    /// than `before` (any id, of this conversation or not), oldest first.
    /// With `Notes::Hidden`, notes are neither listed nor counted: a page
    /// holds `limit` of the user's messages and agents' answers.
    fn conversation_ids(
        &mut self,
        user_id: i64,
        before: Option<u64>,
        limit: u32,
        notes: Notes,
    ) -> Result<Vec<u64>, Self::Error>;
    /// The ids of one conversation's messages after `since`, oldest first:
    /// the newest that fit `cap`, and whether some were left out; notes,
    /// when hidden, neither listed nor counted against `cap`.
    fn conversation_ids_since(
        &mut self,
        user_id: i64,
        since: u64,
        cap: ResumeCap,
        notes: Notes,
    ) -> Result<(Vec<u64>, bool), Self::Error>;
    /// Everyone's messages after `since`, notes included (agents only read
    /// this), oldest first: the newest that fit `cap`, and whether some
    /// were left out.
    fn messages_since(
        &mut self,
        since: u64,
        cap: ResumeCap,
    ) -> Result<(Vec<Message>, bool), Self::Error>;
    /// The messages `ids` name, in that order, stopping after the first
    /// whose bodies reach `body_bytes` in all (at least one when any is
    /// named). Messages never change once stored: read in a later snapshot
    /// than the ids, they are the same.
    fn messages_by_id(
        &mut self,
        ids: &[u64],
        body_bytes: usize,
    ) -> Result<Vec<Message>, Self::Error>;
    /// User messages still waiting for an answer: most urgent first, then
    /// oldest; at most `limit`.
    fn waiting_queue(&mut self, limit: u32) -> Result<Vec<Message>, Self::Error>;
    /// Every held conversation, (user, agent), by user name. **A removed
    /// agent holds nothing**: its conversations are not listed, even
    /// before the server releases them.
    fn assignments(&mut self) -> Result<Vec<(Name, Name)>, Self::Error>;
    /// Where this snapshot sits in the stream of commits (see above).
    fn position(&mut self) -> Result<Seq, Self::Error>;
}
