//! [`Location`]: where a help desk's data is, SQLite file or PostgreSQL
//! database, as `--db` or `--postgres` named it.

use std::fmt;
use std::path::PathBuf;

use super::PostgresUrl;

#[derive(Debug, Clone)]
pub enum Location {
    /// A SQLite file (`--db`, the default): one node.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`--postgres`).
    Postgres(PostgresUrl),
}

/// The file's path, or the URL without its password: for logs and errors.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => write!(f, "{url}"),
        }
    }
}
