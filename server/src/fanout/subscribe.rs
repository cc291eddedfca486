//! Backlog meets live: the hold-back of a `subscribe` in progress.
//!
//! A `subscribe` first registers here ([`Registry::subscribing`], through
//! `Router::subscribing`); from then on the connection's live events are
//! held back with their batch's [`Seq`] while a reader reads its backlog.
//! The backlog comes with the position of the snapshot it was read from,
//! and only held events of later batches follow it: nothing twice, nothing
//! missed, however far the reader's snapshot is ahead of the router.

use bytes::{Bytes, BytesMut};
use switchboard_protocol::codec::encode_into;
use switchboard_protocol::{Role, ServerFrame};

use super::deliver::encode;
use super::outbox::{Outgoing, Payload};
use super::registry::{Registry, push_to};
use crate::error::RequestError;
use crate::event::Backlog;
use crate::event::{ConnId, Origin, Seq};
use crate::identity::Identity;

/// Live events held back while a connection's backlog is read.
#[derive(Default)]
pub(super) struct Held {
    /// Each with its batch's position and the id of the message it
    /// carries, if it carries one.
    pub(super) events: Vec<(Seq, Option<u64>, Bytes)>,
    pub(super) bytes: usize,
    /// Messages the connection sent meanwhile: its `sent` replies are not
    /// held back, so they are queued before the backlog, which may hold
    /// them again.
    pub(super) echoed: Vec<u64>,
}

impl Registry {
    /// A connection is about to read its backlog: from now on its live
    /// events are held back with their positions until the backlog arrives.
    pub fn subscribing(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if peer.pending.is_none() {
            peer.pending = Some(Held::default());
        }
        if !peer.subscribed {
            self.first_subscribes.insert(conn);
        }
    }

