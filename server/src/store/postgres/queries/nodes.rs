//! The nodes, `sb_nodes` (schema 2): each node that starts on the database
//! takes a new id, which marks where its requests came from in the feed.

use switchboard_protocol::Timestamp;

use super::super::Result;
use super::super::conn::Conn;
use super::get;

/// A new node id, never handed out before on this database.
pub(in crate::store::postgres) fn register(conn: &mut Conn, started: Timestamp) -> Result<u32> {
    let row = conn.query_one(
        "INSERT INTO sb_nodes (started_us) VALUES ($1) RETURNING id",
        &[&started.as_micros()],
    )?;
    Ok(get::<i32>(&row, 0)? as u32)
}
