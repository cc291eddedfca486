//! Users: sign-in lookups, registration, and who holds each conversation.

use switchboard_protocol::{Name, Timestamp};

use super::super::Result;
use super::super::conn::Conn;
use super::{get, name_at};
use crate::store::rules::UserRow;

/// A user with its holder; a removed agent holds nothing (its name is
/// joined only while it has a token).
macro_rules! find_user {
    ($lock:literal) => {
        concat!(
            "SELECT u.id, u.token_hash, u.assigned_agent_id, a.name
             FROM users u LEFT JOIN agents a
                ON a.id = u.assigned_agent_id AND a.token_hash IS NOT NULL
             WHERE u.name = $1",
            $lock
        )
    };
}

/// For deciding, in the writer's transaction: the row stays locked until
/// commit, so two answers to one user are decided one after the other
/// (`Tables::find_user`'s contract; the sequencer row already orders every
/// writer, this keeps the contract on its own).
const FIND_USER_FOR_UPDATE: &str = find_user!(" FOR UPDATE OF u");
/// For answering, in a reader's snapshot: no lock.
const FIND_USER: &str = find_user!("");

pub(in crate::store::postgres) fn find_user_for_update(
    conn: &mut Conn,
    name: &Name,
) -> Result<Option<UserRow>> {
    read_user(conn, FIND_USER_FOR_UPDATE, name)
}

pub(in crate::store::postgres) fn find_user(
    conn: &mut Conn,
    name: &Name,
) -> Result<Option<UserRow>> {
    read_user(conn, FIND_USER, name)
}

fn read_user(conn: &mut Conn, sql: &'static str, name: &Name) -> Result<Option<UserRow>> {
    let Some(row) = conn.query_opt(sql, &[&name.as_str()])? else {
        return Ok(None);
    };
    let assigned = match (get::<Option<i64>>(&row, 2)?, get::<Option<&str>>(&row, 3)?) {
        (Some(agent_id), Some(_)) => Some((agent_id, name_at(&row, 3)?)),
        _ => None,
    };
    Ok(Some(UserRow {
        id: get(&row, 0)?,
        token_hash: get(&row, 1)?,
        assigned,
    }))
}

pub(in crate::store::postgres) fn user_id(conn: &mut Conn, name: &Name) -> Result<Option<i64>> {
    conn.query_opt("SELECT id FROM users WHERE name = $1", &[&name.as_str()])?
        .map(|row| get(&row, 0))
        .transpose()
}

pub(in crate::store::postgres) fn insert_user(
    conn: &mut Conn,
    name: &Name,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<()> {
    conn.execute(
        "INSERT INTO users (name, token_hash, created_us) VALUES ($1, $2, $3)",
        &[&name.as_str(), &token_hash, &now.as_micros()],
    )?;
    Ok(())
}

/// Who holds a user's conversation; drops a release left due for it
/// (`Tables::set_assignment`). One round trip.
pub(in crate::store::postgres) fn set_assignment(
    conn: &mut Conn,
    user_id: i64,
    holder: Option<(i64, Timestamp)>,
) -> Result<()> {
    // A release keeps the last holding's time: it is read only with a
    // holder.
    let (agent_id, since) = match holder {
        Some((agent_id, since)) => (Some(agent_id), Some(since.as_micros())),
        None => (None, None),
    };
    conn.execute(
        "WITH due AS (DELETE FROM releases_due WHERE user_id = $1)
         UPDATE users SET assigned_agent_id = $2, held_since_us = coalesce($3, held_since_us)
         WHERE id = $1",
        &[&user_id, &agent_id, &since],
    )?;
    Ok(())
}

/// Every held conversation: (user, agent). Those of removed agents are
/// not held any more, even before the server releases them.
pub(in crate::store::postgres) fn assignments(conn: &mut Conn) -> Result<Vec<(Name, Name)>> {
    conn.query(
        "SELECT u.name, a.name FROM users u JOIN agents a ON a.id = u.assigned_agent_id
         WHERE u.assigned_agent_id IS NOT NULL AND a.token_hash IS NOT NULL
         ORDER BY u.name",
        &[],
    )?
    .iter()
    .map(|row| Ok((name_at(row, 0)?, name_at(row, 1)?)))
    .collect()
}