    /// The backlog read after [`Registry::subscribing`]: written, then the
    /// held events of batches after its snapshot, then live events.
    /// `since` is the request's: a `since` backlog leaves out what the
    /// connection was already sent (`seen.rs`).
    pub fn subscribed(
        &mut self,
        origin: Origin,
        identity: Identity,
        since: Option<u64>,
        backlog: Option<Backlog>,
    ) {
        self.first_subscribes.remove(&origin.conn);
        let Some(peer) = self.peers.get_mut(&origin.conn) else {
            return; // gone before its backlog was read
        };
        let first_time = !peer.subscribed;
        let held_back = peer.pending.take().unwrap_or_default();
        let Some(backlog) = backlog else {
            // Nothing was read: a subscribed connection gets what was held
            // back for it, as it would have live; the request fails.
            if !first_time {
                // Nothing was dropped: the run of what it was sent goes on.
                for (_, message, bytes) in held_back.events {
                    peer.seen.delivered_opt(message);
                    push_to(
                        origin.conn,
                        peer,
                        Outgoing::encoded(bytes, false),
                        &mut self.dropped,
                        &self.counts,
                    );
                }
                for id in held_back.echoed {
                    peer.seen.delivered(id);
                }
            }
            let error = RequestError::Internal;
            self.counts.refusals.count(error.code());
            self.reply(&origin, &error.to_frame(origin.request.clone()));
            self.settle();
            return;
        };
        // Its backlog has every event up to its snapshot: any of those still
        // on their way to the router are not sent again.
        peer.joined_at = peer.joined_at.max(backlog.as_of);
        let Backlog {
            mut messages,
            mut rest,
            truncated,
            held,
            as_of,
        } = backlog;
        match since {
            Some(since) => {
                let already = |id: u64| peer.seen.has(id) || held_back.echoed.contains(&id);
                // A truncated backlog starts after a gap: the run starts
                // at its first message.
                let first = messages.first().map(|message| message.id);
                let since = match first.or(rest.first().copied()) {
                    Some(first) if truncated => since.max(first.saturating_sub(1)),
                    _ => since,
                };
                messages.retain(|message| !already(message.id));
                rest.retain(|&id| !already(id));
                let newest = rest
                    .last()
                    .copied()
                    .or(messages.last().map(|message| message.id));
                peer.seen.resumed(since, newest);
            }
            // A plain backlog (the latest messages, the waiting queue) is
            // not every message up to its snapshot, and the held events it
            // stands for are dropped: a gap.
            None => peer.seen.forget(),
        }
        // Backlog, state, then `subscribed`, as one item of the outbox: it
        // cannot be split by live events, nor overflow the outbox by its
        // length. The session encodes the backlog itself (`Payload::Backlog`).
        let mut chunk = BytesMut::new();
        let count = u32::try_from(messages.len() + rest.len()).unwrap_or(u32::MAX);
        if identity.role == Role::Agent {
            for name in self.presence.announced_online() {
                let presence = ServerFrame::Presence {
                    role: Role::User,
                    name: name.clone(),
                    online: true,
                };
                encode_into(&presence, &mut chunk).expect("server frames always serialise");
            }
            // Every agent online, itself included (it is, as of this
            // subscription), by name.
            let mut agents: Vec<&switchboard_protocol::Name> =
                self.agent_presence.announced_online().collect();
            if !agents.contains(&&identity.name) {
                agents.push(&identity.name);
            }
            agents.sort();
            for name in agents {
                let presence = ServerFrame::Presence {
                    role: Role::Agent,
                    name: name.clone(),
                    online: true,
                };
                encode_into(&presence, &mut chunk).expect("server frames always serialise");
            }
        }
        for (user, agent) in held {
            let held = ServerFrame::Assigned {
                id: None,
                user,
                agent,
                by: None,
            };
            encode_into(&held, &mut chunk).expect("server frames always serialise");
        }
        let subscribed = ServerFrame::Subscribed {
            id: origin.request.clone(),
            backlog: count,
            truncated,
        };
        encode_into(&subscribed, &mut chunk).expect("server frames always serialise");
        let role = identity.role;
        if first_time {
            self.mark_subscribed(origin.conn, identity);
        }
        // Last, so what this subscription told others is queued before the
        // subscriber hears `subscribed` (see `sent`).
        let payload = Payload::Backlog {
            messages,
            rest,
            then: chunk.freeze(),
        };
        self.push_outgoing(origin.conn, Outgoing::reply(payload));
        if let Some(peer) = self.peers.get_mut(&origin.conn) {
            for (seq, message, bytes) in held_back.events {
                if seq > as_of {
                    peer.seen.delivered_opt(message);
                    push_to(
                        origin.conn,
                        peer,
                        Outgoing::encoded(bytes, false),
                        &mut self.dropped,
                        &self.counts,
                    );
                }
            }
            for id in held_back.echoed {
                peer.seen.delivered(id);
            }
        }
        // A user whose `welcome` count went stale before subscribing (events
        // only reach subscribed connections) hears the count now.
        let online = self.agents_online_count();
        if role == Role::User
            && let Some(peer) = self.peers.get_mut(&origin.conn)
            && peer.agents_told != online
        {
            peer.agents_told = online;
            self.push(origin.conn, encode(&ServerFrame::Agents { online }), false);
        }
        self.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::outbox::outbox;
    use crate::fanout::test_support::*;
    use crate::identity::Credential;

    #[test]
    fn a_user_hears_an_agent_count_that_changed_before_it_subscribed() {
        let mut registry = Registry::default();
        let (tx, mut ana) = outbox(16, usize::MAX);
        let ana_identity = Identity {
            role: Role::User,
            name: name("ana"),
            credential: Credential::new(b"h"),
        };
        assert_eq!(registry.connect(1, ana_identity.clone(), vec![], tx), 0);
        let _alice = join(&mut registry, 2, Role::Agent, "alice", 16);
        let _bo = join(&mut registry, 3, Role::User, "bo", 16);
        registry.subscribing(1);
        registry.subscribed(origin(1, None), ana_identity, None, backlog_at(0, vec![]));
        let mut frames = Vec::new();
        while let Some(out) = ana.try_recv() {
            for line in out
                .to_bytes()
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
            {
                frames.push(serde_json::from_slice::<ServerFrame>(line).expect("a frame"));
            }
        }
        assert_eq!(types(&frames), ["subscribed", "agents"]);
        assert_eq!(frames[1], ServerFrame::Agents { online: 1 });
    }

    /// A first subscribe: events committed while its backlog is read are
    /// held back; those its snapshot saw (at or below `as_of`) are in the
    /// backlog and are not sent again, later ones follow the backlog.
    /// (Formerly the writer's `writes_queued_behind_subscribes_are_not_held_up_by_their_reads`:
    /// a send committed before the read is in the backlog.)
    #[test]
    fn a_first_backlog_meets_the_live_stream_without_a_gap_or_a_repeat() {
        let mut registry = Registry::default();
        let _ana = join(&mut registry, 9, Role::User, "ana", 16);
        let mut alice = alice_connected(&mut registry, 1);
        registry.subscribing(alice.id);
        registry.committed(user_message_at(5, 9));
        registry.committed(user_message_at(6, 9));
        assert!(
            alice.frames().is_empty(),
            "held back while the backlog is read"
        );
        // The reader's snapshot saw commit 5, not 6.
        registry.subscribed(
            origin(alice.id, None),
            alice_identity(),
            None,
            backlog_at(5, vec![message(5, "ana", None)]),
        );
        registry.committed(user_message_at(7, 9));
        let frames = alice.frames();
        assert_eq!(message_ids(&frames), [5, 6, 7]);
        // The state before `subscribed`: ana online, then alice herself
        // (agents online, itself included: protocol version 2).
        assert_eq!(
            types(&frames),
            [
                "message",
                "presence",
                "presence",
                "subscribed",
                "message",
                "message"
            ]
        );
    }

    /// A re-subscribe: the connection already gets events live; a message
    /// committed while its new backlog is read comes once, in the backlog
    /// when the snapshot saw it, live after the backlog when it did not.
    /// (Formerly the writer's `a_resubscribe_gets_a_message_committed_while_it_waited_once`.)
    #[test]
    fn a_resubscribe_gets_a_message_committed_while_it_waited_once() {
        let mut registry = Registry::default();
        let _ana = join(&mut registry, 9, Role::User, "ana", 16);
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 64);
        registry.committed(user_message_at(4, 9));
        assert_eq!(message_ids(&alice.frames()), [4], "live while subscribed");
        registry.subscribing(alice.id);
        registry.committed(user_message_at(5, 9));
        registry.committed(user_message_at(6, 9));
        registry.subscribed(
            origin(alice.id, None),
            alice_identity(),
            None,
            backlog_at(5, vec![message(4, "ana", None), message(5, "ana", None)]),
        );
        let frames = alice.frames();
        assert_eq!(message_ids(&frames), [4, 5, 6], "5 once, from the backlog");
        assert!(
            frames
                .iter()
                .any(|f| matches!(f, ServerFrame::Subscribed { backlog: 2, .. })),
            "{frames:?}"
        );
    }

