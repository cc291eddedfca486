//! Test helpers shared by the fan-out tests: commits, origins, backlogs,
//! messages, and connections whose outbox frames can be read back decoded.

use switchboard_protocol::{
    Body, Message, Name, Priority, RequestId, Role, ServerFrame, Timestamp,
};

use super::outbox::{OutboxReceiver, outbox};
use super::registry::Registry;
use crate::event::Backlog;
use crate::event::{Batch, Commit, ConnId, Event, NodeId, Origin, Seq};
use crate::identity::{Credential, Identity};

/// A commit of one event, at `seq`.
pub(super) fn commit_at(seq: u64, event: Event) -> Commit {
    Commit {
        batch: Some(Batch {
            seq: Seq(seq),
            events: vec![event],
        }),
        answers: Vec::new(),
        feed: None,
    }
}

/// A commit of one event (its position matters only to subscribers).
pub(super) fn commit(event: Event) -> Commit {
    commit_at(1, event)
}

pub(super) fn origin(conn: ConnId, request: Option<RequestId>) -> Origin {
    Origin {
        node: NodeId::LOCAL,
        conn,
        request,
    }
}

/// An empty backlog read at `as_of`.
pub(super) fn backlog_at(as_of: u64, messages: Vec<Message>) -> Option<Backlog> {
    Some(Backlog {
        messages,
        rest: vec![],
        truncated: false,
        held: vec![],
        as_of: Seq(as_of),
    })
}

pub(super) fn name(text: &str) -> Name {
    Name::parse(text).expect("valid")
}

pub(super) struct Conn {
    pub(super) id: ConnId,
    pub(super) rx: OutboxReceiver,
}

impl Conn {
    /// Every frame queued so far, decoded.
    pub(super) fn frames(&mut self) -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        while let Some(out) = self.rx.try_recv() {
            for line in out
                .to_bytes()
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
            {
                frames.push(serde_json::from_slice(line).expect("valid frame"));
            }
        }
        frames
    }
}

pub(super) fn join(
    registry: &mut Registry,
    id: ConnId,
    role: Role,
    who: &str,
    capacity: usize,
) -> Conn {
    let (tx, rx) = outbox(capacity, usize::MAX);
    let identity = Identity {
        role,
        name: name(who),
        credential: Credential::new(b"t"),
    };
    registry.connect(id, identity.clone(), who.as_bytes().to_vec(), tx);
    registry.subscribing(id);
    registry.subscribed(origin(id, None), identity, None, backlog_at(0, vec![]));
    let mut conn = Conn { id, rx };
    conn.frames();
    conn
}

pub(super) fn message(id: u64, user: &str, agent: Option<&str>) -> Message {
    Message {
        id,
        ts: Timestamp::from_micros(id as i64),
        user: name(user),
        from: if agent.is_some() {
            Role::Agent
        } else {
            Role::User
        },
        agent: agent.map(name),
        body: Body::parse("hi", 10).expect("valid"),
        priority: Priority::Normal,
        note: false,
    }
}

pub(super) fn types(frames: &[ServerFrame]) -> Vec<&'static str> {
    frames
        .iter()
        .map(|f| match f {
            ServerFrame::Message { .. } => "message",
            ServerFrame::Sent { .. } => "sent",
            ServerFrame::Assigned { .. } => "assigned",
            ServerFrame::Presence { .. } => "presence",
            ServerFrame::Agents { .. } => "agents",
            ServerFrame::Released { .. } => "released",
            ServerFrame::Subscribed { .. } => "subscribed",
            _ => "other",
        })
        .collect()
}

/// The subscribe tests' agent alice, registered but not yet subscribed.
pub(super) fn alice_connected(registry: &mut Registry, id: ConnId) -> Conn {
    let (tx, rx) = outbox(64, usize::MAX);
    registry.connect(id, alice_identity(), b"t".to_vec(), tx);
    Conn { id, rx }
}

pub(super) fn alice_identity() -> Identity {
    Identity {
        role: Role::Agent,
        name: name("alice"),
        credential: Credential::new(b"t"),
    }
}

pub(super) fn user_message_at(seq: u64, conn: ConnId) -> Commit {
    commit_at(
        seq,
        Event::Sent {
            origin: origin(conn, None),
            message: message(seq, "ana", None),
            taken_by: None,
        },
    )
}

/// Message ids among frames, in order.
pub(super) fn message_ids(frames: &[ServerFrame]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|frame| match frame {
            ServerFrame::Message { message } => Some(message.id),
            _ => None,
        })
        .collect()
}

/// A message alice (connection `conn`) sent to ana, committed at `seq`.
pub(super) fn agent_message_at(seq: u64, conn: ConnId) -> Commit {
    commit_at(
        seq,
        Event::Sent {
            origin: origin(conn, None),
            message: message(seq, "ana", Some("alice")),
            taken_by: None,
        },
    )
}
