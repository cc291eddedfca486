//! Every SQL statement the server runs, as plain synchronous functions on a
//! connection: the writer and reader threads call them, the `agent` CLI calls
//! them directly, and the tests run them against an in-memory database.

use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, Connection, OptionalExtension, Row, Statement, params};
use switchboard_protocol::{Body, Message, Name, Priority, Role, Timestamp};

use super::rules::Tables;
pub use super::rules::{AgentRow, UserRow};
use crate::event::Seq;

pub type Result<T> = rusqlite::Result<T>;

pub fn priority_to_sql(priority: Priority) -> i64 {
    match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

fn priority_from_sql(value: i64) -> Priority {
    match value {
        0 => Priority::Low,
        2 => Priority::High,
        3 => Priority::Urgent,
        _ => Priority::Normal,
    }
}

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
                    m.body, m.priority
             FROM ",
            $tail
        )
    };
}

/// A conversation's chain, newest first, from message `?1` back to (not
/// including) the first id at or below `?2`, at most `?3` messages. LIMIT
/// inside the recursion stops the walk, not just its output.
macro_rules! chain {
    () => {
        "WITH RECURSIVE chain(id) AS (
            SELECT ?1 WHERE ?1 > ?2
            UNION ALL
            SELECT m.prev_id FROM chain JOIN messages m ON m.id = chain.id
            WHERE m.prev_id > ?2
            LIMIT ?3
         ) "
    };
}

/// The statements the writer runs for every message; a test checks SQLite
/// never re-prepares them.
///
/// A conversation held by a removed agent counts as unassigned (see
/// [`release_removed_agents`]).
const FIND_USER: &str = "SELECT u.id, u.token_hash, u.assigned_agent_id,
            (SELECT name FROM agents WHERE id = u.assigned_agent_id AND token_hash IS NOT NULL)
     FROM users u WHERE u.name = ?1";
/// Covered by the unique index on names: one b-tree descent, where
/// [`FIND_USER`] also reads the row and its holder's name.
const USER_ID: &str = "SELECT id FROM users WHERE name = ?1";
const FIND_AGENT: &str = "SELECT id, name, token_hash FROM agents WHERE name = ?1";
const MESSAGE_BY_ID: &str = select_messages!("messages m WHERE m.id = ?1");
const LAST_MESSAGE: &str = "SELECT last_message_id, length FROM conversations WHERE user_id = ?1";
const INSERT_MESSAGE: &str =
    "INSERT INTO messages (ts_us, user_id, agent_id, body, priority, prev_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// Not `length = length + 1 ... RETURNING length`: RETURNING goes through a
/// temporary table and made the writer's whole per-message cost a third
/// higher (callgrind); the writer reads the length with the last message.
const SET_LAST_MESSAGE: &str =
    "INSERT INTO conversations (user_id, last_message_id, length) VALUES (?1, ?2, ?3)
     ON CONFLICT (user_id) DO UPDATE
        SET last_message_id = excluded.last_message_id, length = excluded.length";
const ADD_MARK: &str = "INSERT INTO conversation_marks (user_id, message_id) VALUES (?1, ?2)";
const ADD_WAITING: &str = "INSERT INTO waiting (message_id, user_id, urgency) VALUES (?1, ?2, ?3)";
const FIND_KEY: &str =
    "SELECT message_id FROM send_keys WHERE sender_role = ?1 AND sender_id = ?2 AND key = ?3";

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
        body: Body::parse(&body, usize::MAX).map_err(|e| conversion_error(4, e))?,
        priority: priority_from_sql(row.get(5)?),
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

// ---- users ---------------------------------------------------------------

pub fn find_user(conn: &Connection, name: &Name) -> Result<Option<UserRow>> {
    let mut statement = conn.prepare_cached(FIND_USER)?;
    read_user(&mut statement, name)
}

