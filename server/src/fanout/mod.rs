//! Fan-out: who is online, and which connection gets which frame.
//!
//! One task, the [`Router`], owns the [`Registry`] and applies each commit
//! the bus feeds it; each frame, encoded once, goes into the bounded
//! outboxes of the connections that may see it. The files:
//!
//! - [`router`]: the [`Router`] handle, its task loop (commands, and the
//!   bus's feed of commits) and the `StopGuard` that marks it stopped however
//!   it ends.
//! - [`bus`]: how each commit reaches the routers (one node: [`bus::LocalBus`],
//!   a bounded queue from the writer's thread to the router's feed).
//! - [`feed_order`]: a cluster's feed put in order: batches from the bus
//!   applied by position with no gap and none twice, the missing ranges named
//!   for a read-back from storage; pure (issue 16; not wired in yet).
//! - [`nats_bus`]: the bus on core NATS: publish, receive, and whether it is
//!   up (issue 16; not wired in yet).
//! - [`registry`]: membership: peers, subscriptions, presence and the agent
//!   count, and pushing into a connection's outbox.
//! - `presence.rs`: when agents hear a user come and go: at once online,
//!   offline after a grace unless back by then, a flapping user spaced
//!   out; pure, on a clock it is given (the router's timer asks it).
//! - `deliver.rs`: what a commit means for whom (`message`, `sent`,
//!   `assigned`, `released`, answers): the delivery rules, pure.
//! - `subscribe.rs`: a `subscribe` in progress: live events held back with
//!   their `Seq` until its backlog arrives.
//! - `seen.rs`: the run of message ids a connection was already sent, left
//!   out of a `since` re-subscribe's backlog.
//! - [`outbox`]: the bounded queue from the router to each session.
//! - [`credentials`]: the rule
//!   that closes the connections whose token was rotated or removed.
//!
//! The promises fan-out keeps, and where:
//!
//! - Events reach each connection in commit order: the writer hands over
//!   commits in order and one task applies them in turn (`router.rs`).
//! - Others before the sender: everyone else's event is queued before the
//!   sender's `sent`, so a `ping` on any connection is a barrier
//!   (docs/protocol.md, point 16) (`deliver.rs`).
//! - `assigned` before the message it came with (`deliver.rs`).
//! - Backlog meets live at the snapshot's `Seq`: nothing twice, nothing
//!   missed (`subscribe.rs`), even for a commit that reaches the router after
//!   the backlog that holds it (`deliver.rs` skips batches at or below the
//!   connection's `joined_at`), and a `since` re-subscribe on a live
//!   connection repeats none of what it was already sent (`seen.rs`).
//! - A full outbox cuts off only that connection; the router never waits on
//!   one (`registry.rs`, [`outbox`]).
//! - A revoked agent hears why, even with a full outbox ([`credentials`]).
//!
//! "One task applies the commits of its feed in order" is what keeps the
//! first four; on one node the feed is the local bus, and a cluster's bus must
//! feed batches ordered by `Seq` with no gap.

pub mod bus;
pub mod cluster_feed;
mod cluster_order;
pub mod credentials;
mod deliver;
pub mod feed_order;
pub mod members;
pub mod nats_bus;
pub mod outbox;
mod presence;
pub mod registry;
pub mod router;
mod seen;
mod subscribe;
#[cfg(test)]
mod test_support;

pub use registry::Registry;
pub use router::Router;
