//! What storage and fan-out share, and nothing else: where a request came
//! from, what a commit changed, and where in the stream of commits it sits.
//!
//! Storage ([`crate::store`]) produces these types and hands them to a
//! [`CommitSink`] it does not know by type; fan-out ([`crate::fanout`])
//! consumes them. Neither imports the other: this module is the seam, and
//! the place a bus between nodes will carry [`Batch`]es across.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};
use switchboard_protocol::{Message, Name, ReleaseReason, RequestId, Role};

/// Identifies one connection for the life of the server process.
pub type ConnId = u64;

/// A map keyed by connection, as the router keeps its peers.
///
/// Connection ids are counted by the server, never chosen by a client, so
/// they need none of the defence SipHash gives against keys an attacker
/// picks: one multiplication spreads them over the table. The router looks
/// a connection up for every frame it delivers, and SipHash was 1.4% of the
/// server's instructions per message (callgrind, `scripts/instructions.sh`).
pub type ConnMap<V> = HashMap<ConnId, V, BuildHasherDefault<ConnIdHasher>>;

/// The hasher of [`ConnMap`]: Fibonacci hashing of the id.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnIdHasher(u64);

impl Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, id: u64) {
        // 2^64 / φ: consecutive ids land far apart, in the high bits too.
        self.0 = (self.0 ^ id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
}

/// Which node a request reached. One node today: every origin is
/// [`NodeId::LOCAL`]. In a cluster, answers go back to the node that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The node in a single-node server.
    pub const LOCAL: NodeId = NodeId(0);
}

/// The node, connection and request a reply goes back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub node: NodeId,
    pub conn: ConnId,
    pub request: Option<RequestId>,
}

/// A commit's position in the stream of commits that carry events.
///
/// The contract every backend keeps: each commit with events has a `Seq`
/// above every earlier one, and a consistent read reports the `Seq` of the
/// newest commit it sees. That is what lets a `subscribe` read its backlog
/// on any reader and join the live stream right after it: live events of
/// batches at or below the read's `Seq` are already in the backlog
/// (docs/architecture.md, "backlog meets live"). Positions need not be
/// consecutive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

/// What a commit changed, for everyone concerned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A message is stored.
    Sent {
        origin: Origin,
        message: Message,
        /// The agent that took the conversation with this message.
        taken_by: Option<Name>,
    },
    /// A conversation let go: by its agent (`origin`, who is answered), or
    /// because its agent was removed (`None`: everyone is told, nobody
    /// answered).
    Released {
        origin: Option<Origin>,
        user: Name,
        agent: Name,
        /// Who released it, when not the holder (a supervisor).
        by: Option<Name>,
        /// Why the server let go on its own (its holder offline too long);
        /// `None` for a request's or a removed agent's release.
        reason: Option<ReleaseReason>,
    },
    /// Who holds a conversation changed without a message (version 2): a
    /// `claim` (`by` none) or a `transfer` (`by` the giver). `origin` is
    /// answered with the reply, everyone else hears the event.
    Assigned {
        origin: Option<Origin>,
        user: Name,
        agent: Name,
        by: Option<Name>,
    },
    /// A conversation is done (version 2, `resolve`): nobody holds it and
    /// nothing of it waits. `agent` is who resolved it.
    Resolved {
        origin: Option<Origin>,
        user: Name,
        agent: Name,
    },
    /// A cluster node's connection began counting for presence (its first
    /// subscription) or stopped (it closed, or its node's lease ran out
    /// and another node swept it). Only a cluster writes these: every node
    /// counts every node's connections (`fanout/members.rs`).
    Member { member: Member, open: bool },
}

impl Event {
    /// The request this event answers, if one did: its requester gets the
    /// reply, and, had the commit failed, `internal` instead.
    pub fn requester(&self) -> Option<&Origin> {
        match self {
            Event::Sent { origin, .. } => Some(origin),
            Event::Released { origin, .. }
            | Event::Assigned { origin, .. }
            | Event::Resolved { origin, .. } => origin.as_ref(),
            Event::Member { .. } => None,
        }
    }
}

/// A subscribed connection of a cluster node, as the other nodes count it
/// for presence and `agents_online`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    pub node: NodeId,
    pub conn: ConnId,
    pub role: Role,
    pub name: Name,
}