fn read_user(find_user: &mut Statement<'_>, name: &Name) -> Result<Option<UserRow>> {
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

pub fn set_assignment(conn: &Connection, user_id: i64, agent_id: Option<i64>) -> Result<()> {
    conn.prepare_cached("UPDATE users SET assigned_agent_id = ?2 WHERE id = ?1")?
        .execute(params![user_id, agent_id])?;
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

// ---- agents --------------------------------------------------------------

pub fn find_agent(conn: &Connection, name: &Name) -> Result<Option<AgentRow>> {
    conn.prepare_cached(FIND_AGENT)?
        .query_row([name.as_str()], |row| {
            Ok(AgentRow {
                id: row.get(0)?,
                name: name_at(row, 1)?,
                token_hash: row.get(2)?,
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
        "INSERT INTO agents (name, token_hash, created_us) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash",
    )?
    .execute(params![name.as_str(), token_hash, now.as_micros()])?;
    Ok(())
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

/// Lets go of every conversation still marked with a removed agent, as if
/// the agent had released it: the user's waiting messages stop waiting too
/// (what `released` means to every client). Returns them as (user, agent).
///
/// Also the releases left due by an agent added again before a server got
/// here (`upsert_agent`): each is announced the same way, unless the user
/// was taken since (everyone then heard `assigned` instead).
pub fn release_removed_agents(conn: &Connection) -> Result<Vec<(Name, Name)>> {
    // Read before anything below changes an assignment: a user freed just
    // now, from another removed agent, was not free when it came due.
    let due = conversations_at(
        conn,
        "SELECT u.id, u.name, a.name
         FROM releases_due r JOIN users u ON u.id = r.user_id JOIN agents a ON a.id = r.agent_id
         WHERE u.assigned_agent_id IS NULL
         ORDER BY u.name",
    )?;
    conn.prepare_cached("DELETE FROM releases_due")?
        .execute([])?;
    let held = conversations_at(
        conn,
        "SELECT u.id, u.name, a.name
         FROM agents a CROSS JOIN users u ON u.assigned_agent_id = a.id
         WHERE a.token_hash IS NULL
         ORDER BY u.name",
    )?;
    let mut released = Vec::with_capacity(held.len() + due.len());
    for (user_id, user, agent) in held {
        set_assignment(conn, user_id, None)?;
        clear_waiting(conn, user_id)?;
        released.push((user, agent));
    }
    for (user_id, user, agent) in due {
        clear_waiting(conn, user_id)?;
        released.push((user, agent));
    }
    Ok(released)
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
pub fn agent_credentials(conn: &Connection) -> Result<Vec<super::AgentCredential>> {
    let mut statement = conn.prepare_cached("SELECT name, token_hash FROM agents")?;
    let rows = statement.query_map([], |row| Ok((name_at(row, 0)?, row.get(1)?)))?;
    rows.collect()
}

/// Active agents with how many conversations each holds.
pub fn list_agents(conn: &Connection) -> Result<Vec<(Name, u64)>> {
    let mut statement = conn.prepare(
        "SELECT a.name, (SELECT count(*) FROM users u WHERE u.assigned_agent_id = a.id)
         FROM agents a WHERE a.token_hash IS NOT NULL ORDER BY a.name",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((name_at(row, 0)?, row.get::<_, i64>(1)? as u64))
    })?;
    rows.collect()
}

// ---- messages ------------------------------------------------------------

/// [`HotStatements::insert_message`] on its own, for tests.
#[cfg(test)]
pub fn insert_message(
    conn: &Connection,
    ts: Timestamp,
    user_id: i64,
    agent_id: Option<i64>,
    body: &Body,
    priority: Priority,
) -> Result<u64> {
    HotStatements::new(conn)?.insert_message(ts, user_id, agent_id, body, priority)
}

/// The newest message of a conversation, where its chain starts.
fn last_message(conn: &Connection, user_id: i64) -> Result<Option<u64>> {
    let mut statement = conn.prepare_cached(LAST_MESSAGE)?;
    read_last_message(&mut statement, user_id)
}

fn read_last_message(last_message: &mut Statement<'_>, user_id: i64) -> Result<Option<u64>> {
    Ok(read_conversation_end(last_message, user_id)?.map(|(last, _)| last))
}

/// A conversation's newest message and how many it has; `None` before its
/// first.
fn read_conversation_end(
    last_message: &mut Statement<'_>,
    user_id: i64,
) -> Result<Option<(u64, i64)>> {
    last_message
        .query_row([user_id], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)?))
        })
        .optional()
}

/// The statements the writer runs for every message, taken out of the
/// statement cache once per group instead of at every use: a lookup hashes
/// the whole SQL text and relinks the cache's list, and with five lookups a
/// message that was a tenth of the server's instructions (callgrind).
pub struct HotStatements<'c> {
    conn: &'c Connection,
    find_user: CachedStatement<'c>,
    user_id: CachedStatement<'c>,
    last_message: CachedStatement<'c>,
    insert_message: CachedStatement<'c>,
    set_last_message: CachedStatement<'c>,
    add_waiting: CachedStatement<'c>,
}

impl<'c> HotStatements<'c> {
    pub fn new(conn: &'c Connection) -> Result<Self> {
        Ok(Self {
            conn,
            find_user: conn.prepare_cached(FIND_USER)?,
            user_id: conn.prepare_cached(USER_ID)?,
            last_message: conn.prepare_cached(LAST_MESSAGE)?,
            insert_message: conn.prepare_cached(INSERT_MESSAGE)?,
            set_last_message: conn.prepare_cached(SET_LAST_MESSAGE)?,
            add_waiting: conn.prepare_cached(ADD_WAITING)?,
        })
    }

    /// [`find_user`].
    pub fn find_user(&mut self, name: &Name) -> Result<Option<UserRow>> {
        read_user(&mut self.find_user, name)
    }

    /// A user's row id, for when nothing else of the row is needed (a
    /// user's own message, a name taken or not).
    pub fn user_id(&mut self, name: &Name) -> Result<Option<i64>> {
        self.user_id
            .query_row([name.as_str()], |row| row.get(0))
            .optional()
    }

    /// Stores a message at the end of its conversation (`agent_id` `None`:
    /// the user wrote it); returns its id.
    pub fn insert_message(
        &mut self,
        ts: Timestamp,
        user_id: i64,
        agent_id: Option<i64>,
        body: &Body,
        priority: Priority,
    ) -> Result<u64> {
        let end = read_conversation_end(&mut self.last_message, user_id)?;
        let (prev_id, length) = match end {
            Some((last, length)) => (Some(last), length + 1),
            None => (None, 1),
        };
        self.insert_message.execute(params![
            ts.as_micros(),
            user_id,
            agent_id,
            body.as_str(),
            priority_to_sql(priority),
            prev_id.map(|id| id as i64)
        ])?;
        let id = self.conn.last_insert_rowid();
        self.set_last_message
            .execute(params![user_id, id, length])?;
        if length % MARK_EVERY == 0 {
            self.conn
                .prepare_cached(ADD_MARK)?
                .execute(params![user_id, id])?;
        }
        Ok(id as u64)
    }

    /// Puts a user's message in the agents' queue.
    pub fn add_waiting(&mut self, message_id: u64, user_id: i64, priority: Priority) -> Result<()> {
        self.add_waiting.execute(params![
            message_id as i64,
            user_id,
            priority_to_sql(priority)
        ])?;
        Ok(())
    }
}

/// Up to `limit` messages of a conversation, newest first, walking back
/// from `from` and stopping at the first id at or below `above`.
fn walk_chain(
    conn: &Connection,
    from: Option<u64>,
    above: u64,
    limit: i64,
) -> Result<Vec<Message>> {
    let Some(from) = from else {
        return Ok(Vec::new());
    };
    collect_messages(
        conn,
        CHAIN_NEWEST_FIRST,
        params![sql_id(from), sql_id(above), limit],
    )
}

/// A conversation's messages newest first: from `?1` down the chain, above
/// `?2`, at most `?3`.
const CHAIN_NEWEST_FIRST: &str = select_messages!(
    chain!(),
    "chain CROSS JOIN messages m ON m.id = chain.id ORDER BY m.id DESC"
);
/// [`CHAIN_NEWEST_FIRST`] that also stops once the bodies walked pass `?4`
/// bytes (the first message past it still comes, so the caller sees that
/// more were left). `ORDER BY` makes SQLite read every row the walk yields
/// before the first comes out: without this stop, a resume capped at 8 MiB
/// still read all 10,000 bodies of up to 16 KB (`octet_length` reads a
/// body's size without its text).
const CHAIN_NEWEST_FIRST_WITHIN: &str = select_messages!(
    "WITH RECURSIVE chain(id, bytes) AS (
        SELECT ?1, 0 WHERE ?1 > ?2
        UNION ALL
        SELECT m.prev_id, chain.bytes + octet_length(m.body)
        FROM chain JOIN messages m ON m.id = chain.id
        WHERE m.prev_id > ?2 AND chain.bytes + octet_length(m.body) <= ?4
        LIMIT ?3
     ) ",
    "chain CROSS JOIN messages m ON m.id = chain.id ORDER BY m.id DESC"
);
/// Everyone's messages above `?1`, newest first, at most `?2`.
const ALL_NEWEST_FIRST: &str =
    select_messages!("messages m WHERE m.id > ?1 ORDER BY m.id DESC LIMIT ?2");

