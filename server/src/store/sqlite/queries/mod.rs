//! Every SQL statement the server runs, as plain synchronous functions on a
//! connection, one file per table or concern: the writer and reader threads
//! call them, the `agent` commands call them too, and
//! the tests run them against an in-memory database. This file holds what
//! they share: reading a message row, priorities as integers, ids as SQL
//! integers.

use crate::store::stored_priority::priority_from_sql;
pub(in crate::store) use crate::store::stored_priority::priority_to_sql;
use rusqlite::{Connection, Row};
use switchboard_protocol::{Body, Message, Name, Role, Timestamp};

pub(in crate::store) use crate::store::rules::{AgentRow, UserRow};

pub type Result<T> = rusqlite::Result<T>;

fn conversion_error(
    index: usize,
    error: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error))
}

fn name_at(row: &Row<'_>, index: usize) -> Result<Name> {
    let text: String = row.get(index)?;
    Name::parse(&text).map_err(|e| conversion_error(index, e))
}

/// The columns [`message_from_row`] reads, joined for names.
///
/// Names come from scalar subqueries, not joins: SQLite re-prepares a join
/// whose WHERE compares a column with a bound parameter every time the value
/// changes (constant propagation), which cost the writer a quarter of its
/// time. A macro so that each query is one literal, nameable in tests.
macro_rules! select_messages {
    ($tail:literal) => {
        select_messages!("", $tail)
    };
    ($head:expr, $tail:literal) => {
        concat!(
            $head,
            "SELECT m.id, m.ts_us,
                    (SELECT name FROM users WHERE id = m.user_id),
                    (SELECT name FROM agents WHERE id = m.agent_id),
                    m.body, m.priority, m.note
             FROM ",
            $tail
        )
    };
}

fn message_from_row(row: &Row<'_>) -> Result<Message> {
    let agent = match row.get::<_, Option<String>>(3)? {
        Some(text) => Some(Name::parse(&text).map_err(|e| conversion_error(3, e))?),
        None => None,
    };
    let body: String = row.get(4)?;
    Ok(Message {
        id: row.get::<_, i64>(0)? as u64,
        ts: Timestamp::from_micros(row.get(1)?),
        user: name_at(row, 2)?,
        from: if agent.is_some() {
            Role::Agent
        } else {
            Role::User
        },
        agent,
        body: Body::parse_stored(&body, usize::MAX).map_err(|e| conversion_error(4, e))?,
        priority: priority_from_sql(row.get(5)?),
        note: row.get(6)?,
    })
}

fn collect_messages(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Message>> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, message_from_row)?;
    rows.collect()
}

/// Ids are positive and below 2^63; anything larger means "no limit".
fn sql_id(id: u64) -> i64 {
    id.min(i64::MAX as u64) as i64
}

// Declared after the macros above, which they use.
pub mod agents;
pub mod keys;
pub mod messages;
pub mod names;
pub mod presence;
pub mod users;
pub mod waiting;

pub use agents::*;
pub use keys::*;
pub use messages::*;
pub use names::*;
pub use presence::*;
pub use users::*;
pub use waiting::*;
