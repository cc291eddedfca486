//! The PostgreSQL backend: one node stores in a PostgreSQL database, with
//! the same rules and the same protocol as on SQLite (issue 16, the storage
//! step of cluster mode).
//!
//! What is PostgreSQL's alone lives here: the URL and how it is shown
//! ([`url`], never with its password), a connection with its prepared
//! statements ([`conn`]), the layout and its versioned migrations
//! ([`schema`]), the SQL ([`queries`], one file per table), the rules'
//! [`Tables`](super::rules::Tables) ([`tables`]) and
//! [`Reads`](super::rules::Reads) ([`reads`]), the writer's transactions
//! ([`backend`]) and the `agent` commands' [`admin::PostgresAdmin`].
//!
//! **The sequencer row.** Every write transaction, the writer's and the
//! `agent` commands', first locks the one row of `sb_clock`
//! (`SELECT … FOR UPDATE`) and holds it until it commits. Message ids and
//! the release count, from which positions (`Seq`) are made, are taken from
//! that row. PostgreSQL makes a commit visible before it lets its locks go,
//! so the next writer reads the row only once the previous commit is
//! visible: ids and positions rise strictly in commit order, whatever node
//! commits, and every snapshot holds a prefix of the commits. A sequence
//! (`BIGSERIAL`) would not do: `nextval` is handed out at insert time, so a
//! later id can commit first and a reader of `id > N` skips the earlier one
//! for good (docs/cluster.md, "The sequencer row"). That is what lets
//! several nodes share the database (cluster mode): each transaction reads
//! the row it locks (`clock::begin_locked`) and the writer continues
//! positions from it, never from its own memory.
//!
//! Time stamps come from the database's clock, read in the same statement
//! ([`Clock::pin`](super::rules::Clock)), and continue above
//! `sb_clock.last_ts_us`, so nodes whose clocks differ still stamp in
//! commit order, from one clock.
//!
//! Cluster mode's own tables (schema 2): `sb_feed`, every batch by position
//! for read-backs (`queries/feed.rs`, the feed thread's [`feed`]); `sb_nodes`
//! and `sb_connections`, the nodes' leases and their subscribed
//! connections (`queries/nodes.rs`); `sb_cluster`, the help desk's id.
//!
//! Nothing outside `store` sees a `postgres` type.

pub(super) mod admin;
pub(super) mod backend;
pub(super) mod conn;
#[cfg(test)]
pub(super) mod contract_tests;
pub(super) mod feed;
mod held_back;
pub(super) mod import;
mod known_users;
pub(super) mod queries;
pub(super) mod reads;
pub(super) mod schema;
pub(super) mod tables;
pub mod url;

use thiserror::Error;

use super::OpenError;
use crate::event::NodeId;
use conn::Conn;
use schema::Settle;
use url::PostgresUrl;

/// Why PostgreSQL could not read or write, beside its own errors.
#[derive(Debug, Error)]
pub(in crate::store) enum PostgresError {
    /// The client's error: a database error with PostgreSQL's message, or a
    /// lost connection. It never holds the URL, so never a password.
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    /// A stored value this build cannot read (a name or body that is no
    /// longer valid).
    #[error("a stored value is not valid: {0}")]
    Corrupt(String),
    #[error(
        "the database schema is now version {found}, not {}: a newer switchboard \
         upgraded it; stop this server",
        schema::CURRENT_VERSION
    )]
    SchemaChanged { found: i64 },
}

pub(in crate::store) type Result<T> = std::result::Result<T, PostgresError>;

/// A connection, or why there is none, said for a person: what was tried
/// and what to check (never the password).
pub(super) fn connect(url: &PostgresUrl) -> std::result::Result<Conn, OpenError> {
    Conn::open(url).map_err(|error| OpenError::PostgresUnreachable {
        url: url.to_string(),
        reason: error.to_string(),
    })
}

/// Brings the schema where `settle` allows (see [`schema::settle`]).
pub(super) fn settle_schema(
    mut conn: Conn,
    settle: Settle,
) -> std::result::Result<Conn, OpenError> {
    schema::settle(&mut conn, settle).map_err(|reason| OpenError::PostgresSchema {
        url: conn.url().to_string(),
        reason: reason.to_string(),
    })?;
    Ok(conn)
}

/// Held (session-scoped) by every server's writer connection, shared, and by
/// `switchboard copy`, exclusive: a copy never writes into a database a
/// node serves, and no node starts on one a copy is filling. "SWBS".
const SERVER_LOCK: i64 = 0x5357_4253;

/// How long startup waits for its share of the server lock: a copy killed a
/// moment ago holds it until PostgreSQL notices its connection is gone,
/// which takes milliseconds, not seconds.
const SERVER_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes a share of [`SERVER_LOCK`] on the writer's connection, waiting up
/// to [`SERVER_LOCK_WAIT`] for a copy to let go of it.
fn take_server_lock(writer: &mut Conn, url: &PostgresUrl) -> std::result::Result<(), OpenError> {
    let deadline = std::time::Instant::now() + SERVER_LOCK_WAIT;
    loop {
        let locked = writer
            .query_one("SELECT pg_try_advisory_lock_shared($1)", &[&SERVER_LOCK])
            .and_then(|row| queries::get::<bool>(&row, 0));
        match locked {
            Ok(true) => return Ok(()),
            Ok(false) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Ok(false) => {
                return Err(OpenError::PostgresInUse {
                    url: url.to_string(),
                });
            }
            Err(error) => {
                return Err(OpenError::PostgresUnreachable {
                    url: url.to_string(),
                    reason: error.to_string(),
                });
            }
        }
    }
}

/// What `serve` opens on PostgreSQL: the writer's connection, the
/// readers', the feed thread's, and this node's id among the nodes that
/// share the database.
pub(super) struct OpenedStore {
    pub writer: backend::PostgresWriter,
    pub readers: Vec<reads::PostgresReader>,
    pub feed: feed::PostgresFeed,
    pub node: NodeId,
    /// Every node's subscribed connections, and the position of the
    /// snapshot they were read in: where this node's feed starts.
    pub members: Vec<crate::event::Member>,
    pub start: crate::event::Seq,
    /// The help desk's id (`sb_cluster`).
    pub cluster: String,
}

/// For `serve`: the writer's connection, its schema created or upgraded,
/// `readers` more for the reader threads, one for the feed thread, and a
/// new node id.
///
/// Any number of nodes may share the database (cluster mode): every write
/// takes the sequencer row, and each node reads the others' commits from
/// the feed (`sb_feed`) or hears them on the bus.
pub(super) fn open_store(
    url: &PostgresUrl,
    readers: usize,
) -> std::result::Result<OpenedStore, OpenError> {
    let mut writer = settle_schema(connect(url)?, Settle::Migrate)?;
    take_server_lock(&mut writer, url)?;
    let failed = |error: PostgresError| OpenError::PostgresSchema {
        url: url.to_string(),
        reason: error.to_string(),
    };
    let node =
        queries::nodes::register(&mut writer, crate::store::shared_feed::LEASE).map_err(failed)?;
    let (members, start) = queries::nodes::members_at(&mut writer).map_err(failed)?;
    let cluster = queries::nodes::cluster_id(&mut writer).map_err(failed)?;
    let readers = (0..readers)
        .map(|_| connect(url).map(reads::PostgresReader::new))
        .collect::<std::result::Result<_, _>>()?;
    Ok(OpenedStore {
        writer: backend::PostgresWriter::new(writer),
        readers,
        feed: feed::PostgresFeed::new(connect(url)?),
        node: NodeId(node),
        members,
        start,
        cluster,
    })
}
