//! A group's appended rows in one statement: its messages, their places
//! in the queue and their keys, each table's rows sent as arrays and
//! unnested, and the sequencer row moved past them (why: `held_back.rs`).
//!
//! The three inserts are sibling `WITH` clauses of one statement: foreign
//! keys (a queue row's message) are checked at the statement's end, when
//! every row is in.

use super::super::Result;
use super::super::conn::Conn;
use super::sql_id;
use crate::store::postgres::held_back::{KeyRow, MessageRow, WaitingRow};

const APPEND: &str = "WITH
    m AS (
        INSERT INTO messages (id, ts_us, user_id, agent_id, body, priority, note)
        SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[],
                             $5::TEXT[], $6::BIGINT[], $7::BOOLEAN[])
    ),
    w AS (
        INSERT INTO waiting (message_id, user_id, urgency)
        SELECT * FROM unnest($8::BIGINT[], $9::BIGINT[], $10::BIGINT[])
    ),
    k AS (
        INSERT INTO send_keys (sender_role, sender_id, key, message_id)
        SELECT * FROM unnest($11::BIGINT[], $12::BIGINT[], $13::TEXT[], $14::BIGINT[])
    )
    UPDATE sb_clock SET last_message_id = $15, last_ts_us = greatest(last_ts_us, $16)";

/// Inserts the rows and moves the sequencer row to `last_id`, stamped no
/// earlier than `last_ts_us`.
pub(in crate::store::postgres) fn write(
    conn: &mut Conn,
    messages: &[MessageRow],
    waiting: &[WaitingRow],
    keys: &[KeyRow],
    last_id: u64,
    last_ts_us: i64,
) -> Result<()> {
    let column = |pick: fn(&MessageRow) -> i64| messages.iter().map(pick).collect::<Vec<i64>>();
    let agent_ids: Vec<Option<i64>> = messages.iter().map(|row| row.agent_id).collect();
    let bodies: Vec<&str> = messages.iter().map(|row| row.body.as_str()).collect();
    let notes: Vec<bool> = messages.iter().map(|row| row.note).collect();
    let waiting_column =
        |pick: fn(&WaitingRow) -> i64| waiting.iter().map(pick).collect::<Vec<i64>>();
    let key_column = |pick: fn(&KeyRow) -> i64| keys.iter().map(pick).collect::<Vec<i64>>();
    let key_texts: Vec<&str> = keys.iter().map(|row| row.key.as_str()).collect();
    conn.execute(
        APPEND,
        &[
            &column(|row| row.id),
            &column(|row| row.ts_us),
            &column(|row| row.user_id),
            &agent_ids,
            &bodies,
            &column(|row| row.priority),
            &notes,
            &waiting_column(|row| row.message_id),
            &waiting_column(|row| row.user_id),
            &waiting_column(|row| row.urgency),
            &key_column(|row| row.role),
            &key_column(|row| row.sender_id),
            &key_texts,
            &key_column(|row| row.message_id),
            &sql_id(last_id),
            &last_ts_us,
        ],
    )?;
    Ok(())
}
