//! Users: sign-in lookups, registration, and who holds each conversation.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Statement, params};
use switchboard_protocol::{Name, Timestamp};

use super::{Result, UserRow, name_at};

/// One of the statements the writer runs for every message (in
/// [`HotStatements`](crate::store::sqlite::tables::HotStatements)); a test
/// checks SQLite never re-prepares them.
///
/// A conversation held by a removed agent counts as unassigned (see
/// [`release_removed_agents`](super::release_removed_agents)).
pub(crate) const FIND_USER: &str = "SELECT u.id, u.token_hash, u.assigned_agent_id,
            (SELECT name FROM agents WHERE id = u.assigned_agent_id AND token_hash IS NOT NULL)
     FROM users u WHERE u.name = ?1";
/// Covered by the unique index on names: one b-tree descent, where
/// [`FIND_USER`] also reads the row and its holder's name.
pub(crate) const USER_ID: &str = "SELECT id FROM users WHERE name = ?1";

pub fn find_user(conn: &Connection, name: &Name) -> Result<Option<UserRow>> {
    let mut statement = conn.prepare_cached(FIND_USER)?;
    read_user(&mut statement, name)
}

pub(crate) fn read_user(find_user: &mut Statement<'_>, name: &Name) -> Result<Option<UserRow>> {
    find_user
        .query_row([name.as_str()], |row| {
            // No name: nobody, or a removed agent.
            let assigned = match (row.get::<_, Option<i64>>(2)?, row.get_ref(3)?) {
                (Some(agent_id), ValueRef::Text(_)) => Some((agent_id, name_at(row, 3)?)),
                _ => None,
            };
            Ok(UserRow {
                id: row.get(0)?,
                token_hash: row.get(1)?,
                assigned,
            })
        })
        .optional()
}

pub fn insert_user(
    conn: &Connection,
    name: &Name,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<i64> {
    conn.prepare_cached("INSERT INTO users (name, token_hash, created_us) VALUES (?1, ?2, ?3)")?
        .execute(params![name.as_str(), token_hash, now.as_micros()])?;
    Ok(conn.last_insert_rowid())
}

pub fn set_assignment(
    conn: &Connection,
    user_id: i64,
    holder: Option<(i64, Timestamp)>,
) -> Result<()> {
    match holder {
        Some((agent_id, since)) => conn
            .prepare_cached(
                "UPDATE users SET assigned_agent_id = ?2, held_since_us = ?3 WHERE id = ?1",
            )?
            .execute(params![user_id, agent_id, since.as_micros()])?,
        None => conn
            .prepare_cached("UPDATE users SET assigned_agent_id = NULL WHERE id = ?1")?
            .execute([user_id])?,
    };
    // Whoever takes or releases the user now was heard of (`assigned`,
    // `released`): a release still due from a re-added agent is stale, and
    // announcing it later would clear questions asked since.
    conn.prepare_cached("DELETE FROM releases_due WHERE user_id = ?1")?
        .execute([user_id])?;
    Ok(())
}

/// Every held conversation: (user, agent). Those of removed agents are
/// not held any more, even before the server releases them.
pub fn assignments(conn: &Connection) -> Result<Vec<(Name, Name)>> {
    let mut statement = conn.prepare_cached(
        "SELECT u.name, a.name
         FROM users u INDEXED BY users_by_assigned_agent
         JOIN agents a ON a.id = u.assigned_agent_id
         WHERE u.assigned_agent_id IS NOT NULL AND a.token_hash IS NOT NULL
         ORDER BY u.name",
    )?;
    let rows = statement.query_map([], |row| Ok((name_at(row, 0)?, name_at(row, 1)?)))?;
    rows.collect()
}
