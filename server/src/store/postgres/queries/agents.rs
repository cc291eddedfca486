//! Agents: the `agent` commands' writes, the credential poll's reads, and
//! the release of conversations that removed agents still mark. The same
//! meaning as SQLite's (`store/sqlite/queries/agents.rs`), statement for
//! statement.

use switchboard_protocol::{Name, Role, Timestamp};

use super::super::Result;
use super::super::conn::Conn;
use super::{get, name_at, role_to_sql};
use crate::store::rules::{AgentRow, ReleaseDue};
use crate::store::{AgentCredential, AgentListing};

pub(in crate::store::postgres) fn find_agent(
    conn: &mut Conn,
    name: &Name,
) -> Result<Option<AgentRow>> {
    conn.query_opt(
        "SELECT id, name, token_hash, supervisor FROM agents WHERE name = $1",
        &[&name.as_str()],
    )?
    .map(|row| {
        Ok(AgentRow {
            id: get(&row, 0)?,
            name: name_at(&row, 1)?,
            token_hash: get(&row, 2)?,
            supervisor: get(&row, 3)?,
        })
    })
    .transpose()
}

/// Creates the agent, or gives a removed one a token again (its past
/// messages keep their author). A returning agent starts afresh: its
/// conversations are let go of now (their `released` left due for a running
/// server), and its idempotency keys are forgotten.
pub(in crate::store::postgres) fn upsert_agent(
    conn: &mut Conn,
    name: &Name,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<()> {
    conn.execute(
        "INSERT INTO releases_due (user_id, agent_id)
         SELECT u.id, u.assigned_agent_id FROM users u JOIN agents a ON a.id = u.assigned_agent_id
         WHERE a.name = $1 AND a.token_hash IS NULL
         ON CONFLICT (user_id) DO UPDATE SET agent_id = excluded.agent_id",
        &[&name.as_str()],
    )?;
    conn.execute(
        "UPDATE users SET assigned_agent_id = NULL
         WHERE assigned_agent_id = (SELECT id FROM agents WHERE name = $1 AND token_hash IS NULL)",
        &[&name.as_str()],
    )?;
    conn.execute(
        "DELETE FROM send_keys WHERE sender_role = $2
         AND sender_id = (SELECT id FROM agents WHERE name = $1 AND token_hash IS NULL)",
        &[&name.as_str(), &role_to_sql(Role::Agent)],
    )?;
    conn.execute(
        "INSERT INTO agents (name, token_hash, created_us, offline_since_us) VALUES ($1, $2, $3, $3)
         ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, supervisor = false",
        &[&name.as_str(), &token_hash, &now.as_micros()],
    )?;
    Ok(())
}

/// Makes an active agent a supervisor, or not; false if there is no such
/// active agent.
pub(in crate::store::postgres) fn set_supervisor(
    conn: &mut Conn,
    name: &Name,
    supervisor: bool,
) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE agents SET supervisor = $2 WHERE name = $1 AND token_hash IS NOT NULL",
        &[&name.as_str(), &supervisor],
    )?;
    Ok(changed == 1)
}

/// Replaces an agent's token; false if there is no such active agent.
pub(in crate::store::postgres) fn set_agent_token(
    conn: &mut Conn,
    name: &Name,
    token_hash: &[u8],
) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE agents SET token_hash = $2 WHERE name = $1 AND token_hash IS NOT NULL",
        &[&name.as_str(), &token_hash],
    )?;
    Ok(changed == 1)
}

/// Removes an agent's token; false if there is no such active agent. Its
/// conversations stay marked with it until a server releases them.
pub(in crate::store::postgres) fn remove_agent(conn: &mut Conn, name: &Name) -> Result<bool> {
    let removed = conn.execute(
        "UPDATE agents SET token_hash = NULL WHERE name = $1 AND token_hash IS NOT NULL",
        &[&name.as_str()],
    )?;
    Ok(removed == 1)
}

/// Whether a removed agent still marks a conversation, or a release is left
/// due: run every second, so the server writes only when there is
/// something to release.
pub(in crate::store::postgres) fn removed_agents_hold_conversations(
    conn: &mut Conn,
) -> Result<bool> {
    get(
        &conn.query_one(
            "SELECT EXISTS (SELECT 1 FROM agents a JOIN users u ON u.assigned_agent_id = a.id
                            WHERE a.token_hash IS NULL)
                 OR EXISTS (SELECT 1 FROM releases_due)",
            &[],
        )?,
        0,
    )
}

/// Conversations still marked with a removed agent: (user id, user,
/// agent), by user name.
pub(in crate::store::postgres) fn held_by_removed_agents(
    conn: &mut Conn,
) -> Result<Vec<(i64, Name, Name)>> {
    conn.query(
        "SELECT u.id, u.name, a.name FROM agents a JOIN users u ON u.assigned_agent_id = a.id
         WHERE a.token_hash IS NULL ORDER BY u.name",
        &[],
    )?
    .iter()
    .map(|row| Ok((get(row, 0)?, name_at(row, 1)?, name_at(row, 2)?)))
    .collect()
}

/// Takes the releases left due off the list, by user name.
pub(in crate::store::postgres) fn take_releases_due(conn: &mut Conn) -> Result<Vec<ReleaseDue>> {
    let mut due = conn
        .query(
            "WITH taken AS (DELETE FROM releases_due RETURNING user_id, agent_id)
             SELECT u.id, u.name, a.name, u.assigned_agent_id IS NOT NULL
             FROM taken t JOIN users u ON u.id = t.user_id JOIN agents a ON a.id = t.agent_id",
            &[],
        )?
        .iter()
        .map(|row| {
            Ok(ReleaseDue {
                user_id: get(row, 0)?,
                user: name_at(row, 1)?,
                agent: name_at(row, 2)?,
                taken: get(row, 3)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    due.sort_by(|a, b| a.user.as_str().cmp(b.user.as_str()));
    Ok(due)
}

/// Every agent's current token hash (`None`: removed).
pub(in crate::store::postgres) fn agent_credentials(
    conn: &mut Conn,
) -> Result<Vec<AgentCredential>> {
    conn.query("SELECT name, token_hash FROM agents", &[])?
        .iter()
        .map(|row| Ok((name_at(row, 0)?, get(row, 1)?)))
        .collect()
}

/// Active agents with how many conversations each holds, and whether each
/// is a supervisor, by name.
pub(in crate::store::postgres) fn list_agents(conn: &mut Conn) -> Result<Vec<AgentListing>> {
    conn.query(
        "SELECT a.name, (SELECT count(*) FROM users u WHERE u.assigned_agent_id = a.id),
                a.supervisor
         FROM agents a WHERE a.token_hash IS NOT NULL ORDER BY a.name",
        &[],
    )?
    .iter()
    .map(|row| {
        Ok(AgentListing {
            name: name_at(row, 0)?,
            holds: get::<i64>(row, 1)? as u64,
            supervisor: get(row, 2)?,
        })
    })
    .collect()
}
