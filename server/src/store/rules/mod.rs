//! The rules of storage, whatever database keeps the data: what each write
//! means ([`write`](mod@write): assignment, replays, the waiting queue, releases,
//! registrations, the clock) and what each read means ([`read`]: sign-in,
//! history, backlogs).
//!
//! They reach the data only through two traits, whose docs are the contract
//! a backend keeps, rules and concurrency both: [`Tables`] (a write
//! transaction, reads there are for deciding) and [`Reads`] (a snapshot,
//! reads there are for answering). The SQLite backend implements both in
//! `store/sqlite/`; a PostgreSQL one implements them again and reuses these
//! rules unchanged.

mod connections;
mod lifecycle;
pub(super) mod read;
mod reads;
mod tables;
mod write;

pub(super) use connections::{
    forget_members, member, release_offline_holders, retire_node, sweep_expired_nodes,
};
pub use lifecycle::Lifecycle;
pub(super) use lifecycle::lifecycle;
pub use reads::Notes;
pub(in crate::store) use reads::{Reads, ReplyChunk, ResumeCap};
pub use tables::NewMessage;
pub(in crate::store) use tables::{AgentRow, ReleaseDue, Tables, UserRow};
pub(super) use write::{Clock, Written, register_user, release_removed_agents, store_message};