/// Ids are positive and below 2^63; anything larger means "no limit".
fn sql_id(id: u64) -> i64 {
    id.min(i64::MAX as u64) as i64
}

pub fn message_by_id(conn: &Connection, id: u64) -> Result<Message> {
    conn.prepare_cached(MESSAGE_BY_ID)?
        .query_row([id as i64], message_from_row)
}

/// The newest message's id; 0 with none.
pub fn last_message_id(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT max(id) FROM messages")?
        .query_row([], |row| row.get::<_, Option<i64>>(0))
        .map(|id| id.map_or(0, |id| id as u64))
}

/// How many releases were ever committed (schema 7).
pub fn release_count(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT releases FROM release_count")?
        .query_row([], |row| row.get::<_, i64>(0))
        .map(|count| count as u64)
}

/// Counts `released` more releases, in the transaction that makes them.
pub fn add_releases(conn: &Connection, released: u64) -> Result<()> {
    conn.prepare_cached("UPDATE release_count SET releases = releases + ?1")?
        .execute([sql_id(released)])
        .map(|_| ())
}

/// Where the snapshot `conn` reads sits in the stream of commits: the newest
/// message id plus the releases made (see schema 7). Read it in the same
/// transaction as whatever it positions.
pub fn position(conn: &Connection) -> Result<Seq> {
    Ok(Seq(last_message_id(conn)? + release_count(conn)?))
}

/// The latest time stamp stored, so new ones can keep increasing after a
/// restart even if the clock went back.
pub fn last_timestamp(conn: &Connection) -> Result<Option<Timestamp>> {
    // Time stamps increase with ids: the newest row has the latest, found at
    // the end of the table rather than by scanning it.
    conn.query_row(
        "SELECT ts_us FROM messages ORDER BY id DESC LIMIT 1",
        [],
        |row| row.get::<_, i64>(0),
    )
    .optional()
    .map(|micros| micros.map(Timestamp::from_micros))
}

/// [`HotStatements::add_waiting`] on its own, for tests.
#[cfg(test)]
pub fn add_waiting(
    conn: &Connection,
    message_id: u64,
    user_id: i64,
    priority: Priority,
) -> Result<()> {
    HotStatements::new(conn)?.add_waiting(message_id, user_id, priority)
}

/// The waiting messages at the newest end of a conversation, from `?1`, its
/// newest message, back. The walk goes one message past the last waiting one
/// (deleting that one is a no-op); a waiting entry's urgency is its
/// message's priority, which makes each lookup a key lookup.
const CLEAR_WAITING: &str = "WITH RECURSIVE chain(id, urgency, prev) AS (
        SELECT id, priority, prev_id FROM messages WHERE id = ?1
        UNION ALL
        SELECT m.id, m.priority, m.prev_id FROM chain JOIN messages m ON m.id = chain.prev
        WHERE EXISTS (
            SELECT 1 FROM waiting w WHERE w.urgency = chain.urgency AND w.message_id = chain.id
        )
     )
     DELETE FROM waiting WHERE (urgency, message_id) IN (SELECT urgency, id FROM chain)";

