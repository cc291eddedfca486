//! [`FeedBackend`] for PostgreSQL: the feed thread's own connection, for
//! read-backs of the feed and the node's lease.

use super::conn::Conn;
use super::queries::{feed, nodes};
use super::{PostgresError, Result};
use std::time::Duration;

use crate::event::{NodeId, Seq};
use crate::store::shared_feed::{FeedBackend, Renewal, StoredBatch};

pub(in crate::store) struct PostgresFeed {
    conn: Conn,
}

impl PostgresFeed {
    pub(in crate::store) fn new(conn: Conn) -> Self {
        Self { conn }
    }
}

impl FeedBackend for PostgresFeed {
    type Error = PostgresError;

    /// A connection lost since the last read is opened again first.
    fn after(&mut self, after: Seq, limit: u32) -> Result<Vec<StoredBatch>> {
        self.conn.reconnect_if_closed();
        self.conn
            .retrying_if_lost(|conn| feed::after(conn, after, limit))
    }

    fn prune(&mut self, kept: Duration, limit: u32) -> Result<u64> {
        feed::prune(&mut self.conn, kept, limit)
    }

    fn renew(&mut self, node: NodeId, lease: Duration) -> Result<Renewal> {
        self.conn.reconnect_if_closed();
        self.conn
            .retrying_if_lost(|conn| nodes::renew(conn, node, lease))
    }

    fn rejoin(&mut self, node: NodeId, lease: Duration) -> Result<()> {
        self.conn.reconnect_if_closed();
        nodes::rejoin(&mut self.conn, node, lease)
    }
}
