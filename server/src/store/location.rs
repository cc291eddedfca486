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

impl Location {
    /// A SQLite file that is not there yet: opening it creates an empty help
    /// desk. Worth a line in the log, because a server started from another
    /// directory finds none of its agents (first-hour findings).
    pub fn is_new_sqlite_file(&self) -> bool {
        matches!(self, Location::Sqlite(path) if !path.exists())
    }

    /// As [`Display`](fmt::Display), with a relative SQLite path made
    /// absolute, so the log says which file whatever the directory was.
    pub fn for_log(&self) -> String {
        match self {
            Location::Sqlite(path) => std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            Location::Postgres(url) => url.to_string(),
        }
    }
}
