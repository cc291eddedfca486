//! Delivery rules: what one commit means for whom. Pure: it only pushes
//! into outboxes, so it is tested without a runtime.
//!
//! A message goes to every subscribed agent connection and the user's
//! subscribed connections, except the sender's connection, which gets
//! `sent` instead, last: once the sender has its reply, every other
//! connection's event is already queued, so a `ping` on any of them is a
//! barrier (docs/protocol.md, point 16). `assigned` goes to all of those,
//! the sender's too, before the message. **A note never reaches the user**
//! (protocol version 2): it goes to the agent connections only (the reads
//! keep the same promise for backlogs, resumes and history: `Notes`). Events keep commit order, and an
//! answer comes after the events of the requests before it. Each frame is
//! encoded once and shared as [`Bytes`] by every connection it goes to.

use bytes::{Bytes, BytesMut};
use switchboard_protocol::codec::{EncodedMessage, encode_into};
use switchboard_protocol::{Message, Name, Role, ServerFrame};

use super::outbox::Outgoing;
use super::registry::{Registry, push_to};
use crate::error::RequestError;
use crate::event::{Answer, Commit, ConnId, Event, Origin, Seq};

pub(super) fn encode(frame: &ServerFrame) -> Bytes {
    let mut buf = BytesMut::with_capacity(256);
    encode_into(frame, &mut buf)
        .expect("server frames always serialise: no maps with non-string keys");
    buf.freeze()
}

impl Registry {
    /// One commit: its events for everyone concerned, and the answers for
    /// their requesters, each in request order (an answer comes after the
    /// events of the requests before it).
    pub fn committed(&mut self, commit: Commit) {
        let Commit { batch, answers, .. } = commit;
        let mut answers = answers.into_iter().peekable();
        if let Some(batch) = batch {
            for (index, event) in batch.events.into_iter().enumerate() {
                while let Some((_, answer)) = answers.next_if(|(after, _)| *after <= index) {
                    self.answer(answer);
                }
                self.event(batch.seq, event);
            }
        }
        for (_, answer) in answers {
            self.answer(answer);
        }
        self.settle();
    }

    fn event(&mut self, seq: Seq, event: Event) {
        match event {
            Event::Sent {
                origin,
                message,
                taken_by,
            } => self.sent(seq, origin, message, taken_by),
            Event::Released {
                origin,
                user,
                agent,
                by,
                reason,
            } => self.conversation_changed(seq, origin, &user, |id| ServerFrame::Released {
                id,
                user: user.clone(),
                agent: agent.clone(),
                by: by.clone(),
                reason,
            }),
            Event::Assigned {
                origin,
                user,
                agent,
                by,
            } => self.conversation_changed(seq, origin, &user, |id| ServerFrame::Assigned {
                id,
                user: user.clone(),
                agent: agent.clone(),
                by: by.clone(),
            }),
            Event::Resolved {
                origin,
                user,
                agent,
            } => self.conversation_changed(seq, origin, &user, |id| ServerFrame::Resolved {
                id,
                user: user.clone(),
                agent: agent.clone(),
            }),
            Event::Member { member, open } => self.member(member, open),
        }
    }

    /// Who holds `user`'s conversation, or whether it is done, changed:
    /// the event (`frame(None)`) to every subscribed agent connection and
    /// the user's, others first; the requester (`origin`), if any, gets
    /// the reply instead (`frame(Some(id))`), last (see `sent`).
    fn conversation_changed(
        &mut self,
        seq: Seq,
        origin: Option<Origin>,
        user: &Name,
        frame: impl Fn(Option<switchboard_protocol::RequestId>) -> ServerFrame,
    ) {
        let requester = origin.as_ref().and_then(|origin| self.local(origin));
        self.fan_out(seq, Some(user), requester, &encode(&frame(None)), None);
        if let Some(origin) = origin {
            self.reply(&origin, &frame(origin.request.clone()));
        }
    }

    fn answer(&mut self, answer: Answer) {
        match answer {
            // Nothing changed: the reply only.
            Answer::AlreadyAssigned {
                origin,
                user,
                agent,
                by,
            } => {
                let reply = ServerFrame::Assigned {
                    id: origin.request.clone(),
                    user,
                    agent,
                    by,
                };
                self.reply(&origin, &reply);
            }
            Answer::NothingToResolve {
                origin,
                user,
                agent,
            } => {
                let reply = ServerFrame::Resolved {
                    id: origin.request.clone(),
                    user,
                    agent,
                };
                self.reply(&origin, &reply);
            }
            Answer::Refused { origin, refusal } => {
                let error = RequestError::from(refusal);
                self.counts.refusals.count(error.code());
                self.reply(&origin, &error.to_frame(origin.request.clone()));
            }
            // Stored and delivered the first time; only the sender is answered.
            Answer::Replayed { origin, message } => self.reply(
                &origin,
                &ServerFrame::Sent {
                    id: origin.request.clone(),
                    message,
                },
            ),
        }
    }