/// The user's messages stop waiting: an agent answered or let go.
///
/// They are the newest of the conversation (every answer or release clears
/// them all), so the walk back along the chain stops at the first message
/// that is not waiting.
pub fn clear_waiting(conn: &Connection, user_id: i64) -> Result<()> {
    let Some(last) = last_message(conn, user_id)? else {
        return Ok(());
    };
    conn.prepare_cached(CLEAR_WAITING)?
        .execute([sql_id(last)])?;
    Ok(())
}

/// The `limit` latest messages of one conversation older than `before`,
/// oldest first.
pub fn conversation(
    conn: &Connection,
    user_id: i64,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<Message>> {
    let last = last_message(conn, user_id)?;
    let from = match (before, last) {
        // Ids start at 1: nothing is older than that.
        (Some(0 | 1), _) => None,
        (Some(before), Some(last)) if before <= last => start_before(conn, user_id, before, last)?,
        _ => last,
    };
    let mut messages = walk_chain(conn, from, 0, i64::from(limit))?;
    messages.reverse();
    Ok(messages)
}

/// Every this many messages of a conversation, one is listed in
/// `conversation_marks` (schema migration 5 marks existing conversations
/// with the same spacing).
const MARK_EVERY: i64 = 256;

/// Where a page older than `before` starts: the message just before it in
/// the chain. Clients page with the oldest id they hold, which is in this
/// conversation and found by primary key. Any other id (one from another
/// conversation, or none at all) is found by walking down the chain from
/// the first mark at or above it: fewer than [`MARK_EVERY`] steps, where a
/// walk from the newest message cost 45 ms per 100,000 messages.
fn start_before(conn: &Connection, user_id: i64, before: u64, last: u64) -> Result<Option<u64>> {
    let own = conn
        .prepare_cached("SELECT prev_id FROM messages WHERE id = ?1 AND user_id = ?2")?
        .query_row(params![sql_id(before), user_id], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()?;
    if let Some(prev) = own {
        return Ok(prev.map(|id| id as u64));
    }
    let mark: Option<i64> = conn
        .prepare_cached(
            "SELECT min(message_id) FROM conversation_marks
             WHERE user_id = ?1 AND message_id >= ?2",
        )?
        .query_row(params![user_id, sql_id(before)], |row| row.get(0))?;
    let from = mark.unwrap_or(sql_id(last));
    conn.prepare_cached(START_BEFORE)?
        .query_row(params![from, sql_id(before)], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .map(|id| id.map(|id| id as u64))
}

/// The newest message below `?2`, walking down the chain from `?1`.
const START_BEFORE: &str = "WITH RECURSIVE chain(id) AS (
        SELECT ?1
        UNION ALL
        SELECT m.prev_id FROM chain JOIN messages m ON m.id = chain.id
        WHERE chain.id >= ?2 AND m.prev_id IS NOT NULL
     )
     SELECT max(id) FROM chain WHERE id < ?2";

/// How much a `since` resume returns at most: a number of messages, and a
/// total of body bytes. Without the second, 10,000 messages of 4,096
/// four-byte characters made a 160 MB reply, read on the writer thread while
/// every other client's sends waited, and held in memory until sent.
#[derive(Debug, Clone, Copy)]
pub struct ResumeCap {
    pub messages: u32,
    pub body_bytes: usize,
}

/// Messages after `since` (of one conversation, or of all), oldest first:
/// the newest that fit `cap`, and whether some were left out.
pub fn messages_since(
    conn: &Connection,
    user_id: Option<i64>,
    since: u64,
    cap: ResumeCap,
) -> Result<(Vec<Message>, bool)> {
    let one_more = i64::from(cap.messages) + 1;
    let (mut messages, truncated) = match user_id {
        Some(user_id) => match last_message(conn, user_id)? {
            Some(from) => collect_newest(
                conn,
                CHAIN_NEWEST_FIRST_WITHIN,
                params![
                    sql_id(from),
                    sql_id(since),
                    one_more,
                    i64::try_from(cap.body_bytes).unwrap_or(i64::MAX)
                ],
                cap,
            )?,
            None => (Vec::new(), false),
        },
        None => collect_newest(
            conn,
            ALL_NEWEST_FIRST,
            params![sql_id(since), one_more],
            cap,
        )?,
    };
    messages.reverse();
    Ok((messages, truncated))
}

/// Rows newest first, kept while they fit `cap`; whether any were left
/// out. Stops reading at the first that does not fit.
fn collect_newest(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    cap: ResumeCap,
) -> Result<(Vec<Message>, bool)> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, message_from_row)?;
    let mut kept = Vec::new();
    let mut body_bytes = 0;
    for message in rows {
        let message = message?;
        body_bytes += message.body.as_str().len();
        if kept.len() == cap.messages as usize || body_bytes > cap.body_bytes {
            return Ok((kept, true));
        }
        kept.push(message);
    }
    Ok((kept, false))
}

/// User messages still waiting for an answer: most urgent first, then oldest.
pub fn waiting_queue(conn: &Connection, limit: u32) -> Result<Vec<Message>> {
    collect_messages(
        conn,
        select_messages!(
            "messages m JOIN waiting w ON w.message_id = m.id
             ORDER BY w.urgency DESC, w.message_id LIMIT ?1"
        ),
        [limit],
    )
}

// ---- savepoints -----------------------------------------------------------

/// Savepoints as cached statements: `rusqlite::Savepoint` parses its SQL on
/// every use, and the writer opens one per request.
pub fn savepoint(conn: &Connection) -> Result<()> {
    conn.prepare_cached("SAVEPOINT request")?.execute([])?;
    Ok(())
}