/// One commit's events, in commit order, at its position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub seq: Seq,
    pub events: Vec<Event>,
}

/// Why storage did not do what a request asked: a domain answer, mapped to
/// a protocol error code in one place (`crate::error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownUser(Name),
    /// The agent was removed or its token rotated since it signed in.
    Revoked,
    AssignedToOther {
        user: Name,
        agent: Name,
    },
    NotAssigned {
        user: Name,
    },
    /// A `transfer` to a name that is no provisioned agent.
    UnknownAgent(Name),
    /// Storage failed; nothing of the request was kept (the cause is logged).
    NotDone,
}

/// What only the requester hears. It never leaves the node that asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Refused {
        origin: Origin,
        refusal: Refusal,
    },
    /// A key seen before: the message it stored the first time, for the
    /// sender only (it was delivered to everyone then).
    Replayed {
        origin: Origin,
        message: Message,
    },
    /// A `claim` of a conversation the agent holds already, or a
    /// `transfer` to its holder: the `assigned` reply, and no event.
    AlreadyAssigned {
        origin: Origin,
        user: Name,
        agent: Name,
        /// The transferring agent: a transfer always carries it.
        by: Option<Name>,
    },
    /// A `resolve` with nothing to resolve (unheld, nothing waiting): the
    /// `resolved` reply, and no event.
    NothingToResolve {
        origin: Origin,
        user: Name,
        agent: Name,
    },
}

/// What one commit (or one failed group) hands on, in request order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Commit {
    /// `None` when the commit changed nothing anyone else hears of.
    pub batch: Option<Batch>,
    /// Each answer with how many of the batch's events come before it: a
    /// connection's replies keep its request order whichever list they are in.
    pub answers: Vec<(usize, Answer)>,
    /// The batch as a shared database's feed holds it, for the bus to
    /// carry to the other nodes; `None` on SQLite (one node).
    pub feed: Option<FeedEntry>,
}

/// A batch as written to a shared database's feed in its own transaction
/// (`sb_feed`) and published on the bus: linked to the position before it,
/// encoded once (`crate::feed_wire`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub after: Seq,
    pub encoded: bytes::Bytes,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.batch.is_none() && self.answers.is_empty()
    }
}

/// A subscriber's backlog, read from one snapshot, and where that snapshot
/// sits in the stream of commits: fan-out delivers live events of later
/// batches only (`as_of`), so backlog and live neither overlap nor leave a
/// gap. Storage reads it; fan-out writes it out.
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog {
    /// The first messages, oldest first; the rest follow as [`Backlog::rest`].
    pub messages: Vec<Message>,
    /// The ids of the messages after [`Backlog::messages`], oldest first,
    /// fixed by the snapshot: a user's long backlog is read whole only as
    /// ids, and its messages a chunk at a time as the client takes them (an
    /// agent's comes whole and leaves this empty).
    pub rest: Vec<u64>,
    /// A `since` resume stopped at the resume cap (docs/protocol.md, open
    /// point 5).
    pub truncated: bool,
    /// Held conversations the subscriber may see: (user, agent).
    pub held: Vec<(Name, Name)>,
    pub as_of: Seq,
}

impl Backlog {
    /// How many messages the backlog holds, read or still to read.
    pub fn count(&self) -> usize {
        self.messages.len() + self.rest.len()
    }
}

/// Where a writer hands each commit, after it is durable and in commit
/// order. Called on the writer's own thread: it may block, which slows the
/// writer down (back-pressure), and must never lose a commit.
pub trait CommitSink: Send + 'static {
    fn committed(&self, commit: Commit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_connection_ids_hash_apart() {
        let hash = |id: u64| {
            let mut hasher = ConnIdHasher::default();
            hasher.write_u64(id);
            hasher.finish()
        };
        let top_bits: std::collections::HashSet<u64> = (1..=64).map(|id| hash(id) >> 57).collect();
        assert!(top_bits.len() > 32, "{top_bits:?}");
        let mut map = ConnMap::default();
        map.insert(7, "seven");
        assert_eq!(map.get(&7), Some(&"seven"));
    }
}
