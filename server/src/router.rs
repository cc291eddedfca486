//! Fan-out: who is online, and which connection gets which frame.
//!
//! [`Router`] is a cloneable handle to one task that owns the [`Registry`].
//! The writer hands it committed results in commit order, and it pushes each
//! frame, encoded once and shared as [`Bytes`], into the bounded outboxes of
//! the connections that may see it. It never waits on a connection: a full
//! outbox means that client is not reading, and it is disconnected
//! (`slow_consumer`) rather than allowed to hold up everyone else.
//!
//! Rules (docs/protocol.md): a message goes to every subscribed agent
//! connection and the user's subscribed connections, except the sender's
//! connection, which gets `sent` instead. `assigned` goes to all of those,
//! the sender's too, before the message.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use switchboard_protocol::codec::{EncodedMessage, encode_into};
use switchboard_protocol::{Message, Name, Role, ServerFrame};
use tokio::sync::{mpsc, oneshot};

use crate::error::RequestError;
use crate::identity::{ConnId, Identity, Origin};
pub use crate::outbox::Outgoing;
use crate::outbox::{OutboxSender, Payload, PushError};
use crate::store::Committed;

/// Commands waiting for the router task. The writer blocks when it is full,
/// which is back-pressure, not loss.
const COMMAND_QUEUE: usize = 16_384;

enum Command {
    Connect {
        conn: ConnId,
        identity: Identity,
        credential: Vec<u8>,
        outbox: OutboxSender,
        reply: oneshot::Sender<u32>,
    },
    /// One commit's results, in commit order: routed in one go, so each
    /// recipient's frames from a group are queued before its session wakes.
    Committed(Vec<Committed>),
    Credentials(AgentTokens, Instant),
}

/// The handle sessions and the writer hold.
#[derive(Clone)]
pub struct Router {
    commands: mpsc::Sender<Command>,
    /// Unbounded so a session can say goodbye from `Drop`; each connection
    /// sends exactly one, so it is bounded by the connection limit.
    disconnects: mpsc::UnboundedSender<ConnId>,
}

impl Router {
    /// Starts the router task; it stops when every handle is gone.
    pub fn spawn() -> Router {
        let (commands, mut command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (disconnects, mut disconnect_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut registry = Registry::default();
            loop {
                tokio::select! {
                    command = command_rx.recv() => match command {
                        Some(Command::Connect { conn, identity, credential, outbox, reply }) => {
                            let _ = reply.send(registry.connect(conn, identity, credential, outbox));
                        }
                        Some(Command::Committed(events)) => {
                            for event in events {
                                registry.committed(event);
                            }
                        }
                        Some(Command::Credentials(tokens, read_at)) => registry.credentials(tokens, read_at),
                        None => break,
                    },
                    Some(conn) = disconnect_rx.recv() => registry.disconnect(conn),
                }
            }
            tracing::debug!("router stopped");
        });
        Router {
            commands,
            disconnects,
        }
    }

    /// Registers a signed-in connection, the hash of the token it signed in
    /// with, and its outbox; answers how many agents are online (`None` if
    /// the router has stopped).
    pub async fn connect(
        &self,
        conn: ConnId,
        identity: Identity,
        credential: Vec<u8>,
        outbox: OutboxSender,
    ) -> Option<u32> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Connect {
                conn,
                identity,
                credential,
                outbox,
                reply,
            })
            .await
            .ok()?;
        answer.await.ok()
    }

    /// Every agent's current token hash (`None`: removed). Connections that
    /// signed in with another token are closed, now and whenever they
    /// register later (a sign-in can race a rotation).
    /// `read_at`: when the read of `tokens` began; connections registered
    /// after that may have signed in against newer tokens and wait for the
    /// next snapshot.
    pub async fn credentials(&self, tokens: AgentTokens, read_at: Instant) {
        let _ = self
            .commands
            .send(Command::Credentials(tokens, read_at))
            .await;
    }

    /// Forgets a connection, however it ended.
    pub fn disconnect(&self, conn: ConnId) {
        let _ = self.disconnects.send(conn);
    }

    /// From the writer thread (not async): a commit's results to route, in
    /// commit order.
    pub fn committed_blocking(&self, events: Vec<Committed>) {
        if events.is_empty() {
            return;
        }
        if self
            .commands
            .blocking_send(Command::Committed(events))
            .is_err()
        {
            tracing::warn!("router stopped; a committed result was not delivered");
        }
    }
}

