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
/// newest message, back. The walk steps over notes (never waiting, and
/// written between waiting messages without answering them) and goes one
/// message past the last waiting one (deleting that one, or a note, is a
/// no-op); a waiting entry's urgency is its message's priority, which makes
/// each lookup a key lookup.
const CLEAR_WAITING: &str = "WITH RECURSIVE chain(id, urgency, prev, note) AS (
        SELECT id, priority, prev_id, note FROM messages WHERE id = ?1
        UNION ALL
        SELECT m.id, m.priority, m.prev_id, m.note FROM chain JOIN messages m ON m.id = chain.prev
        WHERE chain.note OR EXISTS (
            SELECT 1 FROM waiting w WHERE w.urgency = chain.urgency AND w.message_id = chain.id
        )
     )
     DELETE FROM waiting WHERE (urgency, message_id) IN (SELECT urgency, id FROM chain)";

/// The user's messages stop waiting: an agent answered, or the
/// conversation was resolved.
///
/// They are the newest of the conversation but for notes (every answer or
/// resolve clears them all), so the walk back along the chain stops at the
/// first message that is neither waiting nor a note.
pub fn clear_waiting(conn: &Connection, user_id: i64) -> Result<u64> {
    let Some(last) = last_message(conn, user_id)? else {
        return Ok(0);
    };
    let cleared = conn
        .prepare_cached(CLEAR_WAITING)?
        .execute([sql_id(last)])?;
    Ok(cleared as u64)
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

    use crate::store::test_support::db;

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
}
