//! The waiting queue: user messages no agent has answered yet.

use switchboard_protocol::Message;

use super::super::Result;
use super::super::conn::Conn;
use super::{collect_messages, select_messages};

/// The user's messages stop waiting: an agent answered or let go.
/// How many stopped waiting.
pub(in crate::store::postgres) fn clear_waiting(conn: &mut Conn, user_id: i64) -> Result<u64> {
    conn.execute("DELETE FROM waiting WHERE user_id = $1", &[&user_id])
}

/// User messages still waiting for an answer: most urgent first, then
/// oldest; at most `limit`.
pub(in crate::store::postgres) fn waiting_queue(
    conn: &mut Conn,
    limit: u32,
) -> Result<Vec<Message>> {
    collect_messages(
        conn,
        select_messages!(
            "JOIN waiting w ON w.message_id = m.id ORDER BY w.urgency DESC, w.message_id LIMIT $1"
        ),
        &[&i64::from(limit)],
    )
}