    fn sent(&mut self, seq: Seq, origin: Origin, message: Message, taken_by: Option<Name>) {
        if let Some(agent) = taken_by {
            let assigned = encode(&ServerFrame::Assigned {
                id: None,
                user: message.user.clone(),
                agent,
                by: None,
            });
            self.fan_out(seq, Some(&message.user), None, &assigned, None);
        }
        let encoded = EncodedMessage::new(&message)
            .expect("server frames always serialise: no maps with non-string keys");
        // Everyone else first, the sender last: once the sender has its
        // reply, every other connection's event is already queued, so a
        // `ping` on any of them is a barrier (docs/protocol.md, point 16).
        let sender = self.local(&origin);
        let user = (!message.note).then_some(&message.user);
        self.fan_out(seq, user, sender, &encoded.event(), Some(message.id));
        if let Some((conn, peer)) = sender.and_then(|conn| Some((conn, self.peers.get_mut(&conn)?)))
        {
            let sent = encoded
                .sent(origin.request.as_ref())
                .expect("server frames always serialise: no maps with non-string keys");
            // The sender has the message too, in its reply.
            match &mut peer.pending {
                Some(held) => held.echoed.push(message.id),
                None if peer.subscribed => peer.seen.delivered(message.id),
                None => {}
            }
            self.push(conn, sent, true);
        }
    }

    /// A batch's event (at `seq`) to every subscribed agent connection and
    /// every subscribed connection of `user` (`None`: agents only, for a
    /// note), except `skip`; held back for those whose backlog is being
    /// read. `message` is the id of the message the event carries, if it
    /// carries one.
    fn fan_out(
        &mut self,
        seq: Seq,
        user: Option<&Name>,
        skip: Option<ConnId>,
        bytes: &Bytes,
        message: Option<u64>,
    ) {
        let mut targets: Vec<ConnId> = self.agent_conns.iter().copied().collect();
        if let Some(conns) = user.and_then(|user| self.user_conns.get(user)) {
            targets.extend(conns.iter().copied());
        }
        for conn in &self.first_subscribes {
            if let Some(peer) = self.peers.get(conn)
                && (peer.identity.role == Role::Agent || Some(&peer.identity.name) == user)
            {
                targets.push(*conn);
            }
        }
        for conn in targets {
            if Some(conn) != skip {
                self.deliver(seq, conn, bytes.clone(), message);
            }
        }
    }

    /// An event now, or held back while the connection's backlog is read,
    /// or not at all if its backlog already had it. A connection holding
    /// back more than its outbox could take is as slow as one whose outbox
    /// is full.
    fn deliver(&mut self, seq: Seq, conn: ConnId, bytes: Bytes, message: Option<u64>) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if seq <= peer.joined_at {
            return;
        }
        let Some(held) = &mut peer.pending else {
            if let Some(id) = message {
                peer.seen.delivered(id);
            }
            push_to(
                conn,
                peer,
                Outgoing::encoded(bytes, false),
                &mut self.dropped,
                &self.counts,
            );
            return;
        };
        held.bytes += bytes.len();
        held.events.push((seq, message, bytes));
        if held.events.len() > peer.outbox.max_frames() || held.bytes > peer.outbox.max_bytes() {
            tracing::warn!(conn, name = %peer.identity.name, "too many events held back: disconnecting a slow consumer");
            self.dropped.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Batch;
    use crate::fanout::test_support::*;
    use switchboard_protocol::RequestId;

    #[test]
    fn a_release_nobody_asked_for_reaches_every_agent_and_the_user_without_an_id() {
        let mut registry = Registry::default();
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 16);
        let mut bob = join(&mut registry, 2, Role::Agent, "bob", 16);
        let mut ana = join(&mut registry, 3, Role::User, "ana", 16);
        let mut cy = join(&mut registry, 4, Role::User, "cy", 16);
        for conn in [&mut alice, &mut bob] {
            conn.frames();
        }
        registry.committed(commit(Event::Released {
            origin: None,
            user: name("ana"),
            agent: name("zed"),
            by: None,
            reason: None,
        }));
        let expected = ServerFrame::Released {
            id: None,
            user: name("ana"),
            agent: name("zed"),
            by: None,
            reason: None,
        };
        for conn in [&mut alice, &mut bob, &mut ana] {
            assert_eq!(conn.frames(), std::slice::from_ref(&expected));
        }
        assert!(cy.frames().is_empty());
    }

