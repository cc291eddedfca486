//! Savepoints, one per request on the writer's slow path.

use rusqlite::Connection;

use super::queries::Result;

/// Savepoints as cached statements: `rusqlite::Savepoint` parses its SQL on
/// every use, and the writer opens one per request.
pub fn savepoint(conn: &Connection) -> Result<()> {
    conn.prepare_cached("SAVEPOINT request")?.execute([])?;
    Ok(())
}

/// Keeps what the request wrote.
pub fn release_savepoint(conn: &Connection) -> Result<()> {
    conn.prepare_cached("RELEASE request")?.execute([])?;
    Ok(())
}

/// Undoes what the request wrote.
pub fn rollback_savepoint(conn: &Connection) -> Result<()> {
    conn.prepare_cached("ROLLBACK TO request")?.execute([])?;
    release_savepoint(conn)
}