struct Peer {
    identity: Identity,
    /// The hash of the token this connection signed in with.
    credential: Vec<u8>,
    /// When it registered, after its sign-in was checked.
    registered: Instant,
    outbox: OutboxSender,
    subscribed: bool,
    /// A re-subscribe is waiting for its backlog: the newest message
    /// committed before it was queued. Messages after it reach this
    /// (subscribed) connection live, so its new backlog leaves them out.
    resubscribe_floor: Option<u64>,
    /// The agent count this connection was last told (`welcome`, then
    /// `agents` events), so a user who subscribes after it changed hears of it.
    agents_told: u32,
}

/// The router's state and rules, free of tasks so they can be tested directly.
#[derive(Default)]
pub struct Registry {
    peers: HashMap<ConnId, Peer>,
    /// Subscribed agent connections.
    agent_conns: BTreeSet<ConnId>,
    /// Subscribed connections of each online user.
    user_conns: HashMap<Name, BTreeSet<ConnId>>,
    /// Subscribed connections of each online agent: its keys are the agents
    /// online.
    agents_online: HashMap<Name, usize>,
    /// Connections whose outbox overflowed or closed during this command.
    dropped: Vec<ConnId>,
    /// Every agent's current token hash, from the credentials watcher.
    agent_tokens: Option<(AgentTokens, Instant)>,
}

/// Agent name → the hash of its current token (`None`: removed).
pub type AgentTokens = HashMap<Name, Option<Vec<u8>>>;

fn encode(frame: &ServerFrame) -> Bytes {
    let mut buf = BytesMut::with_capacity(256);
    encode_into(frame, &mut buf)
        .expect("server frames always serialise: no maps with non-string keys");
    buf.freeze()
}

impl Registry {
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
            resubscribe_floor: None,
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