    #[test]
    fn a_user_message_reaches_agents_and_the_users_other_connections_not_the_sender() {
        let mut registry = Registry::default();
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 16);
        let mut bob = join(&mut registry, 2, Role::Agent, "bob", 16);
        let mut ana = join(&mut registry, 3, Role::User, "ana", 16);
        let mut ana_phone = join(&mut registry, 4, Role::User, "ana", 16);
        let mut cy = join(&mut registry, 5, Role::User, "cy", 16);
        for conn in [&mut alice, &mut bob] {
            conn.frames(); // presence of the users who joined after them
        }
        registry.committed(commit(Event::Sent {
            origin: origin(ana.id, Some(RequestId::Str("r1".into()))),
            message: message(1, "ana", None),
            taken_by: None,
        }));
        assert_eq!(types(&alice.frames()), ["message"]);
        assert_eq!(types(&bob.frames()), ["message"]);
        assert_eq!(types(&ana.frames()), ["sent"]);
        assert_eq!(types(&ana_phone.frames()), ["message"]);
        assert!(cy.frames().is_empty(), "another user sees nothing");
    }

    #[test]
    fn a_note_reaches_the_other_agents_and_never_the_user() {
        let mut registry = Registry::default();
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 16);
        let mut bob = join(&mut registry, 2, Role::Agent, "bob", 16);
        let mut ana = join(&mut registry, 3, Role::User, "ana", 16);
        for conn in [&mut alice, &mut bob] {
            conn.frames(); // ana's presence
        }
        registry.committed(commit(Event::Sent {
            origin: origin(alice.id, Some(RequestId::Str("n1".into()))),
            message: Message {
                note: true,
                ..message(1, "ana", Some("alice"))
            },
            taken_by: None,
        }));
        assert_eq!(types(&alice.frames()), ["sent"]);
        let heard = bob.frames();
        assert!(
            matches!(&heard[..], [ServerFrame::Message { message }] if message.note),
            "{heard:?}"
        );
        assert!(ana.frames().is_empty(), "the user never hears a note");
    }

    #[test]
    fn taking_a_user_announces_assigned_before_the_message_to_everyone_concerned() {
        let mut registry = Registry::default();
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 16);
        let mut bob = join(&mut registry, 2, Role::Agent, "bob", 16);
        let mut ana = join(&mut registry, 3, Role::User, "ana", 16);
        for conn in [&mut alice, &mut bob] {
            conn.frames(); // ana's presence
        }
        registry.committed(commit(Event::Sent {
            origin: origin(alice.id, None),
            message: message(1, "ana", Some("alice")),
            taken_by: Some(name("alice")),
        }));
        assert_eq!(types(&alice.frames()), ["assigned", "sent"]);
        assert_eq!(types(&bob.frames()), ["assigned", "message"]);
        assert_eq!(types(&ana.frames()), ["assigned", "message"]);
    }

    /// Answers keep request order around a batch's events: a refusal of the
    /// second request comes between the replies to the first and third.
    #[test]
    fn answers_come_between_the_events_of_the_requests_around_them() {
        let mut registry = Registry::default();
        let mut ana = join(&mut registry, 9, Role::User, "ana", 16);
        let sent = |id: u64| Event::Sent {
            origin: origin(9, Some(RequestId::Int(id as i64))),
            message: message(id, "ana", None),
            taken_by: None,
        };
        registry.committed(Commit {
            batch: Some(Batch {
                seq: Seq(3),
                events: vec![sent(1), sent(3)],
            }),
            answers: vec![(
                1,
                Answer::Refused {
                    origin: origin(9, Some(RequestId::Int(2))),
                    refusal: crate::event::Refusal::NotDone,
                },
            )],
            feed: None,
        });
        assert_eq!(
            ana.frames()
                .into_iter()
                .map(|f| match f {
                    ServerFrame::Sent { id, .. } | ServerFrame::Error { id, .. } => id,
                    other => panic!("not a reply: {other:?}"),
                })
                .collect::<Vec<_>>(),
            [1, 2, 3].map(|id| Some(RequestId::Int(id)))
        );
    }
}