    /// Issue 15, finding 6: a `since` re-subscribe on a live connection.
    /// The client read up to 3, but 4 and 5 were already queued for it; the
    /// backlog "after 3" holds them again, and they are left out. A message
    /// the connection itself sent while the backlog was read (its `sent`
    /// came first) is left out too.
    #[test]
    fn a_since_resubscribe_repeats_nothing_the_connection_was_already_sent() {
        let mut registry = Registry::default();
        let _ana = join(&mut registry, 9, Role::User, "ana", 16);
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 64);
        for seq in 3..=5 {
            registry.committed(user_message_at(seq, 9));
        }
        assert_eq!(message_ids(&alice.frames()), [3, 4, 5]);
        registry.subscribing(alice.id);
        registry.committed(user_message_at(6, 9));
        registry.committed(agent_message_at(7, alice.id));
        registry.committed(user_message_at(8, 9));
        let backlog = (4..=7).map(|id| message(id, "ana", None)).collect();
        registry.subscribed(
            origin(alice.id, None),
            alice_identity(),
            Some(3),
            backlog_at(7, backlog),
        );
        registry.committed(user_message_at(9, 9));
        let frames = alice.frames();
        assert_eq!(message_ids(&frames), [6, 8, 9]);
        assert!(
            matches!(frames.first(), Some(ServerFrame::Sent { message, .. }) if message.id == 7),
            "its own 7 came as `sent`, before the backlog: {frames:?}"
        );
        assert!(
            frames
                .iter()
                .any(|f| matches!(f, ServerFrame::Subscribed { backlog: 1, .. })),
            "{frames:?}"
        );
        // And again: everything it has is left out, the rest follows.
        registry.subscribing(alice.id);
        let backlog = (6..=9).map(|id| message(id, "ana", None)).collect();
        registry.subscribed(
            origin(alice.id, None),
            alice_identity(),
            Some(5),
            backlog_at(9, backlog),
        );
        assert!(message_ids(&alice.frames()).is_empty());
    }

    /// A user's first subscribe holds back only its own conversation.
    #[test]
    fn a_subscribing_user_holds_back_only_its_own_conversation() {
        let mut registry = Registry::default();
        let (tx, rx) = outbox(16, usize::MAX);
        let bo = Identity {
            role: Role::User,
            name: name("bo"),
            credential: Credential::new(b"h"),
        };
        registry.connect(3, bo.clone(), vec![], tx);
        let mut bo_conn = Conn { id: 3, rx };
        registry.subscribing(3);
        registry.committed(user_message_at(5, 9)); // ana's
        registry.subscribed(origin(3, None), bo, None, backlog_at(4, vec![]));
        assert!(message_ids(&bo_conn.frames()).is_empty());
    }

    /// A failed backlog read answers `internal`; a connection that was
    /// subscribed still gets what was held back for it.
    #[test]
    fn a_failed_backlog_read_is_answered_and_loses_no_live_event() {
        let mut registry = Registry::default();
        let _ana = join(&mut registry, 9, Role::User, "ana", 16);
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 64);
        registry.subscribing(alice.id);
        registry.committed(user_message_at(5, 9));
        registry.subscribed(origin(alice.id, None), alice_identity(), None, None);
        let frames = alice.frames();
        assert_eq!(message_ids(&frames), [5]);
        assert!(
            matches!(frames.last(), Some(ServerFrame::Error { code, .. }) if code.as_str() == "internal"),
            "{frames:?}"
        );
        registry.committed(user_message_at(6, 9));
        assert_eq!(message_ids(&alice.frames()), [6], "live again");
    }

    /// Holding back is bounded like the outbox: a connection that would
    /// hold back more than its outbox takes is cut off as a slow consumer.
    #[test]
    fn holding_back_more_than_the_outbox_takes_cuts_the_connection_off() {
        let mut registry = Registry::default();
        let _ana = join(&mut registry, 9, Role::User, "ana", 16);
        let (tx, _rx) = outbox(2, usize::MAX);
        registry.connect(1, alice_identity(), b"t".to_vec(), tx);
        registry.subscribing(1);
        for seq in 1..=3 {
            registry.committed(user_message_at(seq, 9));
        }
        assert!(!registry.peers.contains_key(&1));
    }

    /// The writer hands a commit to the router just after readers can see
    /// it, so a backlog can overtake the commit it already holds: that
    /// commit's events then reach the router after the backlog, and are not
    /// sent again. Later commits are.
    #[test]
    fn a_commit_the_backlog_already_had_is_not_sent_again_when_it_arrives_late() {
        let mut registry = Registry::default();
        let _ana = join(&mut registry, 9, Role::User, "ana", 16);
        let mut alice = alice_connected(&mut registry, 1);
        registry.subscribing(alice.id);
        registry.subscribed(
            origin(alice.id, None),
            alice_identity(),
            None,
            backlog_at(5, vec![message(5, "ana", None)]),
        );
        registry.committed(user_message_at(5, 9));
        registry.committed(user_message_at(6, 9));
        assert_eq!(
            message_ids(&alice.frames()),
            [5, 6],
            "5 once, from the backlog"
        );
    }
}
