//! The rules' [`Tables`] in PostgreSQL: the writer's reads and writes
//! inside its transaction, which holds the sequencer row (`sb_clock`).
//!
//! The concurrency half of `Tables`'s contract: every write transaction
//! takes the sequencer row first ([`super::queries::clock::begin_locked`]), so
//! writers (and the `agent` commands) run one after the other; on top of
//! that `find_user` locks the user's row (`FOR UPDATE`), as the contract
//! asks, and message ids come from the row, rising in commit order.

use std::cell::RefCell;

use switchboard_protocol::{Message, Name, Priority, Role, Timestamp};

use super::conn::Conn;
use super::held_back::HeldBack;
use super::known_users::KnownUsers;
use super::queries::{agents, keys, messages, names, nodes, presence, users, waiting};
use super::{PostgresError, Result};
use crate::event::{ConnId, Member, NodeId};
use crate::store::rules::{AgentRow, NewMessage, ReleaseDue, Tables, UserRow};

/// The writer's connection, borrowed for one rule's call at a time, with
/// the transaction's held-back rows and the users' ids already read.
pub(in crate::store) struct Writes<'c> {
    pub(super) conn: &'c RefCell<Conn>,
    pub(super) held: &'c RefCell<HeldBack>,
    pub(super) known_users: &'c RefCell<KnownUsers>,
}

impl Writes<'_> {
    fn conn(&self) -> std::cell::RefMut<'_, Conn> {
        self.conn.borrow_mut()
    }
}

impl Tables for Writes<'_> {
    type Error = PostgresError;

    /// From the ids already read if it can be (`known_users.rs`).
    fn user_id(&mut self, name: &Name) -> Result<Option<i64>> {
        if let Some(id) = self.known_users.borrow().get(name) {
            return Ok(Some(id));
        }
        let id = users::user_id(&mut self.conn(), name)?;
        if let Some(id) = id {
            self.known_users.borrow_mut().read(name, id);
        }
        Ok(id)
    }

    fn find_user(&mut self, name: &Name) -> Result<Option<UserRow>> {
        users::find_user_for_update(&mut self.conn(), name)
    }

    fn find_agent(&mut self, name: &Name) -> Result<Option<AgentRow>> {
        agents::find_agent(&mut self.conn(), name)
    }

    fn names_like(&mut self, name: &Name) -> Result<Vec<(Role, Name)>> {
        names::names_like(&mut self.conn(), name)
    }

    fn insert_user(&mut self, name: &Name, token_hash: &[u8], now: Timestamp) -> Result<()> {
        users::insert_user(&mut self.conn(), name, token_hash, now)
    }

    fn set_assignment(&mut self, user_id: i64, holder: Option<(i64, Timestamp)>) -> Result<()> {
        users::set_assignment(&mut self.conn(), user_id, holder)
    }

    fn agent_connected(&mut self, member: &Member) -> Result<()> {
        presence::agent_connected(&mut self.conn(), member)
    }

    fn agent_disconnected(&mut self, member: &Member, at: Timestamp) -> Result<()> {
        presence::agent_disconnected(&mut self.conn(), member, at)
    }

    fn offline_holders(&mut self, deadline: Timestamp) -> Result<Vec<(i64, Name, Name)>> {
        presence::offline_holders(&mut self.conn(), deadline)
    }

    fn clear_waiting(&mut self, user_id: i64) -> Result<u64> {
        let held = self.held.borrow_mut().stop_waiting(user_id);
        Ok(held + waiting::clear_waiting(&mut self.conn(), user_id)?)
    }

    fn find_key(&mut self, role: Role, sender_id: i64, key: &str) -> Result<Option<u64>> {
        if let Some(id) = self.held.borrow().find_key(role, sender_id, key) {
            return Ok(Some(id));
        }
        keys::find_key(&mut self.conn(), role, sender_id, key)
    }

    /// Held back until the group's end (`held_back.rs`).
    fn insert_key(&mut self, role: Role, sender_id: i64, key: &str, message_id: u64) -> Result<()> {
        self.held.borrow_mut().key(role, sender_id, key, message_id);
        Ok(())
    }

    fn message_by_id(&mut self, id: u64) -> Result<Message> {
        let mut conn = self.conn();
        let mut held = self.held.borrow_mut();
        if held.holds(id) {
            held.write(&mut conn)?;
        }
        messages::message_by_id(&mut conn, id)
    }

    fn insert_message(&mut self, message: NewMessage<'_>) -> Result<u64> {
        // Held back until the group's end, with the next id the sequencer
        // row would give (`held_back.rs`).
        Ok(self.held.borrow_mut().message(message))
    }

    /// Held back until the group's end (`held_back.rs`).
    fn add_waiting(&mut self, message_id: u64, user_id: i64, priority: Priority) -> Result<()> {
        self.held
            .borrow_mut()
            .waiting(message_id, user_id, priority);
        Ok(())
    }

    fn held_by_removed_agents(&mut self) -> Result<Vec<(i64, Name, Name)>> {
        agents::held_by_removed_agents(&mut self.conn())
    }

    fn take_releases_due(&mut self) -> Result<Vec<ReleaseDue>> {
        agents::take_releases_due(&mut self.conn())
    }

    fn open_member(&mut self, member: &Member) -> Result<bool> {
        nodes::open_member(&mut self.conn(), member)
    }

    fn close_member(&mut self, member: &Member) -> Result<bool> {
        nodes::close_member(&mut self.conn(), member)
    }

    fn forget_members(&mut self, node: NodeId, live: &[ConnId]) -> Result<Vec<Member>> {
        nodes::forget_members(&mut self.conn(), node, live)
    }

    fn sweep_expired_nodes(&mut self, sweeper: NodeId) -> Result<Vec<Member>> {
        nodes::sweep_expired(&mut self.conn(), sweeper)
    }

    fn retire_node(&mut self, node: NodeId) -> Result<Vec<Member>> {
        nodes::retire(&mut self.conn(), node)
    }
}
