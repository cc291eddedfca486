//! [`FeedBackend`] for PostgreSQL: the feed thread's own connection.

use switchboard_protocol::Timestamp;

use super::conn::Conn;
use super::queries::feed;
use super::{PostgresError, Result};
use crate::event::Seq;
use crate::store::shared_feed::{FeedBackend, StoredBatch};

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

    fn prune(&mut self, before: Timestamp) -> Result<u64> {
        feed::prune(&mut self.conn, before)
    }
}
