//! The seam between the rules and a backend: [`Tables`], what a write
//! request reads and writes inside the writer's transaction, and the rows
//! they pass.
//!
//! The contract is more than the signatures: each method's docs say which
//! rule the backend keeps (a removed agent holds nothing) and what it must
//! lock or order once several writers share a database (PostgreSQL). The
//! SQLite backend keeps the concurrency half for free: one writer thread,
//! one `BEGIN IMMEDIATE` transaction at a time. The contract tests
//! (`store::contract`) check the rules half against every backend.

use crate::event::{ConnId, Member, NodeId};
use switchboard_protocol::{Body, Message, Name, Priority, Role, Timestamp};

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub token_hash: Vec<u8>,
    /// The agent holding the conversation: its row id and name. Never a
    /// removed agent (see [`Tables::find_user`]).
    pub assigned: Option<(i64, Name)>,
}

/// An agent as stored. `token_hash` is `None` once the agent is removed.
#[derive(Debug, Clone)]
pub struct AgentRow {
    pub id: i64,
    pub name: Name,
    pub token_hash: Option<Vec<u8>>,
    /// May release, resolve and transfer any conversation (protocol
    /// version 2).
    pub supervisor: bool,
}

/// A message to store, as the rules decided it.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub ts: Timestamp,
    /// The conversation: its user's row id.
    pub user_id: i64,
    /// Who wrote it; `None`: the user.
    pub agent_id: Option<i64>,
    pub body: &'a Body,
    pub priority: Priority,
    /// An agent's private note (protocol version 2): readers show it to
    /// agents only ([`Notes`](super::Notes)).
    pub note: bool,
}

/// A release left due by an agent removed and added again before a server
/// announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDue {
    pub user_id: i64,
    pub user: Name,
    pub agent: Name,
    /// The user's row names a holder now: taken since.
    pub taken: bool,
}

/// The reads and writes the rules make, all inside one transaction.
///
/// Concurrency contract, for a backend with more than one writer:
/// - the reads here are *for deciding*: [`find_user`](Tables::find_user)
///   must lock the user's row until commit (PostgreSQL: `FOR UPDATE`), so
///   that two agents answering one user are decided one after the other
///   (`assignment::decide`), and [`user_id`](Tables::user_id) followed by
///   [`insert_user`](Tables::insert_user) must not let two registrations of
///   one name both succeed (the second is `Registration::Taken`);
/// - ids and time stamps strictly increase in commit order: a message
///   committed later has a larger id and a later `ts` than every message
///   committed before it, so `since` resumes and the position a snapshot
///   reports (`Reads::position`) miss nothing. SQLite gets this from its
///   rowid and the writer's `Clock` on one thread; several writers need a
///   sequencer taken inside the transaction.
pub(in crate::store) trait Tables {
    type Error;

