//! Fan-out: who is online, and which connection gets which frame.
//!
//! [`Router`] is a cloneable handle to one task that owns the [`Registry`].
//! Storage hands it each commit in commit order (it is the node's
//! [`CommitSink`]), and it pushes each
//! frame, encoded once and shared as [`Bytes`], into the bounded outboxes of
//! the connections that may see it. It never waits on a connection: a full
//! outbox means that client is not reading, and it is disconnected
//! (`slow_consumer`) rather than allowed to hold up everyone else.
//!
//! Rules (docs/protocol.md): a message goes to every subscribed agent
//! connection and the user's subscribed connections, except the sender's
//! connection, which gets `sent` instead. `assigned` goes to all of those,
//! the sender's too, before the message.
//!
//! Backlog meets live: a `subscribe` first registers here
//! ([`Router::subscribing`]); from then on the connection's live events are
//! held back with their batch's [`Seq`] while a reader reads its backlog. The
//! backlog comes with the position of the snapshot it was read from, and
//! only held events of later batches follow it: nothing twice, nothing
//! missed, however far the reader's snapshot is ahead of the router.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use switchboard_protocol::codec::{EncodedMessage, encode_into};
use switchboard_protocol::{Message, Name, Role, ServerFrame};
use tokio::sync::{mpsc, oneshot};

use tokio_util::sync::CancellationToken;

use super::outbox::{OutboxSender, Outgoing, Payload, PushError};
use crate::error::RequestError;
use crate::event::{Answer, Commit, CommitSink, ConnId, Event, Origin, Seq};
use crate::identity::Identity;
use crate::store::Backlog;

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
    Committed(Commit),
    /// A connection is about to read its backlog: hold its live events.
    Subscribing {
        conn: ConnId,
        reply: oneshot::Sender<()>,
    },
    /// Its backlog, read (`None`: the read failed).
    Subscribed {
        origin: Origin,
        identity: Identity,
        backlog: Option<Backlog>,
    },
    Credentials(AgentTokens, Instant),
    /// Panics the task: the supervision tests' stand-in for a bug.
    #[cfg(test)]
    Crash,
}

/// The handle sessions and the writer hold.
#[derive(Clone)]
pub struct Router {
    commands: mpsc::Sender<Command>,
    /// Unbounded so a session can say goodbye from `Drop`; each connection
    /// sends exactly one, so it is bounded by the connection limit.
    disconnects: mpsc::UnboundedSender<ConnId>,
    /// Cancelled once the task has ended, however it ended.
    stopped: CancellationToken,
}

