//! The writer's per-message statements and the rules' [`Tables`] in SQLite.

use rusqlite::{CachedStatement, Connection, OptionalExtension, params};
use switchboard_protocol::{Message, Name, Priority, Role, Timestamp};

use super::queries::messages::{
    ADD_MARK, INSERT_MESSAGE, LAST_MESSAGE, MARK_EVERY, SET_LAST_MESSAGE, read_conversation_end,
};
use super::queries::users::{FIND_USER, USER_ID, read_user};
use super::queries::waiting::ADD_WAITING;
use super::queries::{
    AgentRow, Result, UserRow, agent_connected, agent_disconnected, clear_waiting, find_agent,
    find_key, forget_agent_connections, held_by_removed_agents, insert_key, insert_user,
    message_by_id, names_like, offline_holders, priority_to_sql, set_assignment, take_releases_due,
};
use crate::event::{ConnId, Member, NodeId};
use crate::store::rules::{NewMessage, ReleaseDue, Tables};

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

    /// [`find_user`](super::queries::find_user).
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

    /// Stores a message at the end of its conversation; returns its id.
    pub fn insert_message(&mut self, message: NewMessage<'_>) -> Result<u64> {
        let NewMessage {
            ts,
            user_id,
            agent_id,
            body,
            priority,
            note,
        } = message;
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
            prev_id.map(|id| id as i64),
            note
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

    fn names_like(&mut self, name: &Name) -> Result<Vec<(Role, Name)>> {
        names_like(self.conn, name)
    }

    fn insert_user(&mut self, name: &Name, token_hash: &[u8], now: Timestamp) -> Result<()> {
        insert_user(self.conn, name, token_hash, now).map(|_| ())
    }

    fn set_assignment(&mut self, user_id: i64, holder: Option<(i64, Timestamp)>) -> Result<()> {
        set_assignment(self.conn, user_id, holder)
    }

    fn agent_connected(&mut self, member: &Member) -> Result<()> {
        agent_connected(self.conn, member)
    }

    fn agent_disconnected(&mut self, member: &Member, at: Timestamp) -> Result<()> {
        agent_disconnected(self.conn, member, at)
    }

    fn offline_holders(&mut self, deadline: Timestamp) -> Result<Vec<(i64, Name, Name)>> {
        offline_holders(self.conn, deadline)
    }

    /// One node keeps only its agents' connections (for auto-release);
    /// its own events are passed over by its router.
    fn forget_members(&mut self, _node: NodeId, live: &[ConnId]) -> Result<Vec<Member>> {
        forget_agent_connections(self.conn, live)
    }

    fn clear_waiting(&mut self, user_id: i64) -> Result<u64> {
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

    fn insert_message(&mut self, message: NewMessage<'_>) -> Result<u64> {
        HotStatements::insert_message(self, message)
    }

    fn add_waiting(&mut self, message_id: u64, user_id: i64, priority: Priority) -> Result<()> {
        HotStatements::add_waiting(self, message_id, user_id, priority)
    }

    fn held_by_removed_agents(&mut self) -> Result<Vec<(i64, Name, Name)>> {
        held_by_removed_agents(self.conn)
    }

    fn take_releases_due(&mut self) -> Result<Vec<ReleaseDue>> {
        take_releases_due(self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::queries::*;
    use crate::store::test_support::{add_agent, db, name, user_message};

    use switchboard_protocol::{Priority, Role, Timestamp};

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
            set_assignment(&conn, user, Some((agent_id, Timestamp::from_micros(0))))
                .expect("assigns");
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
}
