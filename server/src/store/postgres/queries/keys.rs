//! Idempotency keys: which message a sender's key already stored.

use switchboard_protocol::Role;

use super::super::Result;
use super::super::conn::Conn;
use super::{get, role_to_sql};

pub(in crate::store::postgres) fn find_key(
    conn: &mut Conn,
    role: Role,
    sender_id: i64,
    key: &str,
) -> Result<Option<u64>> {
    conn.query_opt(
        "SELECT message_id FROM send_keys
         WHERE sender_role = $1 AND sender_id = $2 AND key = $3",
        &[&role_to_sql(role), &sender_id, &key],
    )?
    .map(|row| get::<i64>(&row, 0).map(|id| id as u64))
    .transpose()
}