/// Cancels its token when dropped: on the task's return, and during a
/// panic's unwinding before the registry (declared earlier) drops every
/// outbox, so a session that finds its outbox closed can tell why.
struct StopGuard(CancellationToken);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Router {
    /// Starts the router task; it stops when every handle is gone. The
    /// handle to the task is for supervision: it ends early only by a panic.
    pub fn spawn() -> (Router, tokio::task::JoinHandle<()>) {
        let (commands, mut command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (disconnects, mut disconnect_rx) = mpsc::unbounded_channel();
        let stopped = CancellationToken::new();
        let guard = StopGuard(stopped.clone());
        let task = tokio::spawn(async move {
            let mut registry = Registry::default();
            let _guard = guard;
            loop {
                tokio::select! {
                    command = command_rx.recv() => match command {
                        Some(Command::Connect { conn, identity, credential, outbox, reply }) => {
                            let _ = reply.send(registry.connect(conn, identity, credential, outbox));
                        }
                        Some(Command::Committed(commit)) => registry.committed(commit),
                        Some(Command::Subscribing { conn, reply }) => {
                            registry.subscribing(conn);
                            let _ = reply.send(());
                        }
                        Some(Command::Subscribed { origin, identity, backlog }) => {
                            registry.subscribed(origin, identity, backlog);
                        }
                        Some(Command::Credentials(tokens, read_at)) => registry.credentials(tokens, read_at),
                        #[cfg(test)]
                        Some(Command::Crash) => panic!("crash requested by a test"),
                        None => break,
                    },
                    Some(conn) = disconnect_rx.recv() => registry.disconnect(conn),
                }
            }
            tracing::debug!("router stopped");
        });
        let router = Router {
            commands,
            disconnects,
            stopped,
        };
        (router, task)
    }

    /// Whether the router task has ended: a closed outbox then means the
    /// server is failing, not that this connection was too slow.
    pub fn has_stopped(&self) -> bool {
        self.stopped.is_cancelled()
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

    /// Holds back the connection's live events until its backlog arrives
    /// ([`Router::subscribed`]). Read the backlog only after this returns:
    /// its snapshot then includes every batch the router routed before.
    /// `false` if the router has stopped.
    pub async fn subscribing(&self, conn: ConnId) -> bool {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Subscribing { conn, reply })
            .await
            .is_err()
        {
            return false;
        }
        answer.await.is_ok()
    }

    /// A backlog read after [`Router::subscribing`] (`None`: the read
    /// failed, and the subscriber is answered `internal`).
    pub async fn subscribed(&self, origin: Origin, identity: Identity, backlog: Option<Backlog>) {
        let _ = self
            .commands
            .send(Command::Subscribed {
                origin,
                identity,
                backlog,
            })
            .await;
    }
}

/// The writer's thread hands each commit here, blocking when the router
/// lags (back-pressure, not loss).
impl CommitSink for Router {
    fn committed(&self, commit: Commit) {
        if self
            .commands
            .blocking_send(Command::Committed(commit))
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
    /// While its backlog is read: the live events held back, each with its
    /// batch's position (see the module documentation).
    pending: Option<Held>,
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
    /// Connections subscribing for the first time, their backlog being
    /// read: they get the events of the users they will see, held back.
    first_subscribes: BTreeSet<ConnId>,
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

/// Live events held back while a connection's backlog is read.
#[derive(Default)]
struct Held {
    events: Vec<(Seq, Bytes)>,
    bytes: usize,
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
            pending: None,
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
        let last = encode(&RequestError::Revoked.to_frame(None));
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

    /// One commit: its events for everyone concerned, and the answers for
    /// their requesters, each in request order (an answer comes after the
    /// events of the requests before it).
    pub fn committed(&mut self, commit: Commit) {
        let Commit { batch, answers } = commit;
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
            } => {
                // Others first, the requester last (see `sent`).
                let event = encode(&ServerFrame::Released {
                    id: None,
                    user: user.clone(),
                    agent: agent.clone(),
                });
                self.fan_out(
                    seq,
                    &user,
                    origin.as_ref().map(|origin| origin.conn),
                    &event,
                );
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
        }
    }

    fn answer(&mut self, answer: Answer) {
        match answer {
            Answer::Refused { origin, refusal } => {
                let error = RequestError::from(refusal);
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
                user: message.user.clone(),
                agent,
            });
            self.fan_out(seq, &message.user, None, &assigned);
        }
        let encoded = EncodedMessage::new(&message)
            .expect("server frames always serialise: no maps with non-string keys");
        // Everyone else first, the sender last: once the sender has its
        // reply, every other connection's event is already queued, so a
        // `ping` on any of them is a barrier (docs/protocol.md, point 16).
        self.fan_out(seq, &message.user, Some(origin.conn), &encoded.event());
        if self.peers.contains_key(&origin.conn) {
            let sent = encoded
                .sent(origin.request.as_ref())
                .expect("server frames always serialise: no maps with non-string keys");
            self.push(origin.conn, sent, true);
        }
    }

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
    pub fn subscribed(&mut self, origin: Origin, identity: Identity, backlog: Option<Backlog>) {
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
                for (_, bytes) in held_back.events {
                    self.push(origin.conn, bytes, false);
                }
            }
            let error = RequestError::Internal;
            self.reply(&origin, &error.to_frame(origin.request.clone()));
            self.settle();
            return;
        };
        // Backlog, state, then `subscribed`, as one item of the outbox: it
        // cannot be split by live events, nor overflow the outbox by its
        // length. The session encodes the backlog itself (`Payload::Backlog`).
        let mut chunk = BytesMut::new();
        let count = u32::try_from(backlog.messages.len()).unwrap_or(u32::MAX);
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
        for (user, agent) in backlog.held {
            encode_into(&ServerFrame::Assigned { user, agent }, &mut chunk)
                .expect("server frames always serialise");
        }
        let subscribed = ServerFrame::Subscribed {
            id: origin.request.clone(),
            backlog: count,
            truncated: backlog.truncated,
        };
        encode_into(&subscribed, &mut chunk).expect("server frames always serialise");
        let role = identity.role;
        if first_time {
            self.mark_subscribed(origin.conn, identity);
        }
        // Last, so what this subscription told others is queued before the
        // subscriber hears `subscribed` (see `sent`).
        let payload = Payload::Backlog {
            messages: backlog.messages,
            then: chunk.freeze(),
        };
        self.push_outgoing(origin.conn, Outgoing::reply(payload));
        for (seq, bytes) in held_back.events {
            if seq > backlog.as_of {
                self.push(origin.conn, bytes, false);
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

    /// A batch's event (at `seq`) to every subscribed agent connection and
    /// every subscribed connection of `user`, except `skip`; held back for
    /// those whose backlog is being read.
    fn fan_out(&mut self, seq: Seq, user: &Name, skip: Option<ConnId>, bytes: &Bytes) {
        let mut targets: Vec<ConnId> = self.agent_conns.iter().copied().collect();
        if let Some(conns) = self.user_conns.get(user) {
            targets.extend(conns.iter().copied());
        }
        for conn in &self.first_subscribes {
            if let Some(peer) = self.peers.get(conn)
                && (peer.identity.role == Role::Agent || peer.identity.name == *user)
            {
                targets.push(*conn);
            }
        }
        for conn in targets {
            if Some(conn) != skip {
                self.deliver(seq, conn, bytes.clone());
            }
        }
    }

    /// An event now, or held back while the connection's backlog is read. A
    /// connection holding back more than its outbox could take is as slow
    /// as one whose outbox is full.
    fn deliver(&mut self, seq: Seq, conn: ConnId, bytes: Bytes) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(held) = &mut peer.pending else {
            self.push(conn, bytes, false);
            return;
        };
        held.bytes += bytes.len();
        held.events.push((seq, bytes));
        if held.events.len() > peer.outbox.max_frames() || held.bytes > peer.outbox.max_bytes() {
            tracing::warn!(conn, name = %peer.identity.name, "too many events held back: disconnecting a slow consumer");
            self.dropped.push(conn);
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
    use crate::event::{Batch, NodeId};
    use crate::fanout::outbox::{OutboxReceiver, outbox};
    use switchboard_protocol::{Body, Priority, RequestId, Timestamp};

    /// A commit of one event, at `seq`.
    fn commit_at(seq: u64, event: Event) -> Commit {
        Commit {
            batch: Some(Batch {
                seq: Seq(seq),
                events: vec![event],
            }),
            answers: Vec::new(),
        }
    }

    /// A commit of one event (its position matters only to subscribers).
    fn commit(event: Event) -> Commit {
        commit_at(1, event)
    }

    fn origin(conn: ConnId, request: Option<RequestId>) -> Origin {
        Origin {
            node: NodeId::LOCAL,
            conn,
            request,
        }
    }

    /// An empty backlog read at `as_of`.
    fn backlog_at(as_of: u64, messages: Vec<Message>) -> Option<Backlog> {
        Some(Backlog {
            messages,
            truncated: false,
            held: vec![],
            as_of: Seq(as_of),
        })
    }

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
        registry.subscribing(id);
        registry.subscribed(origin(id, None), identity, backlog_at(0, vec![]));
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
        registry.committed(commit(Event::Released {
            origin: None,
            user: name("ana"),
            agent: name("zed"),
        }));
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
        registry.subscribing(1);
        registry.subscribed(origin(1, None), ana_identity, backlog_at(0, vec![]));
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

    /// A revoked agent is told why even when its outbox is full: not
    /// `slow_consumer`, which its session would otherwise assume.
    #[tokio::test]
    async fn a_revoked_agent_with_a_full_outbox_still_hears_why() {
        let mut registry = Registry::default();
        // Room for ana's presence and two messages: full, not yet cut off.
        let mut alice = join(&mut registry, 1, Role::Agent, "alice", 3);
        let _ana = join(&mut registry, 2, Role::User, "ana", 64);
        for id in 1..=2 {
            registry.committed(commit(Event::Sent {
                origin: origin(2, None),
                message: message(id, "ana", None),
                taken_by: None,
            }));
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

    /// The subscribe tests' agent alice, registered but not yet subscribed.
    fn alice_connected(registry: &mut Registry, id: ConnId) -> Conn {
        let (tx, rx) = outbox(64, usize::MAX);
        registry.connect(id, alice_identity(), b"t".to_vec(), tx);
        Conn { id, rx }
    }

    fn alice_identity() -> Identity {
        Identity {
            role: Role::Agent,
            name: name("alice"),
        }
    }

    fn user_message_at(seq: u64, conn: ConnId) -> Commit {
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
    fn message_ids(frames: &[ServerFrame]) -> Vec<u64> {
        frames
            .iter()
            .filter_map(|frame| match frame {
                ServerFrame::Message { message } => Some(message.id),
                _ => None,
            })
            .collect()
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
            backlog_at(5, vec![message(5, "ana", None)]),
        );
        registry.committed(user_message_at(7, 9));
        let frames = alice.frames();
        assert_eq!(message_ids(&frames), [5, 6, 7]);
        assert_eq!(
            types(&frames),
            ["message", "presence", "subscribed", "message", "message"]
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

    /// A user's first subscribe holds back only its own conversation.
    #[test]
    fn a_subscribing_user_holds_back_only_its_own_conversation() {
        let mut registry = Registry::default();
        let (tx, rx) = outbox(16, usize::MAX);
        let bo = Identity {
            role: Role::User,
            name: name("bo"),
        };
        registry.connect(3, bo.clone(), vec![], tx);
        let mut bo_conn = Conn { id: 3, rx };
        registry.subscribing(3);
        registry.committed(user_message_at(5, 9)); // ana's
        registry.subscribed(origin(3, None), bo, backlog_at(4, vec![]));
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
        registry.subscribed(origin(alice.id, None), alice_identity(), None);
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

    /// If the router dies, its sessions can tell: by the time an outbox is
    /// seen closed, `has_stopped` is already true (so no client is told
    /// `slow_consumer` for the server's own failure), and the task's handle
    /// reports the panic to the supervisor.
    #[tokio::test]
    async fn a_router_that_dies_says_so_before_its_outboxes_close() {
        let (router, task) = Router::spawn();
        let (tx, mut rx) = outbox(4, usize::MAX);
        router
            .connect(1, alice_identity(), b"t".to_vec(), tx)
            .await
            .expect("connected");
        assert!(!router.has_stopped());
        router.commands.send(Command::Crash).await.expect("sent");
        assert!(rx.recv().await.is_none(), "the outbox closes");
        assert!(router.has_stopped());
        let ended = task.await.expect_err("it panicked");
        assert!(ended.is_panic());
    }
}
