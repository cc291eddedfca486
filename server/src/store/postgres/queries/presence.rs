//! Agents' presence as auto-release counts it (schema 5): each agent's
//! clock (`offline_since_us`, NULL while it has a row in `sb_connections`
//! on any node), kept in the transactions that open and close those rows,
//! and the conversations due (the rule: `rules/connections.rs`).

use std::time::Duration;

use switchboard_protocol::{Name, Role, Timestamp};

use super::super::Result;
use super::super::conn::Conn;
use super::{name_at, role_to_sql};
use crate::event::Member;

/// The cluster's start, in SQL: the earliest start among the nodes that
/// hold a current lease (this one among them). A node joining a running
/// cluster leaves it as it was; once every node has stopped and their
/// leases ran out, the next start is the cluster's. (A macro, so that each
/// query using it stays one literal.)
macro_rules! cluster_started {
    () => {
        concat!(
            "(SELECT coalesce(min(started_us), 0) FROM sb_nodes WHERE lease_until_us >= ",
            now_us!(),
            ")"
        )
    };
}

/// Where held conversations due at `$1` are: the holder active, offline
/// since then or before, holding since then or before, and the cluster
/// running since then or before.
macro_rules! due_at {
    () => {
        concat!(
            "FROM agents a JOIN users u ON u.assigned_agent_id = a.id
             WHERE a.token_hash IS NOT NULL AND a.offline_since_us <= $1
               AND u.held_since_us <= $1 AND ",
            cluster_started!(),
            " <= $1"
        )
    };
}

/// Whether any conversation is due for a limit of `after`, by the
/// database's clock.
pub(in crate::store::postgres) fn offline_holders_due(
    conn: &mut Conn,
    after: Duration,
) -> Result<bool> {
    let after = i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
    let now: i64 = conn
        .query_one(concat!("SELECT ", now_us!()), &[])?
        .try_get(0)?;
    let row = conn.query_one(
        concat!("SELECT EXISTS (SELECT 1 ", due_at!(), ")"),
        &[&now.saturating_sub(after)],
    )?;
    Ok(row.try_get(0)?)
}

/// `member`, an agent's connection, counts if its row was recorded: the
/// agent's clock stops.
pub(in crate::store::postgres) fn agent_connected(conn: &mut Conn, member: &Member) -> Result<()> {
    conn.execute(
        "UPDATE agents SET offline_since_us = NULL
         WHERE name = $1 AND EXISTS (
            SELECT 1 FROM sb_connections WHERE node = $2 AND conn = $3
         )",
        &[
            &member.name.as_str(),
            &(member.node.0 as i32),
            &(member.conn as i64),
        ],
    )?;
    Ok(())
}

/// `member`'s row is gone; if its agent has none left on any node, the
/// agent's clock starts at `at` (a clock already running is left as it
/// runs).
pub(in crate::store::postgres) fn agent_disconnected(
    conn: &mut Conn,
    member: &Member,
    at: Timestamp,
) -> Result<()> {
    conn.execute(
        "UPDATE agents SET offline_since_us = $2
         WHERE name = $1 AND offline_since_us IS NULL
           AND NOT EXISTS (SELECT 1 FROM sb_connections WHERE role = $3 AND name = $1)",
        &[
            &member.name.as_str(),
            &at.as_micros(),
            &role_to_sql(Role::Agent),
        ],
    )?;
    Ok(())
}

/// Held conversations due for auto-release at `deadline`: (user id, user,
/// agent), by user name.
pub(in crate::store::postgres) fn offline_holders(
    conn: &mut Conn,
    deadline: Timestamp,
) -> Result<Vec<(i64, Name, Name)>> {
    let rows = conn.query(
        concat!(
            "SELECT u.id, u.name, a.name ",
            due_at!(),
            " ORDER BY u.name"
        ),
        &[&deadline.as_micros()],
    )?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, name_at(row, 1)?, name_at(row, 2)?)))
        .collect()
}
