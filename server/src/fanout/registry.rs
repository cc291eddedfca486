//! Membership: which connections are signed in, which are subscribed,
//! which users and agents are online, and the outbox of each.
//!
//! The [`Registry`] is the router's state, free of tasks so its rules can be
//! tested directly. Its methods are split by concern over this folder: here
//! connecting and leaving, presence and the agent count, and pushing into an
//! outbox (a full one marks its connection dropped; `Registry::settle`
//! removes it once the command is done, so only that connection is cut
//! off). When presence is announced is `presence.rs`'s rule (a departure
//! after a grace, a flapping user spaced out); this file pushes what it
//! decides. What a commit means for whom is in `deliver.rs`, the hold-back of
//! a subscribe in progress in `subscribe.rs` (what each connection was
//! already sent in `seen.rs`), token staleness in `credentials.rs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_protocol::{Name, Role, ServerFrame};

use super::credentials::AgentTokens;
use super::deliver::encode;
use super::members::RemoteMembers;
use super::outbox::{OutboxSender, Outgoing, PushError};
use super::presence::Presence;
use super::seen::Seen;
use super::subscribe::Held;
use crate::event::{ConnId, ConnMap, NodeId, Origin, Seq};
use crate::identity::Identity;
use crate::metrics::counts::FanoutCounts;

/// One signed-in connection, as the router knows it.
pub(super) struct Peer {
    pub(super) identity: Identity,
    /// The hash of the token this connection signed in with.
    pub(super) credential: Vec<u8>,
    /// When it registered, after its sign-in was checked.
    pub(super) registered: Instant,
    pub(super) outbox: OutboxSender,
    pub(super) subscribed: bool,
    /// While its backlog is read: the live events held back, each with its
    /// batch's position (see `subscribe.rs`).
    pub(super) pending: Option<Held>,
    /// The position of its last backlog's snapshot: events of batches at or
    /// below it are in that backlog, so they are not delivered again, even
    /// when one reaches the router after the backlog did (the writer hands
    /// a commit over just after it is visible to readers).
    pub(super) joined_at: Seq,
    /// The messages already queued for it, left out of a `since` backlog
    /// (see `seen.rs`).
    pub(super) seen: Seen,
    /// The agent count this connection was last told (`welcome`, then
    /// `agents` events), so a user who subscribes after it changed hears of it.
    pub(super) agents_told: u32,
}

/// The router's state and rules, free of tasks so they can be tested directly.
/// Its methods are spread over this folder by concern (module documentation).
pub struct Registry {
    pub(super) peers: ConnMap<Peer>,
    /// Subscribed agent connections.
    pub(super) agent_conns: BTreeSet<ConnId>,
    /// Connections subscribing for the first time, their backlog being
    /// read: they get the events of the users they will see, held back.
    pub(super) first_subscribes: BTreeSet<ConnId>,
    /// Subscribed connections of each online user.
    pub(super) user_conns: HashMap<Name, BTreeSet<ConnId>>,
    /// Subscribed connections of each online agent: its keys are the agents
    /// online.
    pub(super) agents_online: HashMap<Name, usize>,
    /// Connections whose outbox overflowed or closed during this command.
    pub(super) dropped: Vec<ConnId>,
    /// Every agent's current token hash, from the credentials watcher.
    pub(super) agent_tokens: Option<(AgentTokens, Instant)>,
    /// What agents were told of each user's presence, and what they are owed.
    pub(super) presence: Presence,
    /// The same of each agent's (protocol version 2: agents hear of each
    /// other, never of themselves).
    pub(super) agent_presence: Presence,
    /// Frames queued and refusals answered, for the metrics endpoint.
    pub(super) counts: Arc<FanoutCounts>,
    /// This node: a commit's origin is one of its connections only if it
    /// names this node (connection ids are counted per node).
    pub(super) node: NodeId,
    /// Other nodes' subscribed connections (cluster mode, `members.rs`).
    pub(super) remote: RemoteMembers,
}

