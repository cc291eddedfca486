//! The router: one task that owns the [`Registry`], and the cloneable
//! [`Router`] handle sessions, the writer and the credentials watcher hold.
//!
//! It applies each commit of its [`Feed`] (the bus's, `bus.rs`) in commit
//! order, and the commands of sessions and the watcher, one at a time, so the
//! registry needs no lock and its rules (`registry.rs`, `deliver.rs`,
//! `subscribe.rs`, `credentials.rs`) need no runtime. It never waits on a
//! connection: a full outbox cuts that connection off. Supervision: the
//! `StopGuard` marks the router stopped however the task ends, even by a
//! panic, before any outbox closes, so a session can tell a failing server
//! from its own slowness ([`Router::has_stopped`]). Presence announcements
//! that fall due later (`presence.rs`) are the one thing it does on a
//! timer: one sleep, reset only when the next due time changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use tokio_util::sync::CancellationToken;

use super::bus::Feed;
use super::credentials::AgentTokens;
use super::members::ClusterStart;
use super::outbox::OutboxSender;
use super::registry::Registry;
use crate::event::Backlog;
use crate::event::{ConnId, NodeId, Origin, Seq};
use crate::identity::Identity;
use crate::metrics::counts::FanoutCounts;

/// Commands waiting for the router task; senders wait when it is full.
const COMMAND_QUEUE: usize = 16_384;

