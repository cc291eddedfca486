//! One node: the one place that wires storage, fan-out and the credential
//! watcher together, and supervises them.
//!
//! Storage and fan-out do not know each other ([`crate::event`] is all they
//! share): here they are joined by a bus, [`crate::fanout::bus::LocalBus`]:
//! the store publishes each commit on it, and the router applies its feed.
//! [`crate::run`] and [`crate::testing`] both start a node this way, so the
//! two cannot drift apart.
//!
//! Supervision: the router task and the writer thread live as long as the
//! node. If either ends while the node runs (a panic), the node is
//! *failing*: [`Node::failed`] resolves with the reason, and the server
//! stops with an error instead of serving clients it can no longer answer.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::event::NodeId;
use crate::fanout::Router;
use crate::fanout::bus::Feed;
use crate::fanout::bus::LocalBus;
use crate::fanout::cluster_feed;
use crate::fanout::members::ClusterStart;
use crate::fanout::nats_bus::{self, BusError, NatsBus, NatsFeed};
use crate::lease::Lease;
use crate::metrics::Observed;
use crate::metrics::cluster::{ClusterCounts, ClusterObserved};
use crate::priority::PriorityRules;
use crate::services::{Services, SharedServices};
use crate::store::shared_feed::LEASE;
use crate::store::{
    Durability, Location, OpenError, SharedDatabase, Store, StoreError, StoreThreads,
};
use crate::{auto_release, credentials};

/// How long a starting cluster node waits for removed agents'
/// conversations to be released before it serves anyway.
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How often it looks whether they are.
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// A running node: its shared services and the threads behind them.
pub struct Node {
    services: SharedServices,
    store_threads: StoreThreads,
    /// Cancelled on [`Node::stop`]: from then on the router and the writer
    /// end because they are told to.
    stopping: CancellationToken,
    failure: Failure,
    watcher: JoinHandle<()>,
    /// A cluster node's id and the task renewing its lease: on a clean
    /// stop the lease is given up rather than left to run out.
    lease: Option<(NodeId, JoinHandle<()>)>,
    /// A cluster node's figures for the operator port, and its bus's state.
    cluster: Option<(Arc<ClusterCounts>, Option<watch::Receiver<bool>>)>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Why a node failed, once it has.
#[derive(Clone, Default)]
struct Failure {
    happened: CancellationToken,
    reason: Arc<Mutex<Option<&'static str>>>,
}

impl Failure {
    fn fail(&self, reason: &'static str) {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
        self.happened.cancel();
    }

    fn reason(&self) -> Option<&'static str> {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Node {
    /// Opens the database at `db` (SQLite or PostgreSQL) and starts the router, the storage
    /// threads, the credential watcher and their supervisor. Call from
    /// within a tokio runtime.
    pub fn start(
        db: &Location,
        durability: Durability,
        config: Config,
        rules: PriorityRules,
    ) -> Result<Node, OpenError> {
        let (sink, own) = LocalBus::new();
        let opened = Store::open_at(db, durability, sink)?;
        Ok(Node::assemble(opened, own, None, config, rules))
    }

    /// [`Node::start`], on the cluster's bus at `nats` when one is given
    /// (with PostgreSQL: the node then hears other nodes' commits on it, on
    /// its help desk's subject). On PostgreSQL, with a bus or without, the
    /// router's feed is the cluster feed (`fanout/cluster_feed.rs`): this
    /// node's commits merged in position order with every other node's.
    pub async fn start_with_bus(
        db: &Location,
        nats: Option<&str>,
        durability: Durability,
        config: Config,
        rules: PriorityRules,
    ) -> Result<Node, StartError> {
        let (sink, own) = LocalBus::new();
        let opened = Store::open_at(db, durability, sink)?;
        let bus = match (&opened.2, nats) {
            (Some(shared), Some(url)) => {
                let name = format!("switchboard node {}", shared.node.0);
                let subject = nats_bus::feed_subject(&shared.cluster);
                Some(NatsBus::connect(url, &name, subject).await?)
            }
            _ => None,
        };
        Ok(Node::assemble(opened, own, bus, config, rules))
    }

