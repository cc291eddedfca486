//! The backend contract: what every storage backend must do the same way,
//! as tests any backend runs (SQLite's in `store/sqlite/contract_tests.rs`;
//! a PostgreSQL backend runs the same functions against its database).
//!
//! Each test takes a factory for a fresh, empty database behind a
//! [`Subject`]: the rules' [`Tables`] and [`Reads`], plus the few
//! operations the `agent` commands and the writer's release of removed
//! agents need. The tests check meaning (a removed agent holds nothing,
//! releases left due, claims, releases, resolves and transfers, private
//! notes, idempotency keys, the waiting queue's order, history paging,
//! `since` caps, positions, an old token's writes, names ignoring case),
//! never SQLite's shape: that stays in SQLite's own tests (statements never
//! re-prepared, no scans).
//!
//! The free functions below keep the tests readable: each is one read or
//! write of the subject, named as the SQLite query it was before.

pub(super) mod auto_release;
pub(super) mod credentials;
pub(super) mod lifecycle;
pub(super) mod names;
pub(super) mod notes;
pub(super) mod reads;
pub(super) mod removed_agents;

use std::fmt::Debug;

use switchboard_protocol::{Body, Message, Name, Priority, Role, Timestamp};

use super::rules::{NewMessage, Notes, Reads, ReplyChunk, ResumeCap, Tables, UserRow, read};
use super::{AgentListing, Backlog};
use crate::event::Seq;
use crate::identity::{Credential, Identity};

/// A backend under test, on a fresh database. Methods take `&self`, as
/// SQLite's connection does; a backend whose client needs `&mut` wraps it
/// in a `RefCell`.
pub(in crate::store) trait Subject {
    type Error: Debug;
    type Tables<'a>: Tables<Error = Self::Error>
    where
        Self: 'a;
    type Reads<'a>: Reads<Error = Self::Error>
    where
        Self: 'a;

    /// The rules' writes (the writer's transaction in production).
    fn tables(&self) -> Self::Tables<'_>;
    /// The rules' reads (a reader's snapshot in production).
    fn reads(&self) -> Self::Reads<'_>;
    /// `agent add`: creates the agent or gives a removed one a token again.
    fn upsert_agent(
        &self,
        name: &Name,
        token_hash: &[u8],
        now: Timestamp,
    ) -> Result<(), Self::Error>;
    /// `agent remove`; false if there is no such active agent.
    fn remove_agent(&self, name: &Name) -> Result<bool, Self::Error>;
    /// `agent list`: active agents with how many conversations each holds.
    fn list_agents(&self) -> Result<Vec<AgentListing>, Self::Error>;
    /// `agent promote` / `agent demote`; false if there is no such active
    /// agent.
    fn set_supervisor(&self, name: &Name, supervisor: bool) -> Result<bool, Self::Error>;
    fn removed_agents_hold_conversations(&self) -> Result<bool, Self::Error>;
    /// The writer's release of removed agents' conversations: (user, agent).
    fn release_removed_agents(&self) -> Result<Vec<(Name, Name)>, Self::Error>;
    /// Counts releases committed, for the position.
    fn add_releases(&self, released: u64) -> Result<(), Self::Error>;
}

pub(super) fn name(text: &str) -> Name {
    Name::parse(text).expect("valid")
}

pub(super) fn body(text: &str) -> Body {
    Body::parse(text, 100).expect("valid")
}

fn agent() -> Identity {
    Identity {
        role: Role::Agent,
        name: name("alice"),
        credential: Credential::new(b"t"),
    }
}

/// Adds an active agent; returns its id.
fn add_agent<B: Subject>(conn: &B, who: &str) -> i64 {
    upsert_agent(conn, &name(who), b"t", Timestamp::from_micros(0)).expect("agent");
    conn.tables()
        .find_agent(&name(who))
        .expect("reads")
        .expect("exists")
        .id
}

