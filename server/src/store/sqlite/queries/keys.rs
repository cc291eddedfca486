//! Idempotency keys: which message a sender's key already stored.

use rusqlite::{Connection, OptionalExtension, params};
use switchboard_protocol::Role;

use super::Result;

pub(crate) const FIND_KEY: &str =
    "SELECT message_id FROM send_keys WHERE sender_role = ?1 AND sender_id = ?2 AND key = ?3";

pub(crate) fn role_to_sql(role: Role) -> i64 {
    match role {
        Role::User => 0,
        Role::Agent => 1,
    }
}

pub fn find_key(conn: &Connection, role: Role, sender_id: i64, key: &str) -> Result<Option<u64>> {
    conn.prepare_cached(FIND_KEY)?
        .query_row(params![role_to_sql(role), sender_id, key], |row| {
            row.get::<_, i64>(0)
        })
        .optional()
        .map(|id| id.map(|id| id as u64))
}

pub fn insert_key(
    conn: &Connection,
    role: Role,
    sender_id: i64,
    key: &str,
    message_id: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO send_keys (sender_role, sender_id, key, message_id) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        role_to_sql(role),
        sender_id,
        key,
        message_id as i64
    ])?;
    Ok(())
}
