//! Messages: reading one, paging a conversation, `since` resumes, and
//! reading a reply's chunk. (They are stored with a group's other
//! appended rows: `appends.rs`.)

use std::collections::HashMap;

use switchboard_protocol::Message;

use super::super::conn::Conn;
use super::super::{PostgresError, Result};
use super::{collect_messages, get, message_from_row, select_messages, sql_id};
use crate::store::rules::{Notes, ResumeCap};

const MESSAGE_BY_ID: &str = select_messages!("WHERE m.id = $1");
const MESSAGES_BY_IDS: &str = select_messages!("WHERE m.id = ANY($1)");

pub(in crate::store::postgres) fn message_by_id(conn: &mut Conn, id: u64) -> Result<Message> {
    message_from_row(&conn.query_one(MESSAGE_BY_ID, &[&sql_id(id)])?)
}

/// `$n` of a query that reads one conversation: true when its notes are
/// shown, for `AND (NOT note OR $n)`.
fn notes_shown(notes: Notes) -> bool {
    notes == Notes::Shown
}

/// The ids of the `limit` latest messages of one conversation older than
/// `before` (any id), oldest first; notes only when shown.
pub(in crate::store::postgres) fn conversation_ids(
    conn: &mut Conn,
    user_id: i64,
    before: Option<u64>,
    limit: u32,
    notes: Notes,
) -> Result<Vec<u64>> {
    let rows = conn.query(
        "SELECT id FROM (
            SELECT id FROM messages WHERE user_id = $1 AND id < $2 AND (NOT note OR $4)
            ORDER BY id DESC LIMIT $3
         ) page ORDER BY id",
        &[
            &user_id,
            &before.map_or(i64::MAX, sql_id),
            &i64::from(limit),
            &notes_shown(notes),
        ],
    )?;
    rows.iter()
        .map(|row| get::<i64>(row, 0).map(|id| id as u64))
        .collect()
}

/// The ids of one conversation's messages after `since`, oldest first: the
/// newest that fit `cap`, and whether some were left out; notes only when
/// shown. Reads ids and body sizes only (`octet_length`), never the bodies.
pub(in crate::store::postgres) fn conversation_ids_since(
    conn: &mut Conn,
    user_id: i64,
    since: u64,
    cap: ResumeCap,
    notes: Notes,
) -> Result<(Vec<u64>, bool)> {
    let rows = conn.query(
        "SELECT id, octet_length(body)::BIGINT FROM messages
         WHERE user_id = $1 AND id > $2 AND (NOT note OR $4) ORDER BY id DESC LIMIT $3",
        &[
            &user_id,
            &sql_id(since),
            &(i64::from(cap.messages) + 1),
            &notes_shown(notes),
        ],
    )?;
    let (mut kept, mut body_bytes, mut truncated) = (Vec::new(), 0, false);
    for row in &rows {
        body_bytes += usize::try_from(get::<i64>(row, 1)?).unwrap_or(usize::MAX);
        if kept.len() == cap.messages as usize || body_bytes > cap.body_bytes {
            truncated = true;
            break;
        }
        kept.push(get::<i64>(row, 0)? as u64);
    }
    kept.reverse();
    Ok((kept, truncated))
}

/// Everyone's messages after `since`, oldest first: the newest that fit
/// `cap`, and whether some were left out.
pub(in crate::store::postgres) fn messages_since(
    conn: &mut Conn,
    since: u64,
    cap: ResumeCap,
) -> Result<(Vec<Message>, bool)> {
    let newest_first = collect_messages(
        conn,
        select_messages!("WHERE m.id > $1 ORDER BY m.id DESC LIMIT $2"),
        &[&sql_id(since), &(i64::from(cap.messages) + 1)],
    )?;
    let mut kept = Vec::new();
    let mut body_bytes = 0;
    let mut truncated = false;
    for message in newest_first {
        body_bytes += message.body.as_str().len();
        if kept.len() == cap.messages as usize || body_bytes > cap.body_bytes {
            truncated = true;
            break;
        }
        kept.push(message);
    }
    kept.reverse();
    Ok((kept, truncated))
}

/// The messages `ids` name, in that order, stopping after the first whose
/// bodies reach `body_bytes` in all (at least one when any is named): one
/// chunk of a long reply (the caller names a chunk's worth of ids), read
/// in one round trip.
pub(in crate::store::postgres) fn messages_by_id(
    conn: &mut Conn,
    ids: &[u64],
    body_bytes: usize,
) -> Result<Vec<Message>> {
    let wanted: Vec<i64> = ids.iter().map(|&id| sql_id(id)).collect();
    let mut found: HashMap<u64, Message> = collect_messages(conn, MESSAGES_BY_IDS, &[&wanted])?
        .into_iter()
        .map(|message| (message.id, message))
        .collect();
    let mut messages = Vec::with_capacity(ids.len());
    let mut bytes = 0;
    for id in ids {
        let message = found
            .remove(id)
            .ok_or_else(|| PostgresError::Corrupt(format!("message {id} is missing")))?;
        bytes += message.body.as_str().len();
        messages.push(message);
        if bytes >= body_bytes {
            break;
        }
    }
    Ok(messages)
}
