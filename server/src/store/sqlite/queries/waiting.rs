//! The waiting queue: user messages no agent has answered yet.

use rusqlite::Connection;
use switchboard_protocol::Message;
#[cfg(test)]
use switchboard_protocol::Priority;

use super::messages::last_message;
use super::{Result, collect_messages, sql_id};
#[cfg(test)]
use crate::store::sqlite::tables::HotStatements;

pub(crate) const ADD_WAITING: &str =
    "INSERT INTO waiting (message_id, user_id, urgency) VALUES (?1, ?2, ?3)";

/// [`HotStatements::add_waiting`] on its own, for tests.
#[cfg(test)]
pub fn add_waiting(
    conn: &Connection,
    message_id: u64,
    user_id: i64,
    priority: Priority,
) -> Result<()> {
    HotStatements::new(conn)?.add_waiting(message_id, user_id, priority)
}

/// The waiting messages at the newest end of a conversation, from `?1`, its
/// newest message, back. The walk goes one message past the last waiting one
/// (deleting that one is a no-op); a waiting entry's urgency is its
/// message's priority, which makes each lookup a key lookup.
const CLEAR_WAITING: &str = "WITH RECURSIVE chain(id, urgency, prev) AS (
        SELECT id, priority, prev_id FROM messages WHERE id = ?1
        UNION ALL
        SELECT m.id, m.priority, m.prev_id FROM chain JOIN messages m ON m.id = chain.prev
        WHERE EXISTS (
            SELECT 1 FROM waiting w WHERE w.urgency = chain.urgency AND w.message_id = chain.id
        )
     )
     DELETE FROM waiting WHERE (urgency, message_id) IN (SELECT urgency, id FROM chain)";

/// The user's messages stop waiting: an agent answered or let go.
///
/// They are the newest of the conversation (every answer or release clears
/// them all), so the walk back along the chain stops at the first message
/// that is not waiting.
pub fn clear_waiting(conn: &Connection, user_id: i64) -> Result<()> {
    let Some(last) = last_message(conn, user_id)? else {
        return Ok(());
    };
    conn.prepare_cached(CLEAR_WAITING)?
        .execute([sql_id(last)])?;
    Ok(())
}

/// User messages still waiting for an answer: most urgent first, then oldest.
pub fn waiting_queue(conn: &Connection, limit: u32) -> Result<Vec<Message>> {
    collect_messages(
        conn,
        select_messages!(
            "messages m JOIN waiting w ON w.message_id = m.id
             ORDER BY w.urgency DESC, w.message_id LIMIT ?1"
        ),
        [limit],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::queries::*;
    use crate::store::test_support::{body, db, name};

    use switchboard_protocol::{Priority, Timestamp};

    /// Answering runs on the writer for every agent message: finding the
    /// waiting entries must go by key, whatever the queue holds.
    #[test]
    fn clearing_the_waiting_queue_never_scans_it() {
        let conn = db();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {CLEAR_WAITING}"))
            .expect("prepares")
            .query_map([1], |row| row.get::<_, String>(3))
            .expect("explains")
            .collect::<Result<_>>()
            .expect("reads");
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN w")),
            "{plan:#?}"
        );
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH waiting USING PRIMARY KEY")),
            "{plan:#?}"
        );
    }

    #[test]
    fn waiting_queue_is_urgent_first_then_oldest() {
        let conn = db();
        let ana = insert_user(&conn, &name("ana"), b"h", Timestamp::from_micros(0)).expect("user");
        let mut ts = 0;
        let mut put = |priority| {
            ts += 1;
            let id = insert_message(
                &conn,
                Timestamp::from_micros(ts),
                ana,
                None,
                &body("x"),
                priority,
            )
            .expect("message");
            add_waiting(&conn, id, ana, priority).expect("waiting");
            id
        };
        let normal = put(Priority::Normal);
        let urgent_old = put(Priority::Urgent);
        let low = put(Priority::Low);
        let urgent_new = put(Priority::Urgent);
        let high = put(Priority::High);
        let ids: Vec<_> = waiting_queue(&conn, 10)
            .expect("reads")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, vec![urgent_old, urgent_new, high, normal, low]);
        assert_eq!(waiting_queue(&conn, 2).expect("reads").len(), 2);
        clear_waiting(&conn, ana).expect("clears");
        assert!(waiting_queue(&conn, 10).expect("reads").is_empty());
    }
}
