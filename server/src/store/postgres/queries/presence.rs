//! Agents' presence as auto-release counts it (schema 5): each agent's
//! clock (`offline_since_us`, NULL while it has a row in `sb_connections`
//! on any node), kept in the transactions that open and close those rows,
//! and the conversations due (the rule: `rules/connections.rs`).

use std::time::Duration;

use switchboard_protocol::{Name, Role, Timestamp};

use super::super::Result;
use super::super::conn::Conn;
use super::{name_at, role_to_sql};
use crate::event::{Member, NodeId};

/// Whether any conversation is due for a limit of `after`, by the
/// database's clock.
pub(in crate::store::postgres) fn offline_holders_due(
    conn: &mut Conn,
    after: Duration,
) -> Result<bool> {
    let after = i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
    let row = conn.query_one(
        concat!(
            "WITH clock AS (SELECT ",
            now_us!(),
            " - $1 AS deadline)
             SELECT EXISTS (
                SELECT 1 FROM clock, agents a JOIN users u ON u.assigned_agent_id = a.id
                WHERE a.token_hash IS NOT NULL
                  AND a.offline_since_us <= clock.deadline AND u.held_since_us <= clock.deadline
             )"
        ),
        &[&after],
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

/// Held conversations whose active holder has been offline, and has held
/// them, since `deadline` or before: (user id, user, agent), by user name.
pub(in crate::store::postgres) fn offline_holders(
    conn: &mut Conn,
    deadline: Timestamp,
) -> Result<Vec<(i64, Name, Name)>> {
    let rows = conn.query(
        "SELECT u.id, u.name, a.name FROM agents a JOIN users u ON u.assigned_agent_id = a.id
         WHERE a.token_hash IS NOT NULL AND a.offline_since_us <= $1 AND u.held_since_us <= $1
         ORDER BY u.name",
        &[&deadline.as_micros()],
    )?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, name_at(row, 1)?, name_at(row, 2)?)))
        .collect()
}

/// `node` starts: if no other node holds a current lease, the cluster
/// starts now, and so does the clock of every agent with no connection
/// recorded (a node joining a running cluster leaves the clocks as they
/// run; agents still recorded on a dead node get theirs when it is swept).
pub(in crate::store::postgres) fn start_presence_clocks(
    conn: &mut Conn,
    node: NodeId,
) -> Result<()> {
    conn.execute(
        concat!(
            "WITH clock AS (SELECT ",
            now_us!(),
            " AS now_us)
             UPDATE agents a SET offline_since_us = clock.now_us FROM clock
             WHERE NOT EXISTS (
                SELECT 1 FROM sb_nodes n WHERE n.id <> $1 AND n.lease_until_us >= clock.now_us
             )
               AND NOT EXISTS (SELECT 1 FROM sb_connections c WHERE c.role = $2 AND c.name = a.name)"
        ),
        &[&(node.0 as i32), &role_to_sql(Role::Agent)],
    )?;
    Ok(())
}