/// This node alone, with the default presence grace (tests).
impl Default for Registry {
    fn default() -> Self {
        Self::new(
            Duration::from_millis(crate::config::defaults::PRESENCE_GRACE_MS),
            NodeId::LOCAL,
        )
    }
}

impl Registry {
    /// An empty registry of `node`'s connections that announces a user
    /// offline `presence_grace` after its last connection closes, unless it
    /// is back by then, and an agent at once.
    pub fn new(presence_grace: Duration, node: NodeId) -> Self {
        Self {
            peers: ConnMap::default(),
            agent_conns: BTreeSet::new(),
            first_subscribes: BTreeSet::new(),
            user_conns: HashMap::new(),
            agents_online: HashMap::new(),
            dropped: Vec::new(),
            agent_tokens: None,
            presence: Presence::new(presence_grace),
            agent_presence: Presence::exact(),
            counts: Arc::default(),
            node,
            remote: RemoteMembers::default(),
        }
    }

    /// The connection a request came from, if it came to this node.
    pub(super) fn local(&self, origin: &Origin) -> Option<ConnId> {
        (origin.node == self.node).then_some(origin.conn)
    }

    pub fn connect(
        &mut self,
        conn: ConnId,
        identity: Identity,
        credential: Vec<u8>,
        outbox: OutboxSender,
    ) -> u32 {
        let peer = Peer {
            identity,
            credential,
            outbox,
            subscribed: false,
            pending: None,
            joined_at: Seq::default(),
            seen: Seen::default(),
            registered: Instant::now(),
            agents_told: self.agents_online_count(),
        };
        // No check against the last token snapshot here: the sign-in was
        // just verified against the database, which may be newer than the
        // snapshot. A sign-in that raced a rotation is caught by the next
        // snapshot instead (`credentials`).
        self.peers.insert(conn, peer);
        self.agents_online_count()
    }

    /// Agents online on any node.
    pub(super) fn agents_online_count(&self) -> u32 {
        let elsewhere = self
            .remote
            .agents()
            .filter(|name| !self.agents_online.contains_key(*name))
            .count();
        u32::try_from(self.agents_online.len() + elsewhere).unwrap_or(u32::MAX)
    }

    pub fn disconnect(&mut self, conn: ConnId) {
        self.remove(conn);
        self.settle();
    }

