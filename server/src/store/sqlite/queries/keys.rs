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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::queries::*;
    use crate::store::test_support::{add_agent, add_user, body, db, name};

    use switchboard_protocol::{Priority, Role, Timestamp};

    #[test]
    fn a_removed_agent_added_again_does_not_get_its_idempotency_keys_back() {
        let conn = db();
        let alice = name("alice");
        let agent_id = add_agent(&conn, "alice");
        let bob = add_agent(&conn, "bob");
        let ana = add_user(&conn, "ana");
        let answer = insert_message(
            &conn,
            Timestamp::from_micros(1),
            ana,
            Some(agent_id),
            &body("old answer"),
            Priority::Normal,
        )
        .expect("message");
        insert_key(&conn, Role::Agent, agent_id, "k1", answer).expect("key");
        insert_key(&conn, Role::Agent, bob, "k1", answer).expect("key");
        insert_key(&conn, Role::User, ana, "k1", answer).expect("key");
        // Given a new token while still active: the same agent, same keys.
        upsert_agent(&conn, &alice, b"rotated", Timestamp::from_micros(2)).expect("rotates");
        assert_eq!(
            find_key(&conn, Role::Agent, agent_id, "k1").expect("reads"),
            Some(answer)
        );
        assert!(remove_agent(&conn, &alice).expect("removes"));
        upsert_agent(&conn, &alice, b"new", Timestamp::from_micros(3)).expect("again");
        assert_eq!(
            find_key(&conn, Role::Agent, agent_id, "k1").expect("reads"),
            None
        );
        // Nobody else's keys go.
        assert_eq!(
            find_key(&conn, Role::Agent, bob, "k1").expect("reads"),
            Some(answer)
        );
        assert_eq!(
            find_key(&conn, Role::User, ana, "k1").expect("reads"),
            Some(answer)
        );
    }
}