enum Command {
    Connect {
        conn: ConnId,
        identity: Identity,
        credential: Vec<u8>,
        outbox: OutboxSender,
        reply: oneshot::Sender<u32>,
    },
    /// A connection is about to read its backlog: hold its live events.
    Subscribing {
        conn: ConnId,
        reply: oneshot::Sender<()>,
    },
    /// Its backlog, read (`None`: the read failed).
    Subscribed {
        origin: Origin,
        identity: Identity,
        /// The request's `since`.
        since: Option<u64>,
        backlog: Option<Backlog>,
    },
    Credentials(AgentTokens, Instant),
    /// The node lost its lease: close every connection (`members.rs`).
    DismissAll,
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
    /// What the task counts, for the metrics endpoint.
    counts: Arc<FanoutCounts>,
    /// The node this router serves.
    node: NodeId,
    /// The position of the last batch the task applied.
    applied: watch::Receiver<Seq>,
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
    /// Starts the router task on `feed`; it stops when every handle is
    /// gone. The handle to the task is for supervision: it ends early only
    /// by a panic. `presence_grace`: how long a user's last connection may
    /// be gone before agents hear it offline. `node`: which node's
    /// connections it serves ([`NodeId::LOCAL`] alone on SQLite);
    /// `cluster`: where a cluster node's feed starts and every node's
    /// subscribed connections then, to count (`members.rs`).
    pub fn spawn(
        mut feed: Feed,
        presence_grace: Duration,
        node: NodeId,
        cluster: Option<ClusterStart>,
    ) -> (Router, tokio::task::JoinHandle<()>) {
        let (commands, mut command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (disconnects, mut disconnect_rx) = mpsc::unbounded_channel();
        let stopped = CancellationToken::new();
        let guard = StopGuard(stopped.clone());
        let mut registry = Registry::new(presence_grace, node);
        let mut start = Seq::default();
        if let Some(cluster) = cluster {
            registry.join_cluster(cluster.members);
            start = cluster.applied;
        }
        let (applied_tx, applied) = watch::channel(start);
        let counts = Arc::clone(&registry.counts);
        let task = tokio::spawn(async move {
            // Declared before the guard, as the guard's comment requires.
            let mut registry = registry;
            let _guard = guard;
            // Armed for the next presence announcement due, if any.
            let presence_timer = tokio::time::sleep(Duration::ZERO);
            tokio::pin!(presence_timer);
            let mut armed: Option<Instant> = None;
            loop {
                let next = registry.presence_next_due();
                if next != armed {
                    if let Some(at) = next {
                        presence_timer
                            .as_mut()
                            .reset(tokio::time::Instant::from_std(at));
                    }
                    armed = next;
                }
                tokio::select! {
                    command = command_rx.recv() => match command {
                        Some(Command::Connect { conn, identity, credential, outbox, reply }) => {
                            let _ = reply.send(registry.connect(conn, identity, credential, outbox));
                        }
                        Some(Command::Subscribing { conn, reply }) => {
                            registry.subscribing(conn);
                            let _ = reply.send(());
                        }
                        Some(Command::Subscribed { origin, identity, since, backlog }) => {
                            registry.subscribed(origin, identity, since, backlog);
                        }
                        Some(Command::Credentials(tokens, read_at)) => registry.credentials(tokens, read_at),
                        Some(Command::DismissAll) => registry.dismiss_all(),
                        #[cfg(test)]
                        Some(Command::Crash) => panic!("crash requested by a test"),
                        None => break,
                    },
                    // One commit routed in one go, so each recipient's
                    // frames from a group are queued before its session wakes.
                    Some(commit) = feed.next() => {
                        let seq = commit.batch.as_ref().map(|batch| batch.seq);
                        registry.committed(commit);
                        if let Some(seq) = seq {
                            applied_tx.send_replace(seq);
                        }
                    }
                    Some(conn) = disconnect_rx.recv() => registry.disconnect(conn),
                    () = &mut presence_timer, if armed.is_some() => {
                        armed = None;
                        registry.presence_due(Instant::now());
                    }
                }
            }
            tracing::debug!("router stopped");
        });
        let router = Router {
            commands,
            disconnects,
            stopped,
            counts,
            node,
            applied,
        };
        (router, task)
    }

    /// What the router counts (frames queued, refusals it answered), read
    /// by the metrics endpoint.
    pub fn counts(&self) -> Arc<FanoutCounts> {
        Arc::clone(&self.counts)
    }

    /// The node whose connections this router serves: the origin of its
    /// sessions' requests.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Whether this router serves one node of a cluster.
    pub fn in_cluster(&self) -> bool {
        self.node != NodeId::LOCAL
    }

    /// The position of the last batch the task applied.
    pub fn applied_position(&self) -> Seq {
        *self.applied.borrow()
    }

    /// Waits until the task has applied every batch up to `seq` (each
    /// connection's frames of them are queued); `false` if it stopped.
    pub async fn applied(&self, seq: Seq) -> bool {
        let mut applied = self.applied.clone();
        applied.wait_for(|at| *at >= seq).await.is_ok()
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

    /// Closes every connection, telling each why: the node lost its lease.
    pub async fn dismiss_all(&self) {
        let _ = self.commands.send(Command::DismissAll).await;
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
    /// failed, and the subscriber is answered `internal`); `since` is the
    /// request's.
    pub async fn subscribed(
        &self,
        origin: Origin,
        identity: Identity,
        since: Option<u64>,
        backlog: Option<Backlog>,
    ) {
        let _ = self
            .commands
            .send(Command::Subscribed {
                origin,
                identity,
                since,
                backlog,
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::outbox::outbox;
    use crate::fanout::test_support::{alice_identity, backlog_at, name, origin};

    /// A departure is announced by the router's timer once the grace is
    /// over, with no command or commit to wake it.
    #[tokio::test]
    async fn the_router_announces_a_departure_when_its_grace_is_over() {
        let (_bus, feed) = super::super::bus::LocalBus::new();
        let grace = Duration::from_millis(300);
        let (router, _task) = Router::spawn(feed, grace, NodeId::LOCAL, None);
        let join = |conn, identity: Identity| {
            let router = router.clone();
            async move {
                let (tx, rx) = outbox(16, usize::MAX);
                router.connect(conn, identity.clone(), vec![], tx).await;
                router.subscribing(conn).await;
                router
                    .subscribed(origin(conn, None), identity, None, backlog_at(0, vec![]))
                    .await;
                rx
            }
        };
        let mut alice = join(1, alice_identity()).await;
        let ana = Identity {
            role: switchboard_protocol::Role::User,
            name: name("ana"),
            credential: crate::identity::Credential::new(b"t"),
        };
        let _ana = join(2, ana).await;
        // A round trip on the command queue: ana's subscription is applied
        // before her disconnect, which takes another channel.
        router.subscribing(99).await;
        let left = Instant::now();
        router.disconnect(2);
        let mut presence = Vec::new();
        while presence.len() < 2 {
            // (Agents' presence is another matter: alice's own, in her
            // subscription's state, is not a user's.)
            let out = tokio::time::timeout(Duration::from_secs(5), alice.recv())
                .await
                .expect("announced within 5 s")
                .expect("open");
            let bytes = out.to_bytes();
            let text = String::from_utf8_lossy(&bytes);
            presence.extend(
                text.lines()
                    .filter(|l| l.contains("presence") && l.contains("\"role\":\"user\""))
                    .map(String::from),
            );
        }
        assert!(presence[1].contains("\"online\":false"), "{presence:?}");
        assert!(left.elapsed() >= grace, "not before the grace");
    }

    /// If the router dies, its sessions can tell: by the time an outbox is
    /// seen closed, `has_stopped` is already true (so no client is told
    /// `slow_consumer` for the server's own failure), and the task's handle
    /// reports the panic to the supervisor.
    #[tokio::test]
    async fn a_router_that_dies_says_so_before_its_outboxes_close() {
        let (_bus, feed) = super::super::bus::LocalBus::new();
        let (router, task) = Router::spawn(feed, Duration::ZERO, NodeId::LOCAL, None);
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
