//! The SQLite backend: one file, opened by one writer and a few readers.
//!
//! What is SQLite's alone lives here: opening a file and refusing one this
//! process may not write, the pragmas, [`Durability`] (`synchronous`), the
//! layout and its migrations ([`schema`]), the SQL ([`queries`], one file per
//! table), the writer's prepared per-message statements and the rules'
//! [`Tables`](super::rules::Tables) over them ([`tables`]), the read rules'
//! [`Reads`](super::rules::Reads) ([`reads`]), savepoints ([`tx`]) and the
//! `agent` commands' [`admin::Admin`]. Nothing outside `store` sees a `rusqlite` type.

pub(super) mod admin;
pub(super) mod backend;
#[cfg(test)]
mod contract_tests;
pub(super) mod export;
pub mod queries;
pub(super) mod reads;
pub(super) mod schema;
pub mod server_lock;
pub(super) mod tables;
pub(super) mod tx;

use std::path::Path;

use rusqlite::Connection;

use super::OpenError;

/// Refuses a database file this process may not write, with the reason.
///
/// SQLite would open it read-only (then every message fails, long after the
/// server said it was listening) or fail with "unable to open database
/// file" (on a read-only file system, where WAL cannot make its index).
/// Asking the operating system first names the real cause: a read-only file
/// system, an immutable file, or permissions. A file not there yet is
/// created by SQLite next.
pub(crate) fn check_writable(path: &Path) -> Result<(), OpenError> {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(reason) => Err(OpenError::NotWritable {
            path: path.to_owned(),
            reason,
        }),
    }
}

/// A connection to `path` with the pragmas every connection needs.
pub(super) fn connect(path: &Path) -> Result<Connection, OpenError> {
    let conn = Connection::open(path).map_err(cannot_open(path))?;
    schema::configure(&conn).map_err(cannot_open(path))?;
    Ok(conn)
}

/// For `map_err`: an [`OpenError::Open`] naming `path`.
pub(super) fn cannot_open<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> OpenError + '_ {
    move |reason| OpenError::Open {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Opens a database file, checks it is ours and migrates it, for the
/// server (and the storage bench).
pub fn open_database(path: &Path) -> Result<Connection, OpenError> {
    open_with(path, schema::migrate)
}

/// [`open_database`] for the `agent` commands: creates a new database but
/// refuses to upgrade an older one (see [`schema::check_or_create`]).
pub(super) fn open_database_without_upgrade(path: &Path) -> Result<Connection, OpenError> {
    open_with(path, schema::check_or_create)
}

/// Opens a writable database file and brings its schema to where
/// `settle_schema` wants it.
fn open_with(
    path: &Path,
    settle_schema: fn(&mut Connection) -> Result<(), schema::SchemaError>,
) -> Result<Connection, OpenError> {
    check_writable(path)?;
    let mut conn = connect(path)?;
    settle_schema(&mut conn).map_err(|reason| OpenError::Schema {
        path: path.to_owned(),
        reason: reason.to_string(),
    })?;
    Ok(conn)
}

/// How durable a commit is before anyone is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a commit survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a crash of the server, not of the machine.
    Normal,
}

impl Durability {
    /// Sets `synchronous` on the writer's connection.
    pub(super) fn apply(self, conn: &Connection) -> rusqlite::Result<()> {
        let synchronous = match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
    }
}
