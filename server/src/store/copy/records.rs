//! The rows `switchboard copy` carries from SQLite to PostgreSQL, as plain
//! values: what both layouts share, column for column (see `copy`'s module
//! docs for what is left behind and why). `sqlite/export.rs` reads them,
//! `postgres/import.rs` writes them; neither sees the other's types.
//!
//! Nothing is parsed or checked here: a copy moves the stored bytes as
//! they are, names from before schema 8 that differ only in case included,
//! and PostgreSQL's constraints refuse what its layout cannot hold.

use std::fmt;

/// One kind of row, in the order they are copied: each after those its
/// foreign keys name (an agent before the users it holds, a user before
/// its messages, a message before its place in the queue and its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Agents,
    Users,
    Messages,
    Waiting,
    Keys,
    ReleasesDue,
}

impl Kind {
    /// Every kind, in copy order.
    pub const ALL: [Kind; 6] = [
        Kind::Agents,
        Kind::Users,
        Kind::Messages,
        Kind::Waiting,
        Kind::Keys,
        Kind::ReleasesDue,
    ];

    /// Where this kind sits in [`Kind::ALL`] (and in per-kind counts).
    pub(in crate::store) fn index(self) -> usize {
        self as usize
    }
}

/// What an operator reads in the progress lines and the summary.
impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Agents => "agents",
            Kind::Users => "users",
            Kind::Messages => "messages",
            Kind::Waiting => "waiting messages",
            Kind::Keys => "idempotency keys",
            Kind::ReleasesDue => "releases due",
        })
    }
}

/// A row of one [`Kind`].
pub(in crate::store) trait Record: Sized {
    const KIND: Kind;

    /// Roughly how many bytes the row takes in a batch: batches are cut by
    /// size as well as by count, so long bodies do not fill memory.
    fn size_bytes(&self) -> usize {
        64
    }
}

/// An agent; `token_hash` is `None` once it was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct AgentRecord {
    pub id: i64,
    pub name: String,
    pub token_hash: Option<Vec<u8>>,
    pub created_us: i64,
    pub supervisor: bool,
}

/// A user with its token hash and who holds its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct UserRecord {
    pub id: i64,
    pub name: String,
    pub token_hash: Vec<u8>,
    pub created_us: i64,
    pub assigned_agent_id: Option<i64>,
}

/// A message with its id and time stamp; `agent_id` is `None` when the
/// user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct MessageRecord {
    pub id: i64,
    pub ts_us: i64,
    pub user_id: i64,
    pub agent_id: Option<i64>,
    pub body: String,
    pub priority: i64,
    /// An agent's private note (SQLite schema 10, PostgreSQL 4).
    pub note: bool,
}

/// A user message no agent has answered, with the urgency it waits at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct WaitingRecord {
    pub message_id: i64,
    pub user_id: i64,
    pub urgency: i64,
}

/// An idempotency key: the sender (role 0 user, 1 agent, and id), the key,
/// and the message it stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct KeyRecord {
    pub sender_role: i64,
    pub sender_id: i64,
    pub key: String,
    pub message_id: i64,
}

/// A conversation a removed agent held when it was added again, whose
/// `released` a server has still to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct ReleaseDueRecord {
    pub user_id: i64,
    pub agent_id: i64,
}

impl Record for AgentRecord {
    const KIND: Kind = Kind::Agents;
}

impl Record for UserRecord {
    const KIND: Kind = Kind::Users;
}

impl Record for MessageRecord {
    const KIND: Kind = Kind::Messages;

    fn size_bytes(&self) -> usize {
        64 + self.body.len()
    }
}

impl Record for WaitingRecord {
    const KIND: Kind = Kind::Waiting;
}

impl Record for KeyRecord {
    const KIND: Kind = Kind::Keys;

    fn size_bytes(&self) -> usize {
        64 + self.key.len()
    }
}

impl Record for ReleaseDueRecord {
    const KIND: Kind = Kind::ReleasesDue;
}

/// The sequencer's values the copy carries over: the newest message id,
/// the releases ever committed (their sum is a snapshot's position, `Seq`,
/// on either backend: `queries::position`, `clock::position`), and the
/// newest time stamp, which new ones must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(in crate::store) struct Sequencer {
    /// 0 with no message.
    pub last_message_id: i64,
    pub releases: i64,
    /// 0 with no message.
    pub last_ts_us: i64,
}