/// Who holds `user`'s conversation, as the rules read it.
fn holder_of<B: Subject>(conn: &B, user: &str) -> Option<Name> {
    conn.tables()
        .find_user(&name(user))
        .expect("reads")
        .expect("exists")
        .assigned
        .map(|(_, agent)| agent)
}

/// Adds a user; returns its id.
fn add_user<B: Subject>(conn: &B, who: &str) -> i64 {
    insert_user(conn, &name(who), b"h", Timestamp::from_micros(0)).expect("user")
}

/// Stores a message `user` wrote (normal priority) at `ts` µs; returns its id.
fn user_message<B: Subject>(conn: &B, user: i64, ts: i64, text: &str) -> u64 {
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

fn insert_user<B: Subject>(
    conn: &B,
    name: &Name,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<i64, B::Error> {
    let mut tables = conn.tables();
    tables.insert_user(name, token_hash, now)?;
    Ok(tables.user_id(name)?.expect("just inserted"))
}

fn insert_message<B: Subject>(
    conn: &B,
    ts: Timestamp,
    user_id: i64,
    agent_id: Option<i64>,
    body: &Body,
    priority: Priority,
) -> Result<u64, B::Error> {
    conn.tables().insert_message(NewMessage {
        ts,
        user_id,
        agent_id,
        body,
        priority,
        note: false,
    })
}

fn add_waiting<B: Subject>(
    conn: &B,
    message_id: u64,
    user_id: i64,
    priority: Priority,
) -> Result<(), B::Error> {
    conn.tables().add_waiting(message_id, user_id, priority)
}

fn clear_waiting<B: Subject>(conn: &B, user_id: i64) -> Result<u64, B::Error> {
    conn.tables().clear_waiting(user_id)
}

fn set_assignment<B: Subject>(
    conn: &B,
    user_id: i64,
    agent_id: Option<i64>,
) -> Result<(), B::Error> {
    conn.tables()
        .set_assignment(user_id, agent_id.map(|id| (id, Timestamp::from_micros(0))))
}

fn find_key<B: Subject>(
    conn: &B,
    role: Role,
    sender_id: i64,
    key: &str,
) -> Result<Option<u64>, B::Error> {
    conn.tables().find_key(role, sender_id, key)
}

fn insert_key<B: Subject>(
    conn: &B,
    role: Role,
    sender_id: i64,
    key: &str,
    message_id: u64,
) -> Result<(), B::Error> {
    conn.tables().insert_key(role, sender_id, key, message_id)
}

fn message_by_id<B: Subject>(conn: &B, id: u64) -> Result<Message, B::Error> {
    conn.tables().message_by_id(id)
}

/// The user as a reader sees it (the writer's `find_user` keeps the same
/// rule; `store_message`'s tests check that one).
fn find_user<B: Subject>(conn: &B, name: &Name) -> Result<Option<UserRow>, B::Error> {
    conn.reads().find_user(name)
}

fn waiting_queue<B: Subject>(conn: &B, limit: u32) -> Result<Vec<Message>, B::Error> {
    conn.reads().waiting_queue(limit)
}

fn conversation<B: Subject>(
    conn: &B,
    user_id: i64,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<Message>, B::Error> {
    let mut reads = conn.reads();
    let ids = reads.conversation_ids(user_id, before, limit, Notes::Shown)?;
    reads.messages_by_id(&ids, usize::MAX)
}

fn messages_since<B: Subject>(
    conn: &B,
    user_id: Option<i64>,
    since: u64,
    cap: ResumeCap,
) -> Result<(Vec<Message>, bool), B::Error> {
    let mut reads = conn.reads();
    match user_id {
        Some(user_id) => {
            let (ids, truncated) =
                reads.conversation_ids_since(user_id, since, cap, Notes::Hidden)?;
            Ok((reads.messages_by_id(&ids, usize::MAX)?, truncated))
        }
        None => reads.messages_since(since, cap),
    }
}

fn assignments<B: Subject>(conn: &B) -> Result<Vec<(Name, Name)>, B::Error> {
    conn.reads().assignments()
}

fn backlog<B: Subject>(
    conn: &B,
    identity: &Identity,
    since: Option<u64>,
    limit: u32,
) -> Result<Backlog, B::Error> {
    read::backlog(
        &mut conn.reads(),
        identity,
        since,
        limit,
        crate::store::RESUME_CAP,
        crate::store::REPLY_CHUNK,
    )
}

fn upsert_agent<B: Subject>(
    conn: &B,
    name: &Name,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<(), B::Error> {
    conn.upsert_agent(name, token_hash, now)
}

fn remove_agent<B: Subject>(conn: &B, name: &Name) -> Result<bool, B::Error> {
    conn.remove_agent(name)
}

/// Active agents as (name, conversations held).
fn list_agents<B: Subject>(conn: &B) -> Result<Vec<(Name, u64)>, B::Error> {
    Ok(conn
        .list_agents()?
        .into_iter()
        .map(|agent| (agent.name, agent.holds))
        .collect())
}

fn removed_agents_hold_conversations<B: Subject>(conn: &B) -> Result<bool, B::Error> {
    conn.removed_agents_hold_conversations()
}

fn release_removed_agents<B: Subject>(conn: &B) -> Result<Vec<(Name, Name)>, B::Error> {
    conn.release_removed_agents()
}

fn add_releases<B: Subject>(conn: &B, released: u64) -> Result<(), B::Error> {
    conn.add_releases(released)
}

/// Every contract test, for a backend's test module to run:
/// `contract_tests!(|| MyBackend::fresh());`, or, for a backend whose
/// server may be missing, `contract_tests!(fresh)` with `fresh()` giving an
/// `Option` (`None`: the test is skipped, which `fresh` has said).
macro_rules! contract_tests {
    (@tests $($how:tt)*) => {
        contract_tests!($($how)*;
            reads::waiting_queue_is_urgent_first_then_oldest,
            reads::conversation_pages_backwards_and_returns_oldest_first,
            reads::held_conversations_are_listed_by_user_with_their_agent,
            reads::a_backlog_comes_with_the_position_of_its_snapshot,
            reads::a_long_reply_is_read_a_chunk_at_a_time,
            removed_agents::removed_agents_keep_their_messages_and_lose_their_conversations,
            removed_agents::a_removed_agent_added_again_does_not_get_its_conversations_back,
            removed_agents::a_release_left_due_is_dropped_once_the_user_was_taken_and_released,
            removed_agents::a_release_left_due_is_not_announced_for_a_user_taken_since,
            removed_agents::a_removed_agent_added_again_does_not_get_its_idempotency_keys_back,
            credentials::an_agents_old_token_writes_nothing_once_replaced_or_removed,
            lifecycle::a_claim_takes_an_unheld_conversation_once,
            lifecycle::a_release_keeps_the_waiting_messages_waiting,
            lifecycle::a_resolve_ends_the_holding_and_the_waiting,
            lifecycle::a_transfer_hands_the_conversation_to_a_provisioned_agent,
            lifecycle::a_change_to_an_unknown_user_is_unknown_user,
            lifecycle::a_supervisor_changes_any_conversation,
            auto_release::a_conversation_is_due_once_held_and_offline_past_the_deadline,
            notes::a_note_neither_takes_nor_answers,
            notes::notes_are_read_by_agents_and_never_by_the_user,
            names::a_new_name_differs_from_every_user_and_agent_ignoring_case,
        );
    };
    (@each $new:expr; $($group:ident :: $test:ident),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                $crate::store::contract::$group::$test($new);
            }
        )+
    };
    (@each_optional $fresh:ident; $($group:ident :: $test:ident),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                if let Some(subject) = $fresh() {
                    $crate::store::contract::$group::$test(|| subject);
                }
            }
        )+
    };
    ($fresh:ident) => {
        contract_tests!(@tests @each_optional $fresh);
    };
    ($new:expr) => {
        contract_tests!(@tests @each $new);
    };
}
pub(in crate::store) use contract_tests;
