//! Fan-out: who is online, and which connection gets which frame.
//!
//! One task, the [`Router`], owns the registry of connections and applies
//! each commit storage hands it; each frame, encoded once, goes into the
//! bounded outboxes of the connections that may see it. The files:
//!
//! - [`router`]: the [`Router`] handle and its task, the registry, and the
//!   delivery rules (to be split by concern).
//! - [`outbox`]: the bounded queue from the router to each session.
//! - [`credentials`]: the watcher that re-reads agent tokens so the router
//!   closes the connections whose token was rotated or removed.

pub mod credentials;
pub mod outbox;
pub mod router;

pub use router::Router;
