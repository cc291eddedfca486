//! Every SQL statement the PostgreSQL backend runs, as plain functions on a
//! [`Conn`], one file per table or concern; the writer's [`Tables`], the
//! readers' [`Reads`] and the `agent` commands call them. This file holds
//! what they share: reading a message row, names, priorities and roles as
//! integers, ids as SQL integers.
//!
//! [`Tables`]: crate::store::rules::Tables
//! [`Reads`]: crate::store::rules::Reads

use crate::store::stored_priority::priority_from_sql;
pub(super) use crate::store::stored_priority::priority_to_sql;
use postgres::Row;
use switchboard_protocol::{Body, Message, Name, Role, Timestamp};

use super::conn::Conn;
use super::{PostgresError, Result};

/// The database's clock, in µs, in SQL (a macro, so that each query using
/// it stays one literal).
macro_rules! now_us {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT"
    };
}

pub(super) mod agents;
pub(super) mod appends;
pub(super) mod clock;
pub(super) mod feed;
pub(super) mod keys;
pub(super) mod messages;
pub(super) mod names;
pub(super) mod nodes;
pub(super) mod presence;
pub(super) mod users;
pub(super) mod waiting;

/// The columns [`message_from_row`] reads, with the names joined in; a
/// macro so that each query is one literal.
macro_rules! select_messages {
    ($tail:literal) => {
        concat!(
            "SELECT m.id, m.ts_us, u.name, a.name, m.body, m.priority, m.note
             FROM messages m JOIN users u ON u.id = m.user_id
             LEFT JOIN agents a ON a.id = m.agent_id ",
            $tail
        )
    };
}
pub(super) use select_messages;

pub(super) fn role_to_sql(role: Role) -> i64 {
    match role {
        Role::User => 0,
        Role::Agent => 1,
    }
}

/// Column `index` of `row`, as the client converts it.
pub(super) fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    Ok(row.try_get(index)?)
}

pub(super) fn name_at(row: &Row, index: usize) -> Result<Name> {
    parse_name(get(row, index)?)
}

pub(super) fn parse_name(text: &str) -> Result<Name> {
    Name::parse(text).map_err(|error| PostgresError::Corrupt(format!("name {text:?}: {error}")))
}

pub(super) fn message_from_row(row: &Row) -> Result<Message> {
    let agent = match get::<Option<&str>>(row, 3)? {
        Some(text) => Some(parse_name(text)?),
        None => None,
    };
    let body: &str = get(row, 4)?;
    Ok(Message {
        id: get::<i64>(row, 0)? as u64,
        ts: Timestamp::from_micros(get(row, 1)?),
        user: name_at(row, 2)?,
        from: if agent.is_some() {
            Role::Agent
        } else {
            Role::User
        },
        agent,
        body: Body::parse_stored(body, usize::MAX)
            .map_err(|error| PostgresError::Corrupt(format!("message body: {error}")))?,
        priority: priority_from_sql(get(row, 5)?),
        note: get(row, 6)?,
    })
}

/// Messages as `sql` selects them.
pub(super) fn collect_messages(
    conn: &mut Conn,
    sql: &'static str,
    params: super::conn::Params<'_>,
) -> Result<Vec<Message>> {
    conn.query(sql, params)?
        .iter()
        .map(message_from_row)
        .collect()
}

/// Ids are positive and below 2^63; anything larger means "no limit".
pub(super) fn sql_id(id: u64) -> i64 {
    id.min(i64::MAX as u64) as i64
}