    /// Starts the rest on an open store: the router on its feed (the
    /// cluster feed on a shared database), the lease, the credential
    /// watcher, and their supervisor.
    fn assemble(
        (store, store_threads, shared): (Store, StoreThreads, Option<SharedDatabase>),
        own: Feed,
        bus: Option<(NatsBus, NatsFeed)>,
        config: Config,
        rules: PriorityRules,
    ) -> Node {
        let stopping = CancellationToken::new();
        let mut cluster = None;
        let mut feed_task = None;
        let (router, router_task) = match &shared {
            Some(shared) => {
                let counts = Arc::new(ClusterCounts::default());
                cluster = Some((Arc::clone(&counts), bus.as_ref().map(|(bus, _)| bus.up())));
                // Ends with the writer; supervised, for a panic.
                let (feed, task) = cluster_feed::spawn(
                    own,
                    shared.node,
                    shared.start,
                    shared.feed.clone(),
                    bus,
                    Arc::clone(&counts),
                );
                feed_task = Some(task);
                let start = ClusterStart {
                    applied: shared.start,
                    members: shared.members.clone(),
                };
                let started = Router::spawn(feed, config.presence_grace, shared.node, Some(start));
                tracing::info!(node = shared.node.0, "joined the cluster on this database");
                started
            }
            None => Router::spawn(own, config.presence_grace, NodeId::LOCAL, None),
        };
        let failure = Failure::default();
        tokio::spawn(supervise(
            router_task,
            feed_task,
            store_threads.writer_stopped(),
            stopping.clone(),
            failure.clone(),
        ));
        let services = Arc::new(Services::new(store, router, config, rules));
        let mut lease_task = None;
        if let (Some(shared), Some((counts, _))) = (&shared, &cluster) {
            let lease = Lease {
                node: shared.node,
                feed: shared.feed.clone(),
                store: services.store.clone(),
                router: services.router.clone(),
                counts: Arc::clone(counts),
                records: Arc::clone(&services.records),
            };
            lease_task = Some((shared.node, tokio::spawn(lease.keep(stopping.clone()))));
        } else {
            tokio::spawn(crate::lease::keep_records_true(
                services.store.clone(),
                Arc::clone(&services.records),
                stopping.clone(),
            ));
        }
        let watcher = tokio::spawn(credentials::watch(
            services.store.clone(),
            services.router.clone(),
            stopping.clone(),
        ));
        tokio::spawn(auto_release::watch(
            services.store.clone(),
            services.config.release_after,
            stopping.clone(),
        ));
        Node {
            services,
            store_threads,
            stopping,
            failure,
            watcher,
            lease: lease_task,
            cluster,
        }
    }

    /// On a shared database (PostgreSQL), releases the conversations of
    /// agents removed while no node ran, before this node serves anyone,
    /// as SQLite's start does in its own transaction (`store/startup.rs`):
    /// the first connections are told of no stale holder and hear no late
    /// `released`. Waits, within [`SETTLE_WAIT`], for the release to
    /// commit and for this node to have applied it; on failure it says so
    /// and serves anyway (the credential watcher releases them within a
    /// poll).
    pub async fn settle_removed_agents(&self) {
        if self.cluster.is_none() {
            return;
        }
        let store = &self.services.store;
        let settled = tokio::time::timeout(SETTLE_WAIT, async {
            let mut asked = false;
            while store.removed_agents_hold_conversations().await? {
                if !asked {
                    store.release_removed_agents().await?;
                    asked = true;
                }
                tokio::time::sleep(SETTLE_POLL).await;
            }
            self.services
                .catch_up()
                .await
                .map_err(|_| StoreError::NotCommitted)
        })
        .await;
        match settled {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(
                %error,
                "cannot release removed agents' conversations before serving; the credential \
                 watcher will"
            ),
            Err(_) => tracing::warn!(
                "removed agents' conversations not released within {SETTLE_WAIT:?}; the \
                 credential watcher will"
            ),
        }
    }

    /// What every session shares.
    pub fn services(&self) -> SharedServices {
        Arc::clone(&self.services)
    }

    /// Resolves once the router or the writer has ended while the node ran,
    /// with the reason (already logged). Never resolves otherwise.
    pub async fn failed(&self) -> &'static str {
        self.failure.happened.cancelled().await;
        self.failure
            .reason()
            .unwrap_or("a storage or routing thread stopped")
    }