    /// A user's row id, when nothing else of the row is needed.
    fn user_id(&mut self, name: &Name) -> Result<Option<i64>, Self::Error>;
    /// A user, with who holds the conversation.
    ///
    /// **A removed agent holds nothing**: a holder whose token was removed
    /// is reported as no holder (`assigned: None`), even while the row
    /// still names it, until the server releases it
    /// (`release_removed_agents`). SQLite keeps this in `FIND_USER`.
    fn find_user(&mut self, name: &Name) -> Result<Option<UserRow>, Self::Error>;
    fn find_agent(&mut self, name: &Name) -> Result<Option<AgentRow>, Self::Error>;
    /// Every user and agent (removed ones too) whose name equals `name`
    /// ignoring ASCII case, as stored: a new name must match none. Like
    /// [`user_id`](Tables::user_id) before an insert, it must not let two
    /// registrations of one name (in any case) both succeed.
    fn names_like(&mut self, name: &Name) -> Result<Vec<(Role, Name)>, Self::Error>;
    fn insert_user(
        &mut self,
        name: &Name,
        token_hash: &[u8],
        now: Timestamp,
    ) -> Result<(), Self::Error>;
    /// Who holds a user's conversation: `(agent id, since)`, or `None` for
    /// nobody. A new holder's auto-release clock starts no earlier than
    /// `since` (a transfer to an agent offline for long gives it the whole
    /// time). Also drops a release left due for that user (by an agent
    /// removed and added again): everyone hears of this take or release
    /// instead, and the stale one, announced later, would clear questions
    /// asked since.
    fn set_assignment(
        &mut self,
        user_id: i64,
        holder: Option<(i64, Timestamp)>,
    ) -> Result<(), Self::Error>;
    /// Everything the user wrote so far stops waiting; how many messages
    /// did (`resolve` answers without an event when none did and nobody
    /// held the conversation).
    fn clear_waiting(&mut self, user_id: i64) -> Result<u64, Self::Error>;
    /// The message a sender's idempotency key already stored, if any. An
    /// agent removed and added again has no keys.
    fn find_key(
        &mut self,
        role: Role,
        sender_id: i64,
        key: &str,
    ) -> Result<Option<u64>, Self::Error>;
    fn insert_key(
        &mut self,
        role: Role,
        sender_id: i64,
        key: &str,
        message_id: u64,
    ) -> Result<(), Self::Error>;
    fn message_by_id(&mut self, id: u64) -> Result<Message, Self::Error>;
    /// Stores a message at the end of its conversation; returns its id,
    /// larger than every id committed before it (see the ordering contract
    /// above).
    fn insert_message(&mut self, message: NewMessage<'_>) -> Result<u64, Self::Error>;
    /// Puts a user's message in the agents' queue: most urgent first, then
    /// oldest ([`Reads::waiting_queue`](super::Reads::waiting_queue)).
    fn add_waiting(
        &mut self,
        message_id: u64,
        user_id: i64,
        priority: Priority,
    ) -> Result<(), Self::Error>;
    /// Conversations whose row still names an agent that was removed (its
    /// token gone), as (user id, user, agent), by user name. Rare: read by
    /// the credential poll's release, not on a message's path.
    fn held_by_removed_agents(&mut self) -> Result<Vec<(i64, Name, Name)>, Self::Error>;
    /// Takes every release left due by an agent removed and added again
    /// off the list, by user name.
    fn take_releases_due(&mut self) -> Result<Vec<ReleaseDue>, Self::Error>;

    /// An agent's subscribed connection began counting for its presence:
    /// its conversations' auto-release clock stops. A cluster has recorded
    /// the connection already ([`open_member`](Tables::open_member), and
    /// leaves the clock alone if it could not); one node (SQLite) keeps
    /// its agents' connections here.
    fn agent_connected(&mut self, member: &Member) -> Result<(), Self::Error>;
    /// One stopped counting (closed, forgotten or swept with its node):
    /// once the agent has no connection left on any node, its clock starts
    /// at `at`.
    fn agent_disconnected(&mut self, member: &Member, at: Timestamp) -> Result<(), Self::Error>;
    /// Held conversations due for auto-release: the holder (an active
    /// agent) has had no subscribed connection since `deadline` or before,
    /// and has held the conversation since then too; as (user id, user,
    /// agent), by user name.
    fn offline_holders(
        &mut self,
        deadline: Timestamp,
    ) -> Result<Vec<(i64, Name, Name)>, Self::Error>;

    // A cluster's connections (`sb_connections`), counted by every node for
    // presence. One node (SQLite) keeps none but its agents' (above): its
    // router knows every connection, and it is never asked.

    /// Records a node's subscribed connection; whether it was recorded
    /// (not if its node has lost its lease).
    fn open_member(&mut self, _member: &Member) -> Result<bool, Self::Error> {
        Ok(false)
    }
    /// Forgets one; whether it was recorded.
    fn close_member(&mut self, _member: &Member) -> Result<bool, Self::Error> {
        Ok(false)
    }
    /// Forgets `node`'s records but those of `live` connections: the
    /// records forgotten.
    fn forget_members(
        &mut self,
        _node: NodeId,
        _live: &[ConnId],
    ) -> Result<Vec<Member>, Self::Error> {
        Ok(Vec::new())
    }
    /// Forgets every node but `sweeper` whose lease ran out, with its
    /// connections: the connections forgotten.
    fn sweep_expired_nodes(&mut self, _sweeper: NodeId) -> Result<Vec<Member>, Self::Error> {
        Ok(Vec::new())
    }
    /// Forgets `node`, stopping cleanly, with its connections: the
    /// connections forgotten.
    fn retire_node(&mut self, _node: NodeId) -> Result<Vec<Member>, Self::Error> {
        Ok(Vec::new())
    }
}
