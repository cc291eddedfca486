//! Messages: appending to a conversation's chain, paging it, `since`
//! resumes, and the position of a snapshot in the stream of commits.

use rusqlite::{Connection, OptionalExtension, Statement, params};
#[cfg(test)]
use switchboard_protocol::{Body, Priority};
use switchboard_protocol::{Message, Timestamp};

use super::{Result, message_from_row, sql_id};
use crate::event::Seq;
use crate::store::rules::{Notes, ResumeCap};
#[cfg(test)]
use crate::store::sqlite::tables::HotStatements;

pub(crate) const MESSAGE_BY_ID: &str = select_messages!("messages m WHERE m.id = ?1");
pub(crate) const LAST_MESSAGE: &str =
    "SELECT last_message_id, length FROM conversations WHERE user_id = ?1";
pub(crate) const INSERT_MESSAGE: &str =
    "INSERT INTO messages (ts_us, user_id, agent_id, body, priority, prev_id, note)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
/// Not `length = length + 1 ... RETURNING length`: RETURNING goes through a
/// temporary table and made the writer's whole per-message cost a third
/// higher (callgrind); the writer reads the length with the last message.
pub(crate) const SET_LAST_MESSAGE: &str =
    "INSERT INTO conversations (user_id, last_message_id, length) VALUES (?1, ?2, ?3)
     ON CONFLICT (user_id) DO UPDATE
        SET last_message_id = excluded.last_message_id, length = excluded.length";
pub(crate) const ADD_MARK: &str =
    "INSERT INTO conversation_marks (user_id, message_id) VALUES (?1, ?2)";

/// [`HotStatements::insert_message`] on its own, for tests.
#[cfg(test)]
pub fn insert_message(
    conn: &Connection,
    ts: Timestamp,
    user_id: i64,
    agent_id: Option<i64>,
    body: &Body,
    priority: Priority,
) -> Result<u64> {
    HotStatements::new(conn)?.insert_message(crate::store::rules::NewMessage {
        ts,
        user_id,
        agent_id,
        body,
        priority,
        note: false,
    })
}

/// The newest message of a conversation, where its chain starts.
pub(crate) fn last_message(conn: &Connection, user_id: i64) -> Result<Option<u64>> {
    let mut statement = conn.prepare_cached(LAST_MESSAGE)?;
    read_last_message(&mut statement, user_id)
}

fn read_last_message(last_message: &mut Statement<'_>, user_id: i64) -> Result<Option<u64>> {
    Ok(read_conversation_end(last_message, user_id)?.map(|(last, _)| last))
}

/// A conversation's newest message and how many it has; `None` before its
/// first.
pub(crate) fn read_conversation_end(
    last_message: &mut Statement<'_>,
    user_id: i64,
) -> Result<Option<(u64, i64)>> {
    last_message
        .query_row([user_id], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)?))
        })
        .optional()
}

/// A conversation's chain, newest first, from `?1` down to (not
/// including) the first id at or below `?2`, stopping once the bodies walked
/// pass `?4` bytes (the first message past it still comes, so the caller
/// sees that more were left), at most `?3` messages: each message's id and
/// body size. With `?5` = 1 notes are hidden: walked over, neither listed
/// nor counted. `ORDER BY` makes SQLite read every row the walk yields
/// before the first comes out: without this stop, a resume capped at 8 MiB
/// still walked all 10,000 messages (`octet_length` reads a body's size
/// without its text). Each row carries how many listed messages, and how
/// many of their bytes, come after it (`shown`, `bytes`).
const CHAIN_IDS_NEWEST_FIRST_WITHIN: &str =
    "WITH RECURSIVE chain(id, hidden, length, prev, shown, bytes) AS (
        SELECT id, note AND ?5, octet_length(body), prev_id, 0, 0
        FROM messages WHERE id = ?1 AND id > ?2 AND ?3 > 0
        UNION ALL
        SELECT m.id, m.note AND ?5, octet_length(m.body), m.prev_id,
               chain.shown + (1 - chain.hidden),
               chain.bytes + (1 - chain.hidden) * chain.length
        FROM chain JOIN messages m ON m.id = chain.prev
        WHERE m.id > ?2
          AND chain.shown + (1 - chain.hidden) < ?3
          AND chain.bytes + (1 - chain.hidden) * chain.length <= ?4
     )
     SELECT id, length FROM chain WHERE hidden = 0 ORDER BY id DESC";
/// Everyone's messages above `?1`, newest first, at most `?2`.
const ALL_NEWEST_FIRST: &str =
    select_messages!("messages m WHERE m.id > ?1 ORDER BY m.id DESC LIMIT ?2");

