//! The rows a group appends, held back and written in one statement at the
//! group's end (`queries/appends.rs`).
//!
//! Why: a user's send is a message row, its place in the agents' queue
//! and, with a key, its key row. One round trip each, inside the section
//! the sequencer row serialises across the cluster, was most of what a
//! commit cost on PostgreSQL (docs/performance.md, session 12): the
//! cluster's throughput is appends a second × messages per append, and
//! round trips per message divided both.
//!
//! Why it is safe: the transaction holds the sequencer row from its first
//! statement, so no other writer takes an id meanwhile; ids are given here,
//! in order, continuing from what the row said, exactly as the row would
//! have given them. And every rule that reads these tables in the same
//! transaction sees the held rows: [`HeldBack::key`] looks here before the
//! database, [`HeldBack::stop_waiting`] drops held queue rows as well, and
//! `message_by_id` writes what is held first. Nothing else reads them
//! before the commit.
//!
//! The writer writes what is held before it commits and, on the slow path,
//! at the end of each request (`Transaction::write_held`), so that a row
//! the database refuses is still that one request's failure, undone alone;
//! a request rolled back drops what it held ([`HeldBack::discard`]).

use std::collections::HashMap;

use switchboard_protocol::{Body, Priority, Role};

use crate::store::rules::NewMessage;

use super::Result;
use super::conn::Conn;
use super::queries::{appends, priority_to_sql, role_to_sql};

/// A message row as `messages` stores it.
pub(super) struct MessageRow {
    pub id: i64,
    pub ts_us: i64,
    pub user_id: i64,
    pub agent_id: Option<i64>,
    pub body: Body,
    pub priority: i64,
    pub note: bool,
}

/// A row of the agents' queue, `waiting`.
pub(super) struct WaitingRow {
    pub message_id: i64,
    pub user_id: i64,
    pub urgency: i64,
}

/// An idempotency key's row, `send_keys`.
pub(super) struct KeyRow {
    pub role: i64,
    pub sender_id: i64,
    pub key: String,
    pub message_id: i64,
}

/// What one transaction holds back, and the ids it gave.
pub(super) struct HeldBack {
    /// The last message id given (held or written).
    last_id: u64,
    /// The last message id written to the database.
    written_id: u64,
    /// The latest time stamp given.
    last_ts_us: i64,
    messages: Vec<MessageRow>,
    waiting: Vec<WaitingRow>,
    keys: Vec<KeyRow>,
    /// Every key given in this transaction, held or written, so that a key
    /// sent twice in one group is found without a round trip.
    key_ids: HashMap<(i64, i64, String), u64>,
}

impl HeldBack {
    /// Nothing held; ids continue after `last_id`, what the sequencer row
    /// said as the transaction took it.
    pub(super) fn after(last_id: u64) -> Self {
        Self {
            last_id,
            written_id: last_id,
            last_ts_us: 0,
            messages: Vec::new(),
            waiting: Vec::new(),
            keys: Vec::new(),
            key_ids: HashMap::new(),
        }
    }

    /// Holds a message; its id, the next after every id given.
    pub(super) fn message(&mut self, message: NewMessage<'_>) -> u64 {
        self.last_id += 1;
        self.last_ts_us = self.last_ts_us.max(message.ts.as_micros());
        self.messages.push(MessageRow {
            id: self.last_id as i64,
            ts_us: message.ts.as_micros(),
            user_id: message.user_id,
            agent_id: message.agent_id,
            body: message.body.clone(),
            priority: priority_to_sql(message.priority),
            note: message.note,
        });
        self.last_id
    }

    pub(super) fn waiting(&mut self, message_id: u64, user_id: i64, priority: Priority) {
        self.waiting.push(WaitingRow {
            message_id: message_id as i64,
            user_id,
            urgency: priority_to_sql(priority),
        });
    }