    /// Counts a connection's first subscription: presence for a user's
    /// first connection, the agent count for an agent's first.
    pub(super) fn mark_subscribed(&mut self, conn: ConnId, identity: Identity) {
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.subscribed = true;
        }
        match identity.role {
            Role::User => {
                let conns = self.user_conns.entry(identity.name.clone()).or_default();
                conns.insert(conn);
                if conns.len() == 1 && !self.remote.has_user(&identity.name) {
                    self.presence_changed(Role::User, identity.name, true);
                }
            }
            Role::Agent => {
                self.agent_conns.insert(conn);
                let first_anywhere = !self.remote.has_agent(&identity.name);
                let count = self.agents_online.entry(identity.name.clone()).or_default();
                *count += 1;
                if *count == 1 && first_anywhere {
                    self.agents_changed();
                    self.presence_changed(Role::Agent, identity.name, true);
                }
            }
        }
    }

    /// Forgets a connection and tells others what its leaving changed.
    pub(super) fn remove(&mut self, conn: ConnId) {
        self.first_subscribes.remove(&conn);
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        if !peer.subscribed {
            return;
        }
        let name = peer.identity.name;
        match peer.identity.role {
            Role::User => {
                let last = match self.user_conns.get_mut(&name) {
                    Some(conns) => {
                        conns.remove(&conn);
                        conns.is_empty()
                    }
                    None => false,
                };
                if last {
                    self.user_conns.remove(&name);
                    if !self.remote.has_user(&name) {
                        self.presence_changed(Role::User, name, false);
                    }
                }
            }
            Role::Agent => {
                self.agent_conns.remove(&conn);
                if let Some(count) = self.agents_online.get_mut(&name) {
                    *count -= 1;
                    if *count == 0 {
                        self.agents_online.remove(&name);
                        if !self.remote.has_agent(&name) {
                            self.agents_changed();
                            self.presence_changed(Role::Agent, name, false);
                        }
                    }
                }
            }
        }
    }

    /// The presence announcements due by `now` (a departure whose grace is
    /// over, a change held back for a flapping user), to every agent.
    pub fn presence_due(&mut self, now: Instant) {
        for (name, online) in self.presence.due(now) {
            self.announce(Role::User, name, online);
        }
        for (name, online) in self.agent_presence.due(now) {
            self.announce(Role::Agent, name, online);
        }
        self.settle();
    }

    /// When [`Registry::presence_due`] has something to announce next.
    pub fn presence_next_due(&self) -> Option<Instant> {
        match (self.presence.next_due(), self.agent_presence.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A user or an agent came online, or went offline, on every node taken
    /// together: announced when `presence.rs` says so.
    pub(super) fn presence_changed(&mut self, role: Role, name: Name, online: bool) {
        let now = Instant::now();
        let presence = match role {
            Role::User => &mut self.presence,
            Role::Agent => &mut self.agent_presence,
        };
        let announce = if online {
            presence.came_online(&name, now)
        } else {
            presence.went_offline(&name, now)
        };
        if announce {
            self.announce(role, name, online);
        }
    }

    /// Tells every subscribed agent connection that `name` is (not) online;
    /// an agent is not told of itself.
    fn announce(&mut self, role: Role, name: Name, online: bool) {
        let event = encode(&ServerFrame::Presence {
            role,
            name: name.clone(),
            online,
        });
        let agents: Vec<ConnId> = self
            .agent_conns
            .iter()
            .copied()
            .filter(|conn| {
                role == Role::User
                    || self
                        .peers
                        .get(conn)
                        .is_none_or(|peer| peer.identity.name != name)
            })
            .collect();
        for conn in agents {
            self.push(conn, event.clone(), false);
        }
    }

    pub(super) fn agents_changed(&mut self) {
        let online = self.agents_online_count();
        let event = encode(&ServerFrame::Agents { online });
        let users: Vec<ConnId> = self.user_conns.values().flatten().copied().collect();
        for conn in users {
            if let Some(peer) = self.peers.get_mut(&conn) {
                peer.agents_told = online;
            }
            self.push(conn, event.clone(), false);
        }
    }

    pub(super) fn reply(&mut self, origin: &Origin, frame: &ServerFrame) {
        if let Some(conn) = self.local(origin)
            && self.peers.contains_key(&conn)
        {
            self.push(conn, encode(frame), true);
        }
    }

    pub(super) fn push(&mut self, conn: ConnId, bytes: Bytes, answers_request: bool) {
        self.push_outgoing(conn, Outgoing::encoded(bytes, answers_request));
    }

    pub(super) fn push_outgoing(&mut self, conn: ConnId, out: Outgoing) {
        if let Some(peer) = self.peers.get(&conn) {
            push_to(conn, peer, out, &mut self.dropped, &self.counts);
        }
    }

    /// Removes connections dropped while routing. Dropping a peer drops its
    /// outbox sender, which is how its session learns it was cut off.
    pub(super) fn settle(&mut self) {
        while let Some(conn) = self.dropped.pop() {
            self.remove(conn);
        }
    }
}

/// Pushes into `peer`'s outbox; a full or closed one goes on `dropped`, a
/// frame queued is counted. A free function over the fields it needs, so a
/// caller that has already looked the peer up does not look it up again.
pub(super) fn push_to(
    conn: ConnId,
    peer: &Peer,
    out: Outgoing,
    dropped: &mut Vec<ConnId>,
    counts: &FanoutCounts,
) {
    match peer.outbox.try_push(out) {
        Ok(()) => counts.delivered(),
        Err(PushError::Full) => {
            tracing::warn!(conn, name = %peer.identity.name, "outbox full: disconnecting a slow consumer");
            dropped.push(conn);
        }
        Err(PushError::Closed) => dropped.push(conn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::fanout::test_support::*;

    #[test]
    fn presence_follows_the_first_and_last_subscribed_connection() {
        let mut registry = Registry::default();
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 16);
        let ana = join(&mut registry, 2, Role::User, "ana", 16);
        let ana_phone = join(&mut registry, 3, Role::User, "ana", 16);
        assert_eq!(
            types(&alice.frames()),
            ["presence"],
            "one presence for two connections"
        );
        registry.disconnect(ana.id);
        assert!(alice.frames().is_empty(), "still online on the phone");
        registry.disconnect(ana_phone.id);
        assert!(alice.frames().is_empty(), "not before the grace");
        let due = registry.presence_next_due().expect("the offline is due");
        registry.presence_due(due);
        assert_eq!(
            alice.frames(),
            [ServerFrame::Presence {
                role: Role::User,
                name: name("ana"),
                online: false
            }]
        );
        assert_eq!(registry.presence_next_due(), None);
    }

    /// Back within the grace: agents hear nothing, and an agent that
    /// subscribes meanwhile is told what the others were told (online).
    #[test]
    fn a_reconnect_within_the_grace_makes_no_presence_pair() {
        let mut registry = Registry::default();
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 16);
        let ana = join(&mut registry, 2, Role::User, "ana", 16);
        assert_eq!(types(&alice.frames()), ["presence"]);
        registry.disconnect(ana.id);
        let mut bob = alice_connected(&mut registry, 3);
        registry.subscribing(bob.id);
        registry.subscribed(
            origin(bob.id, None),
            alice_identity(),
            None,
            backlog_at(0, vec![]),
        );
        assert_eq!(
            bob.frames()[0],
            ServerFrame::Presence {
                role: Role::User,
                name: name("ana"),
                online: true
            },
            "as the others were told"
        );
        let _ana = join(&mut registry, 4, Role::User, "ana", 16);
        assert_eq!(registry.presence_next_due(), None, "nothing owed");
        registry.presence_due(Instant::now() + Duration::from_secs(60));
        assert!(alice.frames().is_empty());
    }

    #[test]
    fn users_hear_the_agent_count_change() {
        let mut registry = Registry::default();
        let mut ana = join(&mut registry, 1, Role::User, "ana", 16);
        let alice = join(&mut registry, 2, Role::Agent, "alice", 16);
        let _alice_again = join(&mut registry, 3, Role::Agent, "alice", 16);
        assert_eq!(
            ana.frames(),
            [ServerFrame::Agents { online: 1 }],
            "one agent, two connections"
        );
        registry.disconnect(alice.id);
        assert!(ana.frames().is_empty());
    }

    #[test]
    fn a_full_outbox_cuts_off_only_that_connection() {
        let mut registry = Registry::default();
        let stuck = join(&mut registry, 1, Role::Agent, "stuck", 2);
        let mut alice = join(&mut registry, 2, Role::Agent, "alice", 64);
        let mut ana = join(&mut registry, 3, Role::User, "ana", 64);
        for id in 1..=5 {
            registry.committed(commit(Event::Sent {
                origin: origin(ana.id, None),
                message: message(id, "ana", None),
                taken_by: None,
            }));
        }
        let count =
            |frames: Vec<ServerFrame>, kind| types(&frames).iter().filter(|t| **t == kind).count();
        assert_eq!(count(alice.frames(), "message"), 5);
        assert_eq!(count(ana.frames(), "sent"), 5);
        assert!(!registry.peers.contains_key(&stuck.id));
        let mut stuck = stuck;
        assert_eq!(stuck.frames().len(), 2, "what fitted before the cut");
        assert!(stuck.rx.is_closed(), "its session sees the outbox close");
    }
}
