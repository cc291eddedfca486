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
//! for good (docs/cluster.md, "The sequencer row"). Today one node writes;
//! the row is what lets several share the database later.
//!
//! Time stamps still come from the writer's [`Clock`](super::rules::Clock),
//! continued from `sb_clock.last_ts_us` after a restart; the cluster step
//! takes them from the database's clock under the same lock instead, so that
//! nodes whose clocks differ still stamp in commit order.
//!
//! Nothing outside `store` sees a `postgres` type.

pub(super) mod admin;
pub(super) mod backend;
pub(super) mod conn;
#[cfg(test)]
mod contract_tests;
pub(super) mod import;
pub(super) mod queries;
pub(super) mod reads;
pub(super) mod schema;
pub(super) mod tables;
pub mod url;

use thiserror::Error;

use super::OpenError;
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

/// Held (session-scoped) by the writer's connection of the one server on
/// a database: "SWBS".
const SERVER_LOCK: i64 = 0x5357_4253;

/// How long startup waits for the server lock: a server killed a moment ago
/// holds it until PostgreSQL notices its connection is gone, which takes
/// milliseconds, not seconds.
const SERVER_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes [`SERVER_LOCK`] on the writer's connection, waiting up to
/// [`SERVER_LOCK_WAIT`] for a server that was just killed to let go of it.
fn take_server_lock(writer: &mut Conn, url: &PostgresUrl) -> std::result::Result<(), OpenError> {
    let deadline = std::time::Instant::now() + SERVER_LOCK_WAIT;
    loop {
        let locked = writer
            .query_one("SELECT pg_try_advisory_lock($1)", &[&SERVER_LOCK])
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

/// For `serve`: the writer's connection, its schema created or upgraded,
/// and `readers` more for the reader threads.
///
/// One server per database, for now: without the bus between nodes (the
/// cluster step), two servers would each deliver only their own commits.
/// The writer's connection holds an advisory lock while it lives, and a
/// second server is refused at startup, as on SQLite (`server_lock`).
pub(super) fn open_store(
    url: &PostgresUrl,
    readers: usize,
) -> std::result::Result<(backend::PostgresWriter, Vec<reads::PostgresReader>), OpenError> {
    let mut writer = settle_schema(connect(url)?, Settle::Migrate)?;
    take_server_lock(&mut writer, url)?;
    let readers = (0..readers)
        .map(|_| connect(url).map(reads::PostgresReader::new))
        .collect::<std::result::Result<_, _>>()?;
    Ok((backend::PostgresWriter::new(writer), readers))
}
