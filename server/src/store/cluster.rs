//! The store's side of cluster mode (issue 16): opening a PostgreSQL
//! database that other nodes share, with what the node needs to hear them
//! ([`SharedDatabase`]), and the handle's requests only a cluster makes (a
//! connection's record, the sweep of expired nodes, the barrier's
//! position).

use tokio::sync::oneshot;

use super::postgres::url::PostgresUrl;
use super::reader::ReadJob;
use super::threads::start_threads;
use super::{
    LiveConnections, OpenError, READERS, SharedFeed, Store, StoreError, StoreThreads, WriteJob,
    shared_feed, writer,
};
use crate::event::{CommitSink, Member, NodeId, Seq};

/// What a node needs to share its database with other nodes (cluster
/// mode): its id among them, the position its feed starts after (every
/// later commit, its own or another node's, is delivered from there), and
/// the feed's reader.
pub struct SharedDatabase {
    pub node: NodeId,
    pub start: Seq,
    /// Every node's subscribed connections as of `start`.
    pub members: Vec<Member>,
    pub feed: SharedFeed,
    /// The help desk's id: its nodes' subject on the bus.
    pub cluster: String,
}

impl Store {
    /// [`Store::open`] on PostgreSQL: the writer and each reader on a
    /// connection of their own.
    ///
    /// The synchronous client drives each call on a small runtime of its
    /// own, which tokio refuses to start on a thread of another runtime, and
    /// `Node::start` runs on one. So the connections are made, and the
    /// startup transaction run, on a thread of their own; from then on each
    /// is used only on its storage thread.
    pub(super) fn open_postgres(
        url: &PostgresUrl,
        sink: impl CommitSink,
    ) -> Result<(Store, StoreThreads, SharedDatabase), OpenError> {
        let opened = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let opened = super::postgres::open_store(url, READERS)?;
                    let failed =
                        |error: super::postgres::PostgresError| OpenError::PostgresSchema {
                            url: url.to_string(),
                            reason: error.to_string(),
                        };
                    // No startup release here (unlike SQLite): other nodes
                    // must hear it, in the feed, and this node's start
                    // position is already read. The credential watcher has
                    // the writer release them within a second (a removed
                    // agent holds nothing meanwhile: `Tables::find_user`).
                    let writer =
                        writer::Writer::new(opened.writer, Box::new(sink)).map_err(failed)?;
                    let shared = (opened.feed, opened.node, opened.members, opened.start);
                    Ok((writer, opened.readers, shared, opened.cluster))
                })
                .join()
        });
        let (writer, readers, (feed, node, members, start), cluster) =
            opened.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        // Not joined on shutdown: it ends once the cluster feed lets go.
        let (feed, _thread) = shared_feed::start(feed).map_err(OpenError::Thread)?;
        let (store, threads) = start_threads(writer, readers, None)?;
        let shared = SharedDatabase {
            node,
            start,
            members,
            feed,
            cluster,
        };
        Ok((store, threads, shared))
    }

    /// Records that a cluster node's connection began counting for
    /// presence, and waits for the commit: the other nodes hear it through
    /// the feed, at a position below every later one.
    pub async fn record_member_open(&self, member: Member) -> Result<(), StoreError> {
        let (reply, committed) = oneshot::channel();
        self.write(WriteJob::Member {
            member,
            open: true,
            reply: Some(reply),
        })
        .await?;
        committed.await.map_err(|_| StoreError::Stopped)?
    }

    /// Records that a cluster node's connection stopped counting, without
    /// waiting (it is called as a connection goes, from `Drop`): queued
    /// behind its open, which the writer keeps in order. `false` if the
    /// queue was full or the writer gone (the record then stays until the
    /// node's lease ends).
    pub fn record_member_closed(&self, member: Member) -> bool {
        self.writes
            .try_send(WriteJob::Member {
                member,
                open: false,
                reply: None,
            })
            .is_ok()
    }

    /// The position of the newest commit in the database: where this
    /// node's router must have got to for a barrier (cluster mode).
    pub async fn position(&self) -> Result<Seq, StoreError> {
        self.read(|reply| ReadJob::Position { reply }).await
    }

    /// Forgets `node`'s connection records but those of the connections
    /// `live` lists when the writer gets to it; the other nodes hear the
    /// forgotten ones go.
    pub async fn reconcile_members(
        &self,
        node: NodeId,
        live: LiveConnections,
    ) -> Result<(), StoreError> {
        self.write(WriteJob::ReconcileMembers { node, live }).await
    }

    /// Sweeps the nodes whose lease ran out; their connections' offline
    /// events go through the feed.
    pub async fn sweep_expired_nodes(&self, sweeper: NodeId) -> Result<(), StoreError> {
        self.write(WriteJob::SweepExpiredNodes { sweeper }).await
    }

    /// Queues the end of `node`'s membership as it stops cleanly (its
    /// lease no longer renewed): committed before the writer stops, like
    /// everything queued ahead of it. A node that cannot commit it (the
    /// database gone) is swept once its lease runs out, as a dead one is.
    pub async fn retire_node(&self, node: NodeId) -> Result<(), StoreError> {
        self.write(WriteJob::RetireNode { node }).await
    }
}