    pub(super) fn key(&mut self, role: Role, sender_id: i64, key: &str, message_id: u64) {
        let role = role_to_sql(role);
        self.key_ids
            .insert((role, sender_id, key.to_owned()), message_id);
        self.keys.push(KeyRow {
            role,
            sender_id,
            key: key.to_owned(),
            message_id: message_id as i64,
        });
    }

    /// The message a key given in this transaction stored, if one did.
    pub(super) fn find_key(&self, role: Role, sender_id: i64, key: &str) -> Option<u64> {
        self.key_ids
            .get(&(role_to_sql(role), sender_id, key.to_owned()))
            .copied()
    }

    /// The user's held queue rows go: an agent answered, or resolved the
    /// conversation; how many. (The caller deletes the written ones.)
    pub(super) fn stop_waiting(&mut self, user_id: i64) -> u64 {
        let before = self.waiting.len();
        self.waiting.retain(|row| row.user_id != user_id);
        (before - self.waiting.len()) as u64
    }

    /// Whether message `id` is held, not yet written.
    pub(super) fn holds(&self, id: u64) -> bool {
        id > self.written_id && id <= self.last_id
    }

    /// Writes everything held, in one statement, with the sequencer row
    /// moved to the last id given.
    pub(super) fn write(&mut self, conn: &mut Conn) -> Result<()> {
        if self.messages.is_empty() && self.waiting.is_empty() && self.keys.is_empty() {
            return Ok(());
        }
        appends::write(
            conn,
            &self.messages,
            &self.waiting,
            &self.keys,
            self.last_id,
            self.last_ts_us,
        )?;
        self.written_id = self.last_id;
        self.messages.clear();
        self.waiting.clear();
        self.keys.clear();
        Ok(())
    }

    /// Drops what is held: the request that held it was rolled back to
    /// its savepoint, where nothing was held (see the module docs). Ids
    /// continue after the last one written.
    pub(super) fn discard(&mut self) {
        let written = self.written_id;
        self.messages.clear();
        self.waiting.clear();
        self.keys.clear();
        self.key_ids.retain(|_, id| *id <= written);
        self.last_id = written;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::Timestamp;

    fn body(text: &str) -> Body {
        Body::parse(text, 100).expect("valid")
    }

    fn user_message(
        ts: Timestamp,
        user_id: i64,
        body: &Body,
        priority: Priority,
    ) -> NewMessage<'_> {
        NewMessage {
            ts,
            user_id,
            agent_id: None,
            body,
            priority,
            note: false,
        }
    }

    #[test]
    fn ids_continue_from_the_sequencer_row_and_a_discard_gives_them_again() {
        let mut held = HeldBack::after(41);
        let ts = Timestamp::from_micros(7);
        assert_eq!(
            held.message(user_message(ts, 1, &body("a"), Priority::Normal)),
            42
        );
        assert_eq!(
            held.message(user_message(ts, 1, &body("b"), Priority::Normal)),
            43
        );
        assert!(held.holds(42) && held.holds(43) && !held.holds(41) && !held.holds(44));
        held.key(Role::User, 1, "k", 43);
        assert_eq!(held.find_key(Role::User, 1, "k"), Some(43));
        assert_eq!(held.find_key(Role::Agent, 1, "k"), None);
        held.discard();
        assert_eq!(held.find_key(Role::User, 1, "k"), None);
        assert_eq!(
            held.message(user_message(ts, 1, &body("c"), Priority::Normal)),
            42
        );
    }

    #[test]
    fn an_answer_drops_only_that_users_held_queue_rows() {
        let mut held = HeldBack::after(0);
        let ts = Timestamp::from_micros(7);
        let ann = held.message(user_message(ts, 1, &body("a"), Priority::Normal));
        held.waiting(ann, 1, Priority::Normal);
        let bob = held.message(user_message(ts, 2, &body("b"), Priority::Urgent));
        held.waiting(bob, 2, Priority::Urgent);
        held.stop_waiting(1);
        assert_eq!(
            held.waiting
                .iter()
                .map(|row| row.message_id)
                .collect::<Vec<_>>(),
            [bob as i64]
        );
    }
}