pub fn message_by_id(conn: &Connection, id: u64) -> Result<Message> {
    conn.prepare_cached(MESSAGE_BY_ID)?
        .query_row([id as i64], message_from_row)
}

/// The newest message's id; 0 with none.
pub fn last_message_id(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT max(id) FROM messages")?
        .query_row([], |row| row.get::<_, Option<i64>>(0))
        .map(|id| id.map_or(0, |id| id as u64))
}

/// How many releases were ever committed (schema 7).
pub fn release_count(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT releases FROM release_count")?
        .query_row([], |row| row.get::<_, i64>(0))
        .map(|count| count as u64)
}

/// Counts `released` more releases, in the transaction that makes them.
pub fn add_releases(conn: &Connection, released: u64) -> Result<()> {
    conn.prepare_cached("UPDATE release_count SET releases = releases + ?1")?
        .execute([sql_id(released)])
        .map(|_| ())
}

/// Where the snapshot `conn` reads sits in the stream of commits: the newest
/// message id plus the releases made (see schema 7). Read it in the same
/// transaction as whatever it positions.
pub fn position(conn: &Connection) -> Result<Seq> {
    Ok(Seq(last_message_id(conn)? + release_count(conn)?))
}

/// The latest time stamp stored, so new ones can keep increasing after a
/// restart even if the clock went back.
pub fn last_timestamp(conn: &Connection) -> Result<Option<Timestamp>> {
    // Time stamps increase with ids: the newest row has the latest, found at
    // the end of the table rather than by scanning it.
    conn.query_row(
        "SELECT ts_us FROM messages ORDER BY id DESC LIMIT 1",
        [],
        |row| row.get::<_, i64>(0),
    )
    .optional()
    .map(|micros| micros.map(Timestamp::from_micros))
}

/// `?n` of a chain walk: 1 when notes are hidden from the reader.
fn hides_notes(notes: Notes) -> bool {
    notes == Notes::Hidden
}

/// The ids of the `limit` latest messages of one conversation older than
/// `before`, oldest first (notes only when shown): a page's plan, a few
/// bytes a message, whose messages are then read a chunk at a time
/// ([`messages_by_id`]).
pub fn conversation_ids(
    conn: &Connection,
    user_id: i64,
    before: Option<u64>,
    limit: u32,
    notes: Notes,
) -> Result<Vec<u64>> {
    let last = last_message(conn, user_id)?;
    let from = match (before, last) {
        // Ids start at 1: nothing is older than that.
        (Some(0 | 1), _) => None,
        (Some(before), Some(last)) if before <= last => start_before(conn, user_id, before, last)?,
        _ => last,
    };
    let Some(from) = from else {
        return Ok(Vec::new());
    };
    let mut statement = conn.prepare_cached(CHAIN_IDS_OLDEST_FIRST)?;
    let rows = statement.query_map(
        params![sql_id(from), i64::from(limit), hides_notes(notes)],
        |row| row.get::<_, i64>(0).map(|id| id as u64),
    )?;
    rows.collect()
}

/// The `limit` latest messages of one conversation older than `before`,
/// oldest first, read whole (tests; the server reads them in chunks).
#[cfg(test)]
pub fn conversation(
    conn: &Connection,
    user_id: i64,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<Message>> {
    let ids = conversation_ids(conn, user_id, before, limit, Notes::Shown)?;
    messages_by_id(conn, &ids, usize::MAX)
}

/// The messages `ids` name, in that order, stopping after the first whose
/// bodies reach `body_bytes` in all (at least one, if any are named): one
/// chunk of a long reply. Messages never change once stored, so a chunk
/// read later than its plan reads the same messages.
pub fn messages_by_id(conn: &Connection, ids: &[u64], body_bytes: usize) -> Result<Vec<Message>> {
    let mut statement = conn.prepare_cached(MESSAGE_BY_ID)?;
    let mut messages = Vec::with_capacity(ids.len());
    let mut bytes = 0;
    for &id in ids {
        let message = statement.query_row([sql_id(id)], message_from_row)?;
        bytes += message.body.as_str().len();
        messages.push(message);
        if bytes >= body_bytes {
            break;
        }
    }
    Ok(messages)
}

/// A conversation's ids, oldest first: from `?1` down the chain, at most
/// `?2`; with `?3` = 1 notes are hidden: walked over, neither listed nor
/// counted. Each row carries how many listed messages it and the newer
/// ones make (`shown`); the walk stops when that reaches `?2`.
const CHAIN_IDS_OLDEST_FIRST: &str = "WITH RECURSIVE chain(id, hidden, prev, shown) AS (
        SELECT id, note AND ?3, prev_id, 1 - (note AND ?3)
        FROM messages WHERE id = ?1 AND ?2 > 0
        UNION ALL
        SELECT m.id, m.note AND ?3, m.prev_id, chain.shown + 1 - (m.note AND ?3)
        FROM chain JOIN messages m ON m.id = chain.prev
        WHERE chain.shown < ?2
     )
     SELECT id FROM chain WHERE hidden = 0 ORDER BY id";

