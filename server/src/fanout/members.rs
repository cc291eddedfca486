//! A cluster's membership as one node's registry sees it (issue 16):
//! other nodes' subscribed connections, counted so that presence and
//! `agents_online` cover every node, and what a node does when it has lost
//! its lease.
//!
//! Each session of a cluster node records its connection in the shared
//! database when it first subscribes, committed before its `subscribed`
//! (`session/member.rs`, through the writer, so the others hear of it in
//! the ordered feed as an [`Event::Member`](crate::event::Event::Member)).
//! A node's own events come back to it through the feed too, and are passed
//! over: its registry already counted them, at once. Presence is then:
//! a user is online while it has a subscribed connection on any node; an
//! agent counts in `agents_online` while it has one on any node. The grace
//! and the spacing of `presence.rs` apply whichever node the change came
//! from.

use std::collections::{HashMap, HashSet};

use switchboard_protocol::{Name, Role, ServerFrame};

use super::deliver::encode;
use super::registry::Registry;
use crate::event::{ConnId, Member, NodeId, Seq};

/// Where a cluster node's router starts: the position its feed starts
/// after, and every node's subscribed connections as of it.
pub struct ClusterStart {
    pub applied: Seq,
    pub members: Vec<Member>,
}

/// Other nodes' subscribed connections, counted by name.
#[derive(Default)]
pub(super) struct RemoteMembers {
    conns: HashSet<(NodeId, ConnId)>,
    users: HashMap<Name, usize>,
    agents: HashMap<Name, usize>,
}

impl RemoteMembers {
    /// Counts one connection in or out; whether its name was online on
    /// another node before and after (`None`: nothing changed, it was
    /// counted already or never).
    fn apply(&mut self, member: &Member, open: bool) -> Option<(bool, bool)> {
        let key = (member.node, member.conn);
        let changed = if open {
            self.conns.insert(key)
        } else {
            self.conns.remove(&key)
        };
        if !changed {
            return None;
        }
        let counts = match member.role {
            Role::User => &mut self.users,
            Role::Agent => &mut self.agents,
        };
        let before = counts.contains_key(&member.name);
        if open {
            *counts.entry(member.name.clone()).or_default() += 1;
        } else if let Some(count) = counts.get_mut(&member.name) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&member.name);
            }
        }
        Some((before, counts.contains_key(&member.name)))
    }

    pub(super) fn has_user(&self, name: &Name) -> bool {
        self.users.contains_key(name)
    }

    pub(super) fn has_agent(&self, name: &Name) -> bool {
        self.agents.contains_key(name)
    }

    /// The agents online on other nodes.
    pub(super) fn agents(&self) -> impl Iterator<Item = &Name> {
        self.agents.keys()
    }
}

impl Registry {
    /// Starts counting other nodes' connections, from every node's
    /// subscribed connections when this node started.
    pub fn join_cluster(&mut self, initial: Vec<Member>) {
        for member in initial {
            self.member(member, true);
        }
    }

    /// A connection of some node began or stopped counting.
    pub(super) fn member(&mut self, member: Member, open: bool) {
        if member.node == self.node {
            return; // counted when it happened
        }
        let Some((before, after)) = self.remote.apply(&member, open) else {
            return;
        };
        if before == after {
            return;
        }
        match member.role {
            Role::User if !self.user_conns.contains_key(&member.name) => {
                self.presence_changed(Role::User, member.name, after);
            }
            Role::Agent if !self.agents_online.contains_key(&member.name) => {
                self.agents_changed();
                self.presence_changed(Role::Agent, member.name, after);
            }
            _ => {} // online here anyway: nothing changed for anyone
        }
    }

    /// This node lost its lease (it was frozen or cut off for longer, and
    /// the others swept it): what its registry holds may be stale, so
    /// every connection is told why and closed; clients connect again and
    /// resume.
    pub fn dismiss_all(&mut self) {
        let bye = encode(&ServerFrame::Bye {
            reason: Some(
                "this server lost its place in the cluster (it was stopped or cut off for \
                 longer than its lease); connect again, and resume with since"
                    .into(),
            ),
        });
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        tracing::warn!(
            connections = conns.len(),
            "this node lost its lease: closing every connection"
        );
        for conn in conns {
            if let Some(peer) = self.peers.get(&conn) {
                peer.outbox.say_last(bye.clone());
            }
            self.remove(conn);
        }
        self.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::test_support::*;

    fn member(node: u32, conn: ConnId, role: Role, name: &str) -> Member {
        Member {
            node: NodeId(node),
            conn,
            role,
            name: Name::parse(name).expect("valid"),
        }
    }

    /// A user on another node is announced to this node's agents, and
    /// goes offline only with its last connection anywhere; a remote agent
    /// counts in `agents_online`, and is announced to this node's agents.
    #[test]
    fn other_nodes_connections_count_for_presence_and_agents() {
        let mut registry = Registry::new(std::time::Duration::ZERO, NodeId(1));
        registry.join_cluster(vec![member(2, 7, Role::Agent, "bob")]);
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 16);
        let mut ana_here = join(&mut registry, 2, Role::User, "ana", 16);
        assert_eq!(types(&alice.frames()), ["presence"], "ana, here");
        assert!(
            ana_here
                .frames()
                .iter()
                .all(|frame| !matches!(frame, ServerFrame::Agents { .. })),
            "bob was counted before ana came"
        );
        registry.member(member(2, 8, Role::User, "ana"), true);
        registry.member(member(2, 9, Role::User, "ben"), true);
        assert_eq!(types(&alice.frames()), ["presence"], "ben; ana was online");
        registry.member(member(2, 7, Role::Agent, "bob"), false);
        assert_eq!(
            ana_here.frames(),
            [ServerFrame::Agents { online: 1 }],
            "bob left"
        );
        registry.member(member(2, 9, Role::User, "ben"), false);
        registry.member(member(2, 9, Role::User, "ben"), false);
        // No grace here: announced at once, and once.
        let offline = |role, name| ServerFrame::Presence {
            role,
            name: Name::parse(name).expect("valid"),
            online: false,
        };
        assert_eq!(
            alice.frames(),
            [offline(Role::Agent, "bob"), offline(Role::User, "ben")]
        );
    }

    /// This node's own events come back through the feed: passed over.
    #[test]
    fn own_connections_are_not_counted_twice() {
        let mut registry = Registry::new(std::time::Duration::ZERO, NodeId(1));
        registry.join_cluster(Vec::new());
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 16);
        let _ana = join(&mut registry, 2, Role::User, "ana", 16);
        alice.frames();
        registry.member(member(1, 2, Role::User, "ana"), true);
        assert_eq!(alice.frames(), [], "nothing new");
    }
}
