//! [`CopyError`]: why `switchboard copy` stopped, said for the operator,
//! with what to do next. Backend errors arrive as text (their `Display`),
//! never as types, and never with a password: the URL is always
//! [`PostgresUrl`](crate::store::PostgresUrl)'s `Display`.

use std::path::PathBuf;

use thiserror::Error;

use super::records::Kind;
use crate::store::OpenError;

/// The sentence every failure inside the transaction ends with.
const ROLLED_BACK: &str = "the copy was rolled back, so the PostgreSQL database holds none of \
                           it; fix the cause and run `switchboard copy` again";

#[derive(Debug, Error)]
pub enum CopyError {
    #[error(
        "there is no SQLite database at {path}; give --db the file your server used \
         (`switchboard serve --db FILE`, ./switchboard.db by default)"
    )]
    NoSource { path: PathBuf },
    #[error(
        "{path} is not a switchboard database (it has no switchboard schema); give --db \
         the file your server used"
    )]
    NotADesk { path: PathBuf },
    /// The file could not be opened, locked, or is not switchboard's, or
    /// its schema is newer than this build (the reason says which).
    #[error("{0}")]
    Source(OpenError),
    #[error(
        "a switchboard server is serving {db} (it holds {lock}); stop it first (SIGTERM, \
         and wait until it exits), then run the copy again: a help desk still taking \
         messages would lose the ones after the copy"
    )]
    SourceInUse { db: PathBuf, lock: PathBuf },
    /// Unreachable, not switchboard's, or a schema newer than this build.
    #[error("{0}")]
    Target(OpenError),
    #[error(
        "a switchboard server is serving the PostgreSQL database {url}; stop it, then run \
         the copy again: the copy fills only a database that no server uses"
    )]
    TargetInUse { url: String },
    #[error(
        "the PostgreSQL database {url} is not empty: it holds {holds}; `switchboard copy` \
         fills only an empty database, so nothing was copied. Give --postgres a new \
         database (`createdb NAME`), or drop and recreate this one if its data is not needed"
    )]
    TargetNotEmpty { url: String, holds: String },
    #[error("reading the SQLite database {path} failed: {reason}; {ROLLED_BACK}")]
    Read { path: PathBuf, reason: String },
    #[error("writing {kind} to the PostgreSQL database {url} failed: {reason}; {ROLLED_BACK}")]
    Write {
        kind: Kind,
        url: String,
        reason: String,
    },
    #[error("the PostgreSQL database {url} failed: {reason}; {ROLLED_BACK}")]
    Transaction { url: String, reason: String },
    #[error(
        "committing the copy to the PostgreSQL database {url} failed: {reason}; most likely \
         it was rolled back, and the database holds none of it. Fix the cause and run \
         `switchboard copy` again: if the commit did land after all, the copy refuses to \
         run on a database that is no longer empty, and `switchboard agent list --postgres \
         URL` shows the copied agents"
    )]
    Commit { url: String, reason: String },
    #[error("{kind}: {read} read from SQLite but {written} written to PostgreSQL; {ROLLED_BACK}")]
    Mismatch { kind: Kind, read: u64, written: u64 },
}