/// Every this many messages of a conversation, one is listed in
/// `conversation_marks` (schema migration 5 marks existing conversations
/// with the same spacing).
pub(crate) const MARK_EVERY: i64 = 256;

/// Where a page older than `before` starts: the message just before it in
/// the chain. Clients page with the oldest id they hold, which is in this
/// conversation and found by primary key. Any other id (one from another
/// conversation, or none at all) is found by walking down the chain from
/// the first mark at or above it: fewer than [`MARK_EVERY`] steps, where a
/// walk from the newest message cost 45 ms per 100,000 messages.
fn start_before(conn: &Connection, user_id: i64, before: u64, last: u64) -> Result<Option<u64>> {
    let own = conn
        .prepare_cached("SELECT prev_id FROM messages WHERE id = ?1 AND user_id = ?2")?
        .query_row(params![sql_id(before), user_id], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()?;
    if let Some(prev) = own {
        return Ok(prev.map(|id| id as u64));
    }
    let mark: Option<i64> = conn
        .prepare_cached(
            "SELECT min(message_id) FROM conversation_marks
             WHERE user_id = ?1 AND message_id >= ?2",
        )?
        .query_row(params![user_id, sql_id(before)], |row| row.get(0))?;
    let from = mark.unwrap_or(sql_id(last));
    conn.prepare_cached(START_BEFORE)?
        .query_row(params![from, sql_id(before)], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .map(|id| id.map(|id| id as u64))
}

/// The newest message below `?2`, walking down the chain from `?1`.
const START_BEFORE: &str = "WITH RECURSIVE chain(id) AS (
        SELECT ?1
        UNION ALL
        SELECT m.prev_id FROM chain JOIN messages m ON m.id = chain.id
        WHERE chain.id >= ?2 AND m.prev_id IS NOT NULL
     )
     SELECT max(id) FROM chain WHERE id < ?2";

/// Messages after `since` of all conversations, oldest first: the newest
/// that fit `cap`, and whether some were left out.
pub fn messages_since(
    conn: &Connection,
    since: u64,
    cap: ResumeCap,
) -> Result<(Vec<Message>, bool)> {
    let one_more = i64::from(cap.messages) + 1;
    let (mut messages, truncated) = collect_newest(
        conn,
        ALL_NEWEST_FIRST,
        params![sql_id(since), one_more],
        cap,
    )?;
    messages.reverse();
    Ok((messages, truncated))
}

/// The ids of one conversation's messages after `since`, oldest first (notes
/// only when shown): the newest that fit `cap`, and whether some were left
/// out (a user's resume, read a chunk at a time afterwards).
pub fn conversation_ids_since(
    conn: &Connection,
    user_id: i64,
    since: u64,
    cap: ResumeCap,
    notes: Notes,
) -> Result<(Vec<u64>, bool)> {
    let Some(from) = last_message(conn, user_id)? else {
        return Ok((Vec::new(), false));
    };
    let mut statement = conn.prepare_cached(CHAIN_IDS_NEWEST_FIRST_WITHIN)?;
    let mut rows = statement.query(params![
        sql_id(from),
        sql_id(since),
        i64::from(cap.messages) + 1,
        i64::try_from(cap.body_bytes).unwrap_or(i64::MAX),
        hides_notes(notes)
    ])?;
    let (mut kept, mut body_bytes, mut truncated) = (Vec::new(), 0, false);
    while let Some(row) = rows.next()? {
        body_bytes += usize::try_from(row.get::<_, i64>(1)?).unwrap_or(usize::MAX);
        if kept.len() == cap.messages as usize || body_bytes > cap.body_bytes {
            truncated = true;
            break;
        }
        kept.push(row.get::<_, i64>(0)? as u64);
    }
    kept.reverse();
    Ok((kept, truncated))
}

/// Rows newest first, kept while they fit `cap`; whether any were left
/// out. Stops reading at the first that does not fit.
fn collect_newest(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    cap: ResumeCap,
) -> Result<(Vec<Message>, bool)> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, message_from_row)?;
    let mut kept = Vec::new();
    let mut body_bytes = 0;
    for message in rows {
        let message = message?;
        body_bytes += message.body.as_str().len();
        if kept.len() == cap.messages as usize || body_bytes > cap.body_bytes {
            return Ok((kept, true));
        }
        kept.push(message);
    }
    Ok((kept, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::test_support::{add_user, db, user_message};
    use rusqlite::params;
    use switchboard_protocol::Message;

    /// The messages of `user` in `ids` (all of them, oldest first) that a
    /// page of `limit` before `before` must hold.
    fn expected_page(own: &[u64], before: u64, limit: usize) -> Vec<u64> {
        let older: Vec<u64> = own.iter().copied().filter(|&id| id < before).collect();
        older[older.len().saturating_sub(limit)..].to_vec()
    }

    /// A page before an id of another conversation is right wherever the id
    /// falls, and finding where it starts takes no more work than walking
    /// [`MARK_EVERY`] messages, however long the conversation.
    #[test]
    fn a_page_before_an_id_from_elsewhere_starts_near_it() {
        let conn = db();
        let ana = add_user(&conn, "ana");
        let bo = add_user(&conn, "bo");
        let (mut own, mut others) = (Vec::new(), Vec::new());
        for i in 0..2_000 {
            // bo writes in bursts, so some gaps in ana's chain are long.
            let user = if i % 7 < 2 || (900..1_000).contains(&i) {
                bo
            } else {
                ana
            };
            let id = user_message(&conn, user, i, "x");
            if user == ana {
                own.push(id)
            } else {
                others.push(id)
            }
        }
        let ids = |messages: Vec<Message>| messages.iter().map(|m| m.id).collect::<Vec<_>>();
        let vm_steps = |run: &dyn Fn()| {
            let statement = conn.prepare_cached(START_BEFORE).expect("cached");
            statement.reset_status(rusqlite::StatementStatus::VmStep);
            drop(statement);
            run();
            let statement = conn.prepare_cached(START_BEFORE).expect("cached");
            statement.get_status(rusqlite::StatementStatus::VmStep)
        };
        let last = *own.last().expect("ana wrote");
        // The budget: a walk of MARK_EVERY messages down from the newest.
        let far = own[own.len() - 1 - MARK_EVERY as usize];
        let budget = vm_steps(&|| {
            conn.prepare_cached(START_BEFORE)
                .expect("cached")
                .query_row(params![last as i64, far as i64], |row| {
                    row.get::<_, Option<i64>>(0)
                })
                .expect("walks");
        });
        let walk = |before: u64| {
            vm_steps(&|| {
                start_before(&conn, ana, before, last).expect("reads");
            })
        };
        let mut checked = 0;
        for &before in others.iter().chain([&0, &(last + 1)]) {
            let page = ids(conversation(&conn, ana, Some(before), 5).expect("reads"));
            assert_eq!(page, expected_page(&own, before, 5), "before {before}");
            if before < last {
                let work = walk(before);
                assert!(
                    work <= budget,
                    "before {before}: {work} VM steps > {budget}"
                );
                checked += 1;
            }
        }
        assert!(checked > 500, "{checked}");
        // Ana's own ids still page the short way.
        assert_eq!(
            ids(conversation(&conn, ana, Some(own[300]), 3).expect("reads")),
            own[297..300]
        );
    }

    /// A resume's walk stops reading at its byte bound: the rows SQLite
    /// yields (every one read before the first comes out, for the sort) are
    /// those that fit and one more, not the whole conversation.
    #[test]
    fn a_resume_reads_no_further_than_its_byte_bound() {
        let conn = db();
        let ana = add_user(&conn, "ana");
        let mut last = 0;
        for i in 0..100 {
            last = user_message(&conn, ana, i, "0123456789");
        }
        let rows = conn
            .prepare(CHAIN_IDS_NEWEST_FIRST_WITHIN)
            .expect("prepares")
            .query_map(params![last as i64, 0, 1_000, 25, false], |row| {
                row.get::<_, i64>(0)
            })
            .expect("queries")
            .count();
        assert_eq!(
            rows, 3,
            "10 + 10 fit in 25 bytes; the third says there is more"
        );
        let (kept, truncated) = conversation_ids_since(
            &conn,
            ana,
            0,
            ResumeCap {
                messages: 1_000,
                body_bytes: 25,
            },
            Notes::Hidden,
        )
        .expect("reads");
        assert!(truncated);
        assert_eq!(kept.len(), 2);
    }
}
