//! Agents' presence as auto-release counts it (schema 11): the agents'
//! subscribed connections, each agent's clock (`offline_since_us`, NULL
//! while it has one), and the conversations due (the rule:
//! `rules/connections.rs`).

use std::time::Duration;

use rusqlite::{Connection, params};
use switchboard_protocol::{Name, Role, Timestamp};

use super::{Result, name_at};
use crate::event::{ConnId, Member, NodeId};

/// Where held conversations due at `?1` are: the holder active, offline
/// since then or before, and holding since then or before.
macro_rules! offline_holders {
    () => {
        "FROM agents a JOIN users u ON u.assigned_agent_id = a.id
         WHERE a.token_hash IS NOT NULL AND a.offline_since_us <= ?1 AND u.held_since_us <= ?1"
    };
}

/// `member`, an agent's connection, counts: its clock stops.
pub fn agent_connected(conn: &Connection, member: &Member) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO agent_connections (conn, agent) VALUES (?1, ?2)")?
        .execute(params![member.conn as i64, member.name.as_str()])?;
    conn.prepare_cached("UPDATE agents SET offline_since_us = NULL WHERE name = ?1")?
        .execute([member.name.as_str()])?;
    Ok(())
}

/// `member` stops counting; if it was its agent's last, the agent's clock
/// starts at `at` (a clock already running is left as it runs).
pub fn agent_disconnected(conn: &Connection, member: &Member, at: Timestamp) -> Result<()> {
    conn.prepare_cached("DELETE FROM agent_connections WHERE conn = ?1")?
        .execute([member.conn as i64])?;
    conn.prepare_cached(
        "UPDATE agents SET offline_since_us = ?2
         WHERE name = ?1 AND offline_since_us IS NULL
           AND NOT EXISTS (SELECT 1 FROM agent_connections WHERE agent = ?1)",
    )?
    .execute(params![member.name.as_str(), at.as_micros()])?;
    Ok(())
}

/// Forgets the agents' connections but `live` ones (a removal lost on the
/// way): the connections forgotten, for their agents' clocks.
pub fn forget_agent_connections(conn: &Connection, live: &[ConnId]) -> Result<Vec<Member>> {
    let mut statement = conn.prepare_cached("SELECT conn, agent FROM agent_connections")?;
    let recorded: Vec<(i64, Name)> = statement
        .query_map([], |row| Ok((row.get(0)?, name_at(row, 1)?)))?
        .collect::<Result<_>>()?;
    let mut forgotten = Vec::new();
    for (id, agent) in recorded {
        let id = id as ConnId;
        if live.contains(&id) {
            continue;
        }
        conn.prepare_cached("DELETE FROM agent_connections WHERE conn = ?1")?
            .execute([id as i64])?;
        forgotten.push(Member {
            node: NodeId::LOCAL,
            conn: id,
            role: Role::Agent,
            name: agent,
        });
    }
    Ok(forgotten)
}

/// Held conversations whose active holder has been offline, and has held
/// them, since `deadline` or before: (user id, user, agent), by user name.
pub fn offline_holders(conn: &Connection, deadline: Timestamp) -> Result<Vec<(i64, Name, Name)>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT u.id, u.name, a.name ",
        offline_holders!(),
        " ORDER BY u.name"
    ))?;
    let rows = statement.query_map([deadline.as_micros()], |row| {
        Ok((row.get(0)?, name_at(row, 1)?, name_at(row, 2)?))
    })?;
    rows.collect()
}

/// Whether any conversation is due at `now` for a limit of `after`.
pub fn offline_holders_due(conn: &Connection, now: Timestamp, after: Duration) -> Result<bool> {
    let after = i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
    conn.prepare_cached(concat!("SELECT EXISTS (SELECT 1 ", offline_holders!(), ")"))?
        .query_row([now.as_micros().saturating_sub(after)], |row| row.get(0))
}

/// The server starts: nobody is connected, and every agent's clock starts
/// now (a holder offline since before a restart gets the whole time again).
pub fn restart_presence_clocks(conn: &Connection, now: Timestamp) -> Result<()> {
    conn.prepare_cached("DELETE FROM agent_connections")?
        .execute([])?;
    conn.prepare_cached("UPDATE agents SET offline_since_us = ?1")?
        .execute([now.as_micros()])?;
    Ok(())
}