/// Keeps what the request wrote.
pub fn release_savepoint(conn: &Connection) -> Result<()> {
    conn.prepare_cached("RELEASE request")?.execute([])?;
    Ok(())
}

/// Undoes what the request wrote.
pub fn rollback_savepoint(conn: &Connection) -> Result<()> {
    conn.prepare_cached("ROLLBACK TO request")?.execute([])?;
    release_savepoint(conn)
}

// ---- idempotency keys ----------------------------------------------------

fn role_to_sql(role: Role) -> i64 {
    match role {
        Role::User => 0,
        Role::Agent => 1,
    }
}

pub fn find_key(conn: &Connection, role: Role, sender_id: i64, key: &str) -> Result<Option<u64>> {
    conn.prepare_cached(FIND_KEY)?
        .query_row(params![role_to_sql(role), sender_id, key], |row| {
            row.get::<_, i64>(0)
        })
        .optional()
        .map(|id| id.map(|id| id as u64))
}

pub fn insert_key(
    conn: &Connection,
    role: Role,
    sender_id: i64,
    key: &str,
    message_id: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO send_keys (sender_role, sender_id, key, message_id) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        role_to_sql(role),
        sender_id,
        key,
        message_id as i64
    ])?;
    Ok(())
}

/// The rules' reads and writes, in SQLite: the per-message ones through the
/// statements taken once per group, the rest through the statement cache.
impl Tables for HotStatements<'_> {
    type Error = rusqlite::Error;

    fn user_id(&mut self, name: &Name) -> Result<Option<i64>> {
        HotStatements::user_id(self, name)
    }

    fn find_user(&mut self, name: &Name) -> Result<Option<UserRow>> {
        HotStatements::find_user(self, name)
    }

    fn find_agent(&mut self, name: &Name) -> Result<Option<AgentRow>> {
        find_agent(self.conn, name)
    }

    fn insert_user(&mut self, name: &Name, token_hash: &[u8], now: Timestamp) -> Result<()> {
        insert_user(self.conn, name, token_hash, now).map(|_| ())
    }

    fn set_assignment(&mut self, user_id: i64, agent_id: Option<i64>) -> Result<()> {
        set_assignment(self.conn, user_id, agent_id)
    }

    fn clear_waiting(&mut self, user_id: i64) -> Result<()> {
        clear_waiting(self.conn, user_id)
    }

    fn find_key(&mut self, role: Role, sender_id: i64, key: &str) -> Result<Option<u64>> {
        find_key(self.conn, role, sender_id, key)
    }

    fn insert_key(&mut self, role: Role, sender_id: i64, key: &str, message_id: u64) -> Result<()> {
        insert_key(self.conn, role, sender_id, key, message_id)
    }

    fn message_by_id(&mut self, id: u64) -> Result<Message> {
        message_by_id(self.conn, id)
    }

    fn insert_message(
        &mut self,
        ts: Timestamp,
        user_id: i64,
        agent_id: Option<i64>,
        body: &Body,
        priority: Priority,
    ) -> Result<u64> {
        HotStatements::insert_message(self, ts, user_id, agent_id, body, priority)
    }

    fn add_waiting(&mut self, message_id: u64, user_id: i64, priority: Priority) -> Result<()> {
        HotStatements::add_waiting(self, message_id, user_id, priority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{db, name};

    fn body(text: &str) -> Body {
        Body::parse(text, 100).expect("valid")
    }

    /// Adds an active agent; returns its id.
    fn add_agent(conn: &Connection, who: &str) -> i64 {
        upsert_agent(conn, &name(who), b"t", Timestamp::from_micros(0)).expect("agent");
        find_agent(conn, &name(who))
            .expect("reads")
            .expect("exists")
            .id
    }

    /// Stores a message `user` wrote (normal priority) at `ts` µs; returns
    /// its id.
    fn user_message(conn: &Connection, user: i64, ts: i64, text: &str) -> u64 {
        insert_message(
            conn,
            Timestamp::from_micros(ts),
            user,
            None,
            &body(text),
            Priority::Normal,
        )
        .expect("message")
    }

    /// Adds a user; returns its id.
    fn add_user(conn: &Connection, who: &str) -> i64 {
        insert_user(conn, &name(who), b"h", Timestamp::from_micros(0)).expect("user")
    }

    /// SQLite re-prepares some statements whenever a bound value changes; the
    /// writer's per-message statements must not be among them.
    #[test]
    fn the_writers_hot_statements_are_never_re_prepared() {
        let conn = db();
        let agent_id = add_agent(&conn, "alice");
        for i in 0..5 {
            let user = insert_user(
                &conn,
                &name(&format!("u{i}")),
                b"h",
                Timestamp::from_micros(0),
            )
            .expect("user");
            set_assignment(&conn, user, Some(agent_id)).expect("assigns");
            let id = user_message(&conn, user, i, "x");
            add_waiting(&conn, id, user, Priority::Normal).expect("waits");
            find_user(&conn, &name(&format!("u{i}"))).expect("reads");
            let found = HotStatements::new(&conn)
                .expect("prepares")
                .user_id(&name(&format!("u{i}")))
                .expect("reads");
            assert_eq!(found, Some(user));
            find_agent(&conn, &name(&format!("a{i}"))).expect("reads");
            message_by_id(&conn, id).expect("reads");
            find_key(&conn, Role::User, user, &format!("k{i}")).expect("reads");
        }
        for sql in [
            FIND_USER,
            USER_ID,
            FIND_AGENT,
            MESSAGE_BY_ID,
            FIND_KEY,
            LAST_MESSAGE,
            INSERT_MESSAGE,
            SET_LAST_MESSAGE,
            ADD_WAITING,
        ] {
            let statement = conn.prepare_cached(sql).expect("cached");
            assert!(
                statement.get_status(rusqlite::StatementStatus::Run) >= 5,
                "{sql}"
            );
            assert_eq!(
                statement.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "re-prepared on every call: {sql}"
            );
        }
    }

    /// Answering runs on the writer for every agent message: finding the
    /// waiting entries must go by key, whatever the queue holds.
    #[test]
    fn clearing_the_waiting_queue_never_scans_it() {
        let conn = db();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {CLEAR_WAITING}"))
            .expect("prepares")
            .query_map([1], |row| row.get::<_, String>(3))
            .expect("explains")
            .collect::<Result<_>>()
            .expect("reads");
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN w")),
            "{plan:#?}"
        );
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH waiting USING PRIMARY KEY")),
            "{plan:#?}"
        );
    }

    #[test]
    fn waiting_queue_is_urgent_first_then_oldest() {
        let conn = db();
        let ana = insert_user(&conn, &name("ana"), b"h", Timestamp::from_micros(0)).expect("user");
        let mut ts = 0;
        let mut put = |priority| {
            ts += 1;
            let id = insert_message(
                &conn,
                Timestamp::from_micros(ts),
                ana,
                None,
                &body("x"),
                priority,
            )
            .expect("message");
            add_waiting(&conn, id, ana, priority).expect("waiting");
            id
        };
        let normal = put(Priority::Normal);
        let urgent_old = put(Priority::Urgent);
        let low = put(Priority::Low);
        let urgent_new = put(Priority::Urgent);
        let high = put(Priority::High);
        let ids: Vec<_> = waiting_queue(&conn, 10)
            .expect("reads")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, vec![urgent_old, urgent_new, high, normal, low]);
        assert_eq!(waiting_queue(&conn, 2).expect("reads").len(), 2);
        clear_waiting(&conn, ana).expect("clears");
        assert!(waiting_queue(&conn, 10).expect("reads").is_empty());
    }

    #[test]
    fn conversation_pages_backwards_and_returns_oldest_first() {
        let conn = db();
        let ana = insert_user(&conn, &name("ana"), b"h", Timestamp::from_micros(0)).expect("user");
        let bo = insert_user(&conn, &name("bo"), b"h", Timestamp::from_micros(0)).expect("user");
        let ids: Vec<u64> = (1..=6)
            .map(|i| {
                let user = if i % 2 == 0 { bo } else { ana };
                user_message(&conn, user, i, "x")
            })
            .collect();
        let page: Vec<_> = conversation(&conn, ana, None, 2)
            .expect("reads")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(page, vec![ids[2], ids[4]]);
        let older: Vec<_> = conversation(&conn, ana, Some(ids[2]), 10)
            .expect("reads")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(older, vec![ids[0]]);
        // Any id pages, not only one of this conversation: bo's, or past the end.
        let ids_of = |messages: Vec<Message>| messages.iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(
            ids_of(conversation(&conn, ana, Some(ids[3]), 10).expect("reads")),
            vec![ids[0], ids[2]]
        );
        assert_eq!(
            ids_of(conversation(&conn, ana, Some(u64::MAX), 10).expect("reads")),
            vec![ids[0], ids[2], ids[4]]
        );
        assert!(
            conversation(&conn, ana, Some(ids[0]), 10)
                .expect("reads")
                .is_empty()
        );
        // One conversation's resume keeps its newest.
        let cap = |messages| ResumeCap {
            messages,
            body_bytes: usize::MAX,
        };
        let (mine, truncated) = messages_since(&conn, Some(ana), ids[0], cap(1)).expect("reads");
        assert!(truncated);
        assert_eq!(ids_of(mine), vec![ids[4]]);
        let (mine, truncated) = messages_since(&conn, Some(ana), ids[0], cap(5)).expect("reads");
        assert!(!truncated);
        assert_eq!(ids_of(mine), vec![ids[2], ids[4]]);
        // And stops at the body bytes: two one-byte bodies fit in 2.
        let (mine, truncated) = messages_since(
            &conn,
            Some(ana),
            0,
            ResumeCap {
                messages: 10,
                body_bytes: 2,
            },
        )
        .expect("reads");
        assert!(truncated);
        assert_eq!(ids_of(mine), vec![ids[2], ids[4]]);
        let (since, truncated) = messages_since(&conn, None, ids[1], cap(2)).expect("reads");
        assert!(truncated);
        assert_eq!(
            since.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![ids[4], ids[5]]
        );
    }

    /// The messages of `user` in `ids` (all of them, oldest first) that a
    /// page of `limit` before `before` must hold.
    fn expected_page(own: &[u64], before: u64, limit: usize) -> Vec<u64> {
        let older: Vec<u64> = own.iter().copied().filter(|&id| id < before).collect();
        older[older.len().saturating_sub(limit)..].to_vec()
    }

    /// A page before an id of another conversation is right wherever the id
    /// falls, and finding where it starts takes no more work than walking
    /// [`MARK_EVERY`] messages, however long the conversation.
    #[test]
    fn a_page_before_an_id_from_elsewhere_starts_near_it() {
        let conn = db();
        let ana = add_user(&conn, "ana");
        let bo = add_user(&conn, "bo");
        let (mut own, mut others) = (Vec::new(), Vec::new());
        for i in 0..2_000 {
            // bo writes in bursts, so some gaps in ana's chain are long.
            let user = if i % 7 < 2 || (900..1_000).contains(&i) {
                bo
            } else {
                ana
            };
            let id = user_message(&conn, user, i, "x");
            if user == ana {
                own.push(id)
            } else {
                others.push(id)
            }
        }
        let ids = |messages: Vec<Message>| messages.iter().map(|m| m.id).collect::<Vec<_>>();
        let vm_steps = |run: &dyn Fn()| {
            let statement = conn.prepare_cached(START_BEFORE).expect("cached");
            statement.reset_status(rusqlite::StatementStatus::VmStep);
            drop(statement);
            run();
            let statement = conn.prepare_cached(START_BEFORE).expect("cached");
            statement.get_status(rusqlite::StatementStatus::VmStep)
        };
        let last = *own.last().expect("ana wrote");
        // The budget: a walk of MARK_EVERY messages down from the newest.
        let far = own[own.len() - 1 - MARK_EVERY as usize];
        let budget = vm_steps(&|| {
            conn.prepare_cached(START_BEFORE)
                .expect("cached")
                .query_row(params![last as i64, far as i64], |row| {
                    row.get::<_, Option<i64>>(0)
                })
                .expect("walks");
        });
        let walk = |before: u64| {
            vm_steps(&|| {
                start_before(&conn, ana, before, last).expect("reads");
            })
        };
        let mut checked = 0;
        for &before in others.iter().chain([&0, &(last + 1)]) {
            let page = ids(conversation(&conn, ana, Some(before), 5).expect("reads"));
            assert_eq!(page, expected_page(&own, before, 5), "before {before}");
            if before < last {
                let work = walk(before);
                assert!(
                    work <= budget,
                    "before {before}: {work} VM steps > {budget}"
                );
                checked += 1;
            }
        }
        assert!(checked > 500, "{checked}");
        // Ana's own ids still page the short way.
        assert_eq!(
            ids(conversation(&conn, ana, Some(own[300]), 3).expect("reads")),
            own[297..300]
        );
    }

    /// A resume's walk stops reading at its byte bound: the rows SQLite
    /// yields (every one read before the first comes out, for the sort) are
    /// those that fit and one more, not the whole conversation.
    #[test]
    fn a_resume_reads_no_further_than_its_byte_bound() {
        let conn = db();
        let ana = add_user(&conn, "ana");
        let mut last = 0;
        for i in 0..100 {
            last = user_message(&conn, ana, i, "0123456789");
        }
        let rows = conn
            .prepare(CHAIN_NEWEST_FIRST_WITHIN)
            .expect("prepares")
            .query_map(params![last as i64, 0, 1_000, 25], |row| {
                row.get::<_, i64>(0)
            })
            .expect("queries")
            .count();
        assert_eq!(
            rows, 3,
            "10 + 10 fit in 25 bytes; the third says there is more"
        );
        let (kept, truncated) = messages_since(
            &conn,
            Some(ana),
            0,
            ResumeCap {
                messages: 1_000,
                body_bytes: 25,
            },
        )
        .expect("reads");
        assert!(truncated);
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn removed_agents_keep_their_messages_and_lose_their_conversations() {
        let conn = db();
        let alice = add_agent(&conn, "alice");
        let ana = add_user(&conn, "ana");
        set_assignment(&conn, ana, Some(alice)).expect("assigns");
        let id = insert_message(
            &conn,
            Timestamp::from_micros(1),
            ana,
            Some(alice),
            &body("hi"),
            Priority::Normal,
        )
        .expect("message");
        let question = user_message(&conn, ana, 2, "still there?");
        add_waiting(&conn, question, ana, Priority::Normal).expect("waits");
        assert!(!removed_agents_hold_conversations(&conn).expect("reads"));
        let waiting = |conn: &Connection| -> Vec<u64> {
            waiting_queue(conn, 10)
                .expect("reads")
                .iter()
                .map(|m| m.id)
                .collect()
        };

        assert!(remove_agent(&conn, &name("alice")).expect("removes"));
        assert!(!remove_agent(&conn, &name("alice")).expect("second time"));
        // Not held any more, for every reader, before the server releases it.
        assert!(assignments(&conn).expect("reads").is_empty());
        let user = find_user(&conn, &name("ana"))
            .expect("reads")
            .expect("exists");
        assert_eq!(user.assigned, None);
        assert_eq!(
            message_by_id(&conn, id).expect("reads").agent,
            Some(name("alice"))
        );
        assert!(list_agents(&conn).expect("reads").is_empty());
        // Until the server releases it, her question still waits.
        assert_eq!(waiting(&conn), [question]);

        // The server finds the mark once, releases it, and reports what.
        assert!(removed_agents_hold_conversations(&conn).expect("reads"));
        assert_eq!(
            release_removed_agents(&conn).expect("releases"),
            [(name("ana"), name("alice"))]
        );
        assert!(!removed_agents_hold_conversations(&conn).expect("reads"));
        assert!(release_removed_agents(&conn).expect("again").is_empty());
        // As with any release, her question stops waiting.
        assert!(waiting(&conn).is_empty());
    }

    #[test]
    fn a_removed_agent_added_again_does_not_get_its_conversations_back() {
        let conn = db();
        let alice = name("alice");
        let agent_id = add_agent(&conn, "alice");
        let ana = add_user(&conn, "ana");
        set_assignment(&conn, ana, Some(agent_id)).expect("assigns");
        assert!(remove_agent(&conn, &alice).expect("removes"));
        // Added again before any server released the mark.
        upsert_agent(&conn, &alice, b"new", Timestamp::from_micros(1)).expect("again");
        assert_eq!(
            find_user(&conn, &name("ana"))
                .expect("reads")
                .expect("exists")
                .assigned,
            None
        );
        assert!(assignments(&conn).expect("reads").is_empty());
        assert_eq!(list_agents(&conn).expect("reads"), [(alice.clone(), 0)]);
        // The release is still announced, once, by the next server poll.
        assert!(removed_agents_hold_conversations(&conn).expect("reads"));
        assert_eq!(
            release_removed_agents(&conn).expect("releases"),
            [(name("ana"), alice)]
        );
        assert!(!removed_agents_hold_conversations(&conn).expect("reads"));
        assert!(release_removed_agents(&conn).expect("again").is_empty());
    }

    /// Taken and released again before the poll: the `released` everyone
    /// heard was bob's; alice's, announced late, would clear the question
    /// ana asked since.
    #[test]
    fn a_release_left_due_is_dropped_once_the_user_was_taken_and_released() {
        let conn = db();
        let alice = name("alice");
        let alice_id = add_agent(&conn, "alice");
        let bob = add_agent(&conn, "bob");
        let ana = add_user(&conn, "ana");
        set_assignment(&conn, ana, Some(alice_id)).expect("assigns");
        assert!(remove_agent(&conn, &alice).expect("removes"));
        upsert_agent(&conn, &alice, b"new", Timestamp::from_micros(1)).expect("again");
        set_assignment(&conn, ana, Some(bob)).expect("bob takes ana");
        set_assignment(&conn, ana, None).expect("bob releases ana");
        let question = user_message(&conn, ana, 1, "still there?");
        add_waiting(&conn, question, ana, Priority::Normal).expect("waits");
        assert!(release_removed_agents(&conn).expect("releases").is_empty());
        assert_eq!(waiting_queue(&conn, 10).expect("reads").len(), 1);
    }

    /// A conversation taken again between the re-add and the server's poll
    /// is not announced as released: everyone heard `assigned` instead.
    #[test]
    fn a_release_left_due_is_not_announced_for_a_user_taken_since() {
        let conn = db();
        let alice = name("alice");
        let alice_id = add_agent(&conn, "alice");
        let bob = add_agent(&conn, "bob");
        let ana = add_user(&conn, "ana");
        let max = add_user(&conn, "max");
        set_assignment(&conn, ana, Some(alice_id)).expect("assigns");
        set_assignment(&conn, max, Some(alice_id)).expect("assigns");
        let question = user_message(&conn, max, 1, "anyone?");
        add_waiting(&conn, question, max, Priority::Normal).expect("waits");
        assert!(remove_agent(&conn, &alice).expect("removes"));
        upsert_agent(&conn, &alice, b"new", Timestamp::from_micros(1)).expect("again");
        set_assignment(&conn, ana, Some(bob)).expect("bob takes ana");
        assert_eq!(
            release_removed_agents(&conn).expect("releases"),
            [(name("max"), alice)]
        );
        assert!(
            waiting_queue(&conn, 10).expect("reads").is_empty(),
            "max's question stops waiting, as with any release"
        );
        assert!(!removed_agents_hold_conversations(&conn).expect("reads"));
    }

    #[test]
    fn a_removed_agent_added_again_does_not_get_its_idempotency_keys_back() {
        let conn = db();
        let alice = name("alice");
        let agent_id = add_agent(&conn, "alice");
        let bob = add_agent(&conn, "bob");
        let ana = add_user(&conn, "ana");
        let answer = insert_message(
            &conn,
            Timestamp::from_micros(1),
            ana,
            Some(agent_id),
            &body("old answer"),
            Priority::Normal,
        )
        .expect("message");
        insert_key(&conn, Role::Agent, agent_id, "k1", answer).expect("key");
        insert_key(&conn, Role::Agent, bob, "k1", answer).expect("key");
        insert_key(&conn, Role::User, ana, "k1", answer).expect("key");
        // Given a new token while still active: the same agent, same keys.
        upsert_agent(&conn, &alice, b"rotated", Timestamp::from_micros(2)).expect("rotates");
        assert_eq!(
            find_key(&conn, Role::Agent, agent_id, "k1").expect("reads"),
            Some(answer)
        );
        assert!(remove_agent(&conn, &alice).expect("removes"));
        upsert_agent(&conn, &alice, b"new", Timestamp::from_micros(3)).expect("again");
        assert_eq!(
            find_key(&conn, Role::Agent, agent_id, "k1").expect("reads"),
            None
        );
        // Nobody else's keys go.
        assert_eq!(
            find_key(&conn, Role::Agent, bob, "k1").expect("reads"),
            Some(answer)
        );
        assert_eq!(
            find_key(&conn, Role::User, ana, "k1").expect("reads"),
            Some(answer)
        );
    }

    #[test]
    fn held_conversations_are_listed_by_user_with_their_agent() {
        let conn = db();
        let alice = add_agent(&conn, "alice");
        let bob = add_agent(&conn, "bob");
        for (user, agent) in [("zoe", Some(alice)), ("ana", Some(bob)), ("max", None)] {
            set_assignment(&conn, add_user(&conn, user), agent).expect("assigns");
        }
        assert_eq!(
            assignments(&conn).expect("reads"),
            [(name("ana"), name("bob")), (name("zoe"), name("alice"))]
        );
        assert_eq!(
            list_agents(&conn).expect("reads"),
            [(name("alice"), 1), (name("bob"), 1)]
        );
    }
}