    /// Why the node failed, if it did.
    pub fn failure(&self) -> Option<&'static str> {
        self.failure.reason()
    }

    /// What the operator port (`--metrics-listen`) reads: the counts the
    /// sessions, the router and the writer keep, and the node's health.
    pub fn observed(&self) -> Observed {
        let failure = self.failure.clone();
        Observed {
            sessions: Arc::clone(&self.services.counts),
            fanout: self.services.router.counts(),
            writer: self.services.store.writer_health(),
            failure: Box::new(move || failure.reason()),
            draining: CancellationToken::new(),
            cluster: self
                .cluster
                .as_ref()
                .map(|(counts, bus_up)| ClusterObserved {
                    counts: Arc::clone(counts),
                    router: self.services.router.clone(),
                    bus_up: bus_up.clone(),
                    lease: LEASE,
                }),
        }
    }

    /// Stops the node: the watcher, a cluster node's lease (given up, so
    /// the other nodes need not wait for it to run out), then (once the
    /// last handle of the services is gone, sessions included) the router,
    /// and the writer after it has committed everything queued. Waits for
    /// the storage threads when `wait` is set.
    pub async fn stop(self, wait: bool) {
        self.stopping.cancel();
        let _ = self.watcher.await;
        if let Some((node, renewing)) = self.lease {
            // Renewals over first: one still in flight would find the
            // lease gone and take the id again. One hanging on a database
            // that is away leaves the lease to run out.
            match tokio::time::timeout(LEASE, renewing).await {
                Ok(_) => {
                    // Queued within a lease, or left: a writer stuck on a
                    // database that is away must not hold the exit up.
                    let queued =
                        tokio::time::timeout(LEASE, self.services.store.retire_node(node)).await;
                    if !matches!(queued, Ok(Ok(()))) {
                        tracing::warn!(
                            "cannot give up this node's lease; the other nodes sweep it once it runs out"
                        );
                    }
                }
                Err(_) => tracing::warn!(
                    "this node's lease is still being renewed; the other nodes sweep it once it runs out"
                ),
            }
        }
        drop(self.services);
        if wait {
            let threads = self.store_threads;
            if tokio::task::spawn_blocking(move || threads.join())
                .await
                .is_err()
            {
                tracing::error!("waiting for the storage threads failed");
            }
        }
    }
}

/// Watches the router task and the writer thread until the node stops; if
/// either ends first, logs why and marks the node failed.
async fn supervise(
    router: JoinHandle<()>,
    cluster_feed: Option<JoinHandle<()>>,
    writer_stopped: CancellationToken,
    stopping: CancellationToken,
    failure: Failure,
) {
    let cluster_feed = async {
        match cluster_feed {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    let reason = tokio::select! {
        () = stopping.cancelled() => return,
        ended = router => match ended {
            Err(error) if error.is_panic() => "the router panicked",
            _ => "the router stopped",
        },
        () = writer_stopped.cancelled() => "the storage writer stopped",
        ended = cluster_feed => match ended {
            Err(error) if error.is_panic() => "the cluster feed panicked",
            _ => "the cluster feed stopped",
        },
    };
    if stopping.is_cancelled() {
        return;
    }
    tracing::error!(
        reason,
        "stopping the server: it can no longer route or store messages"
    );
    failure.fail(reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn supervised(router: JoinHandle<()>, writer: CancellationToken) -> Option<&'static str> {
        let failure = Failure::default();
        supervise(
            router,
            None,
            writer,
            CancellationToken::new(),
            failure.clone(),
        )
        .await;
        failure.reason()
    }

    #[tokio::test]
    async fn a_router_panic_fails_the_node() {
        let router = tokio::spawn(async { panic!("a bug") });
        let reason = supervised(router, CancellationToken::new()).await;
        assert_eq!(reason, Some("the router panicked"));
    }

    #[tokio::test]
    async fn a_writer_that_stops_while_the_node_runs_fails_it() {
        let router = tokio::spawn(std::future::pending::<()>());
        let writer = CancellationToken::new();
        writer.cancel();
        assert_eq!(
            supervised(router, writer).await,
            Some("the storage writer stopped")
        );
    }

    /// On a normal stop, the router and the writer end because they were
    /// told to: that is no failure.
    #[tokio::test]
    async fn stopping_is_not_failing() {
        let stopping = CancellationToken::new();
        let failure = Failure::default();
        let router = tokio::spawn(async {});
        stopping.cancel();
        supervise(
            router,
            None,
            CancellationToken::new(),
            stopping,
            failure.clone(),
        )
        .await;
        assert_eq!(failure.reason(), None);
    }

    /// A whole node: started, then stopped, with every thread joined and no
    /// failure reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_starts_and_stops_cleanly() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let node = Node::start(
            &Location::Sqlite(dir.path().join("node.db")),
            Durability::Normal,
            Config::default(),
            PriorityRules::default(),
        )
        .expect("starts");
        node.stop(true).await;
    }

    /// The same on PostgreSQL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_on_postgres_starts_and_stops_cleanly() {
        let Some(url) = switchboard_tests::fresh_database() else {
            return;
        };
        let node = Node::start(
            &Location::Postgres(url.parse().expect("a valid URL")),
            Durability::Full,
            Config::default(),
            PriorityRules::default(),
        )
        .expect("starts");
        node.stop(true).await;
    }
}
