//! What the components count about themselves, for the operator port
//! (issue 16, "Operations").
//!
//! - [`counts`], [`histogram`]: counters in atomics (a relaxed addition
//!   where it happens, no lock on any message's path): sessions and the
//!   accept loop (connections by role, refusals), the router (frames
//!   queued), and through the store's
//!   [`WriterHealth`](crate::store::WriterHealth) the writer (commits, their
//!   time, messages stored, its health).

pub mod counts;
pub mod histogram;