    /// Records every agent's current token and closes the agent
    /// connections that signed in with another one.
    pub fn credentials(&mut self, tokens: AgentTokens, read_at: Instant) {
        self.agent_tokens = Some((tokens, read_at));
        let stale: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, peer)| self.is_stale(peer))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in stale {
            self.dismiss(conn);
        }
        self.settle();
    }

    /// An agent connection whose token is no longer the agent's.
    fn is_stale(&self, peer: &Peer) -> bool {
        let Some((tokens, read_at)) = &self.agent_tokens else {
            return false; // not read yet
        };
        // Signed in after the snapshot was read: its check may be newer.
        peer.registered <= *read_at
            && peer.identity.role == Role::Agent
            && tokens
                .get(&peer.identity.name)
                .is_some_and(|current| current.as_deref() != Some(peer.credential.as_slice()))
    }

    /// Tells a connection why, as its last frame, and forgets it.
    fn dismiss(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        tracing::info!(conn, agent = %peer.identity.name, "token rotated or removed: closing the connection");
        let error = RequestError::Revoked;
        let last = encode(&ServerFrame::error(None, error.code(), error.to_string()));
        peer.outbox.say_last(last);
        self.remove(conn);
    }

    fn agents_online_count(&self) -> u32 {
        u32::try_from(self.agents_online.len()).unwrap_or(u32::MAX)
    }

    pub fn disconnect(&mut self, conn: ConnId) {
        self.remove(conn);
        self.settle();
    }

    pub fn committed(&mut self, event: Committed) {
        match event {
            Committed::Sent {
                origin,
                message,
                taken_by,
                replayed,
            } => self.sent(origin, message, taken_by, replayed),
            Committed::Released {
                origin,
                user,
                agent,
            } => {
                // Others first, the requester last (see `sent`).
                let event = encode(&ServerFrame::Released {
                    id: None,
                    user: user.clone(),
                    agent: agent.clone(),
                });
                self.fan_out(&user, origin.as_ref().map(|origin| origin.conn), &event);
                if let Some(origin) = origin {
                    self.reply(
                        &origin,
                        &ServerFrame::Released {
                            id: origin.request.clone(),
                            user,
                            agent,
                        },
                    );
                }
            }
            Committed::SubscribeQueued { conn, after } => {
                if let Some(peer) = self.peers.get_mut(&conn)
                    && peer.subscribed
                {
                    peer.resubscribe_floor = Some(after);
                }
            }
            Committed::Subscribed {
                origin,
                identity,
                backlog,
                truncated,
                held,
            } => self.subscribed(origin, identity, backlog, truncated, held),
            Committed::Rejected { origin, error } => {
                let frame =
                    ServerFrame::error(origin.request.clone(), error.code(), error.to_string());
                self.reply(&origin, &frame);
            }
        }
        self.settle();
    }

    fn sent(&mut self, origin: Origin, message: Message, taken_by: Option<Name>, replayed: bool) {
        if replayed {
            // Stored and delivered the first time; only the sender is answered.
            self.reply(
                &origin,
                &ServerFrame::Sent {
                    id: origin.request.clone(),
                    message,
                },
            );
            return;
        }
        if let Some(agent) = taken_by {
            let assigned = encode(&ServerFrame::Assigned {
                user: message.user.clone(),
                agent,
            });
            self.fan_out(&message.user, None, &assigned);
        }
        let encoded = EncodedMessage::new(&message)
            .expect("server frames always serialise: no maps with non-string keys");
        // Everyone else first, the sender last: once the sender has its
        // reply, every other connection's event is already queued, so a
        // `ping` on any of them is a barrier (docs/protocol.md, point 16).
        self.fan_out(&message.user, Some(origin.conn), &encoded.event());
        if self.peers.contains_key(&origin.conn) {
            let sent = encoded
                .sent(origin.request.as_ref())
                .expect("server frames always serialise: no maps with non-string keys");
            self.push(origin.conn, sent, true);
        }
    }

    fn subscribed(
        &mut self,
        origin: Origin,
        identity: Identity,
        backlog: Vec<Message>,
        truncated: bool,
        held: Vec<(Name, Name)>,
    ) {
        let Some(peer) = self.peers.get_mut(&origin.conn) else {
            return; // gone before its backlog was read
        };
        let first_time = !peer.subscribed;
        let mut backlog = backlog;
        if let Some(floor) = peer.resubscribe_floor.take() {
            backlog.retain(|message| message.id <= floor);
        }
        // Backlog, state, then `subscribed`, as one item of the outbox: it
        // cannot be split by live events, nor overflow the outbox by its
        // length. The session encodes the backlog itself (`Payload::Backlog`).
        let mut chunk = BytesMut::new();
        let count = u32::try_from(backlog.len()).unwrap_or(u32::MAX);
        if identity.role == Role::Agent {
            for name in self.user_conns.keys() {
                let presence = ServerFrame::Presence {
                    role: Role::User,
                    name: name.clone(),
                    online: true,
                };
                encode_into(&presence, &mut chunk).expect("server frames always serialise");
            }
        }
        for (user, agent) in held {
            encode_into(&ServerFrame::Assigned { user, agent }, &mut chunk)
                .expect("server frames always serialise");
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
        let backlog = Payload::Backlog {
            messages: backlog,
            then: chunk.freeze(),
        };
        self.push_outgoing(origin.conn, Outgoing::reply(backlog));
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
    }

    /// Counts a connection's first subscription: presence for a user's
    /// first connection, the agent count for an agent's first.
    fn mark_subscribed(&mut self, conn: ConnId, identity: Identity) {
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.subscribed = true;
        }
        match identity.role {
            Role::User => {
                let conns = self.user_conns.entry(identity.name.clone()).or_default();
                conns.insert(conn);
                if conns.len() == 1 {
                    self.presence(identity.name, true);
                }
            }
            Role::Agent => {
                self.agent_conns.insert(conn);
                let count = self.agents_online.entry(identity.name).or_default();
                *count += 1;
                if *count == 1 {
                    self.agents_changed();
                }
            }
        }
    }

    /// Forgets a connection and tells others what its leaving changed.
    fn remove(&mut self, conn: ConnId) {
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
                    self.presence(name, false);
                }
            }
            Role::Agent => {
                self.agent_conns.remove(&conn);
                if let Some(count) = self.agents_online.get_mut(&name) {
                    *count -= 1;
                    if *count == 0 {
                        self.agents_online.remove(&name);
                        self.agents_changed();
                    }
                }
            }
        }
    }

    fn presence(&mut self, name: Name, online: bool) {
        let event = encode(&ServerFrame::Presence {
            role: Role::User,
            name,
            online,
        });
        let agents: Vec<ConnId> = self.agent_conns.iter().copied().collect();
        for conn in agents {
            self.push(conn, event.clone(), false);
        }
    }

    fn agents_changed(&mut self) {
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

    /// To every subscribed agent connection and every subscribed connection
    /// of `user`, except `skip`.
    fn fan_out(&mut self, user: &Name, skip: Option<ConnId>, bytes: &Bytes) {
        let mut targets: Vec<ConnId> = self.agent_conns.iter().copied().collect();
        if let Some(conns) = self.user_conns.get(user) {
            targets.extend(conns.iter().copied());
        }
        for conn in targets {
            if Some(conn) != skip {
                self.push(conn, bytes.clone(), false);
            }
        }
    }

    fn reply(&mut self, origin: &Origin, frame: &ServerFrame) {
        if self.peers.contains_key(&origin.conn) {
            self.push(origin.conn, encode(frame), true);
        }
    }

    fn push(&mut self, conn: ConnId, bytes: Bytes, answers_request: bool) {
        self.push_outgoing(conn, Outgoing::encoded(bytes, answers_request));
    }

    fn push_outgoing(&mut self, conn: ConnId, out: Outgoing) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        match peer.outbox.try_push(out) {
            Ok(()) => {}
            Err(PushError::Full) => {
                tracing::warn!(conn, name = %peer.identity.name, "outbox full: disconnecting a slow consumer");
                self.dropped.push(conn);
            }
            Err(PushError::Closed) => self.dropped.push(conn),
        }
    }

    /// Removes connections dropped while routing. Dropping a peer drops its
    /// outbox sender, which is how its session learns it was cut off.
    fn settle(&mut self) {
        while let Some(conn) = self.dropped.pop() {
            self.remove(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{OutboxReceiver, outbox};
    use switchboard_protocol::{Body, Priority, RequestId, Timestamp};

    fn name(text: &str) -> Name {
        Name::parse(text).expect("valid")
    }

    struct Conn {
        id: ConnId,
        rx: OutboxReceiver,
    }

    impl Conn {
        /// Every frame queued so far, decoded.
        fn frames(&mut self) -> Vec<ServerFrame> {
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

    fn join(registry: &mut Registry, id: ConnId, role: Role, who: &str, capacity: usize) -> Conn {
        let (tx, rx) = outbox(capacity, usize::MAX);
        let identity = Identity {
            role,
            name: name(who),
        };
        registry.connect(id, identity.clone(), who.as_bytes().to_vec(), tx);
        registry.committed(Committed::Subscribed {
            origin: Origin {
                conn: id,
                request: None,
            },
            identity,
            backlog: vec![],
            truncated: false,
            held: vec![],
        });
        let mut conn = Conn { id, rx };
        conn.frames();
        conn
    }

    fn message(id: u64, user: &str, agent: Option<&str>) -> Message {
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
        }
    }

    fn types(frames: &[ServerFrame]) -> Vec<&'static str> {
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
        registry.committed(Committed::Released {
            origin: None,
            user: name("ana"),
            agent: name("zed"),
        });
        let expected = ServerFrame::Released {
            id: None,
            user: name("ana"),
            agent: name("zed"),
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
        registry.committed(Committed::Sent {
            origin: Origin {
                conn: ana.id,
                request: Some(RequestId::Str("r1".into())),
            },
            message: message(1, "ana", None),
            taken_by: None,
            replayed: false,
        });
        assert_eq!(types(&alice.frames()), ["message"]);
        assert_eq!(types(&bob.frames()), ["message"]);
        assert_eq!(types(&ana.frames()), ["sent"]);
        assert_eq!(types(&ana_phone.frames()), ["message"]);
        assert!(cy.frames().is_empty(), "another user sees nothing");
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
        registry.committed(Committed::Sent {
            origin: Origin {
                conn: alice.id,
                request: None,
            },
            message: message(1, "ana", Some("alice")),
            taken_by: Some(name("alice")),
            replayed: false,
        });
        assert_eq!(types(&alice.frames()), ["assigned", "sent"]);
        assert_eq!(types(&bob.frames()), ["assigned", "message"]);
        assert_eq!(types(&ana.frames()), ["assigned", "message"]);
    }

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
        assert_eq!(
            alice.frames(),
            [ServerFrame::Presence {
                role: Role::User,
                name: name("ana"),
                online: false
            }]
        );
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

    /// A sign-in can race a rotation (verified with the old token, registered
    /// after the change was seen): the next snapshot still closes it. A
    /// sign-in with the new token registering before any snapshot shows it
    /// is left alone: the database it was checked against is newer.
    #[test]
    fn token_snapshots_close_stale_connections_whenever_they_registered() {
        let mut registry = Registry::default();
        let alice = Identity {
            role: Role::Agent,
            name: name("alice"),
        };
        registry.credentials(
            HashMap::from([(name("alice"), Some(b"old".to_vec()))]),
            Instant::now(),
        );
        // Rotated to "new" in the database; the snapshot still says "old".
        let (tx, _fresh) = outbox(16, usize::MAX);
        registry.connect(1, alice.clone(), b"new".to_vec(), tx);
        assert!(
            registry.peers.contains_key(&1),
            "not judged by an old snapshot"
        );
        let (tx, mut late) = outbox(16, usize::MAX);
        registry.connect(2, alice, b"old".to_vec(), tx);
        registry.credentials(
            HashMap::from([(name("alice"), Some(b"new".to_vec()))]),
            Instant::now(),
        );
        assert!(registry.peers.contains_key(&1), "the new token is fine");
        assert!(
            !registry.peers.contains_key(&2),
            "the late old-token sign-in is closed"
        );
        let last = late.try_recv().expect("told why");
        assert!(last.last);
        assert!(String::from_utf8_lossy(&last.to_bytes()).contains("unauthorized"));
        // The watcher read the tokens, a sign-in registered, then the (older)
        // snapshot arrived: it does not judge that sign-in.
        let read_before = Instant::now() - std::time::Duration::from_millis(1);
        let (tx, _newer) = outbox(16, usize::MAX);
        let alice = Identity {
            role: Role::Agent,
            name: name("alice"),
        };
        registry.connect(3, alice, b"newer".to_vec(), tx);
        registry.credentials(
            HashMap::from([(name("alice"), Some(b"new".to_vec()))]),
            read_before,
        );
        assert!(
            registry.peers.contains_key(&3),
            "judged by the next snapshot, not an older one"
        );
        registry.credentials(HashMap::from([(name("alice"), None)]), Instant::now());
        assert!(
            !registry.peers.contains_key(&1),
            "removed agents are closed"
        );
    }

    #[test]
    fn a_user_hears_an_agent_count_that_changed_before_it_subscribed() {
        let mut registry = Registry::default();
        let (tx, mut ana) = outbox(16, usize::MAX);
        let ana_identity = Identity {
            role: Role::User,
            name: name("ana"),
        };
        assert_eq!(registry.connect(1, ana_identity.clone(), vec![], tx), 0);
        let _alice = join(&mut registry, 2, Role::Agent, "alice", 16);
        let _bo = join(&mut registry, 3, Role::User, "bo", 16);
        registry.committed(Committed::Subscribed {
            origin: Origin {
                conn: 1,
                request: None,
            },
            identity: ana_identity,
            backlog: vec![],
            truncated: false,
            held: vec![],
        });
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

    #[test]
    fn a_full_outbox_cuts_off_only_that_connection() {
        let mut registry = Registry::default();
        let stuck = join(&mut registry, 1, Role::Agent, "stuck", 2);
        let mut alice = join(&mut registry, 2, Role::Agent, "alice", 64);
        let mut ana = join(&mut registry, 3, Role::User, "ana", 64);
        for id in 1..=5 {
            registry.committed(Committed::Sent {
                origin: Origin {
                    conn: ana.id,
                    request: None,
                },
                message: message(id, "ana", None),
                taken_by: None,
                replayed: false,
            });
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

    /// A revoked agent is told why even when its outbox is full: not
    /// `slow_consumer`, which its session would otherwise assume.
    #[tokio::test]
    async fn a_revoked_agent_with_a_full_outbox_still_hears_why() {
        let mut registry = Registry::default();
        // Room for ana's presence and two messages: full, not yet cut off.
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 3);
        let _ana = join(&mut registry, 2, Role::User, "ana", 64);
        for id in 1..=2 {
            registry.committed(Committed::Sent {
                origin: Origin {
                    conn: 2,
                    request: None,
                },
                message: message(id, "ana", None),
                taken_by: None,
                replayed: false,
            });
        }
        assert!(registry.peers.contains_key(&1), "full, not cut off");
        registry.credentials(HashMap::from([(name("alice"), None)]), Instant::now());
        assert!(!registry.peers.contains_key(&1));
        let mut kinds = Vec::new();
        while let Some(out) = alice.rx.recv().await {
            let frame: ServerFrame = serde_json::from_slice(&out.to_bytes()).expect("a frame");
            let kind = match frame {
                ServerFrame::Error { code, .. } => code.as_str(),
                frame => types(&[frame])[0],
            };
            kinds.push((kind, out.last));
        }
        assert_eq!(
            kinds,
            [
                ("presence", false),
                ("message", false),
                ("message", false),
                ("unauthorized", true)
            ]
        );
    }
}
