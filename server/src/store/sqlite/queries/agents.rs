//! Agents: the `agent` commands' writes, the credential poll's reads, and
//! the release of conversations that removed agents still mark.

use rusqlite::{Connection, OptionalExtension, params};
use switchboard_protocol::{Name, Role, Timestamp};

use super::keys::role_to_sql;
use super::{AgentRow, Result, name_at};
use crate::store::rules::ReleaseDue;
use crate::store::{AgentCredential, AgentListing};

pub(crate) const FIND_AGENT: &str =
    "SELECT id, name, token_hash, supervisor FROM agents WHERE name = ?1";

pub fn find_agent(conn: &Connection, name: &Name) -> Result<Option<AgentRow>> {
    conn.prepare_cached(FIND_AGENT)?
        .query_row([name.as_str()], |row| {
            Ok(AgentRow {
                id: row.get(0)?,
                name: name_at(row, 1)?,
                token_hash: row.get(2)?,
                supervisor: row.get(3)?,
            })
        })
        .optional()
}

/// Creates the agent, or gives a removed one a token again (its past
/// messages keep their author). A returning agent starts afresh: it does not
/// get back the conversations it held when it was removed, nor its
/// idempotency keys (an old key would replay an old answer, perhaps to
/// another user, instead of sending).
pub fn upsert_agent(
    conn: &Connection,
    name: &Name,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<()> {
    const REMOVED: &str = "(SELECT id FROM agents WHERE name = ?1 AND token_hash IS NULL)";
    // Its conversations are let go of now; their `released` is left due for
    // a running server (see `release_removed_agents`).
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO releases_due (user_id, agent_id)
             SELECT id, assigned_agent_id FROM users WHERE assigned_agent_id = {REMOVED}"
        ),
        [name.as_str()],
    )?;
    conn.execute(
        &format!("UPDATE users SET assigned_agent_id = NULL WHERE assigned_agent_id = {REMOVED}"),
        [name.as_str()],
    )?;
    conn.execute(
        &format!("DELETE FROM send_keys WHERE sender_role = ?2 AND sender_id = {REMOVED}"),
        params![name.as_str(), role_to_sql(Role::Agent)],
    )?;
    conn.prepare_cached(
        "INSERT INTO agents (name, token_hash, created_us, offline_since_us) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, supervisor = 0",
    )?
    .execute(params![name.as_str(), token_hash, now.as_micros()])?;
    Ok(())
}

/// Makes an active agent a supervisor, or not; false if there is no such
/// active agent.
pub fn set_supervisor(conn: &Connection, name: &Name, supervisor: bool) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE agents SET supervisor = ?2 WHERE name = ?1 AND token_hash IS NOT NULL",
        )?
        .execute(params![name.as_str(), supervisor])?;
    Ok(changed == 1)
}

/// Replaces an agent's token; false if there is no such active agent.
pub fn set_agent_token(conn: &Connection, name: &Name, token_hash: &[u8]) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE agents SET token_hash = ?2 WHERE name = ?1 AND token_hash IS NOT NULL",
        )?
        .execute(params![name.as_str(), token_hash])?;
    Ok(changed == 1)
}

/// Removes an agent's token; false if there is no such active agent.
///
/// The conversations it held count as unassigned from now on, but stay
/// marked with it until a running server releases them with
/// [`release_removed_agents`], so that it can tell everyone which ones.
pub fn remove_agent(conn: &Connection, name: &Name) -> Result<bool> {
    let removed = conn.execute(
        "UPDATE agents SET token_hash = NULL WHERE name = ?1 AND token_hash IS NOT NULL",
        [name.as_str()],
    )?;
    Ok(removed == 1)
}

/// Whether a removed agent still marks a conversation: a cheap check, run
/// every second, so the server writes only when there is something to
/// release. `CROSS JOIN` keeps SQLite to this order: the few agents, then
/// the index of users by agent (not every user).
pub fn removed_agents_hold_conversations(conn: &Connection) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM agents a CROSS JOIN users u ON u.assigned_agent_id = a.id
                        WHERE a.token_hash IS NULL)
             OR EXISTS (SELECT 1 FROM releases_due)",
    )?
    .query_row([], |row| row.get(0))
}

/// Conversations still marked with a removed agent: (user id, user,
/// agent), by user name (`Tables::held_by_removed_agents`).
pub fn held_by_removed_agents(conn: &Connection) -> Result<Vec<(i64, Name, Name)>> {
    conversations_at(
        conn,
        "SELECT u.id, u.name, a.name
         FROM agents a CROSS JOIN users u ON u.assigned_agent_id = a.id
         WHERE a.token_hash IS NULL
         ORDER BY u.name",
    )
}

/// Takes the releases left due off the list (`upsert_agent`), by user name.
pub fn take_releases_due(conn: &Connection) -> Result<Vec<ReleaseDue>> {
    let due = {
        let mut statement = conn.prepare_cached(
            "SELECT u.id, u.name, a.name, u.assigned_agent_id IS NOT NULL
             FROM releases_due r JOIN users u ON u.id = r.user_id JOIN agents a ON a.id = r.agent_id
             ORDER BY u.name",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(ReleaseDue {
                user_id: row.get(0)?,
                user: name_at(row, 1)?,
                agent: name_at(row, 2)?,
                taken: row.get(3)?,
            })
        })?;
        rows.collect::<Result<Vec<_>>>()?
    };
    conn.prepare_cached("DELETE FROM releases_due")?
        .execute([])?;
    Ok(due)
}

/// Conversations as `sql` selects them: (user id, user, agent).
fn conversations_at(conn: &Connection, sql: &str) -> Result<Vec<(i64, Name, Name)>> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map([], |row| {
        Ok((row.get(0)?, name_at(row, 1)?, name_at(row, 2)?))
    })?;
    rows.collect()
}

/// Every agent's current token hash (`None`: removed), to notice tokens
/// rotated or revoked by another process.
pub fn agent_credentials(conn: &Connection) -> Result<Vec<AgentCredential>> {
    let mut statement = conn.prepare_cached("SELECT name, token_hash FROM agents")?;
    let rows = statement.query_map([], |row| Ok((name_at(row, 0)?, row.get(1)?)))?;
    rows.collect()
}

/// Active agents with how many conversations each holds, and whether each
/// is a supervisor.
pub fn list_agents(conn: &Connection) -> Result<Vec<AgentListing>> {
    let mut statement = conn.prepare(
        "SELECT a.name, (SELECT count(*) FROM users u WHERE u.assigned_agent_id = a.id),
                a.supervisor
         FROM agents a WHERE a.token_hash IS NOT NULL ORDER BY a.name",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(AgentListing {
            name: name_at(row, 0)?,
            holds: row.get::<_, i64>(1)? as u64,
            supervisor: row.get(2)?,
        })
    })?;
    rows.collect()
}
