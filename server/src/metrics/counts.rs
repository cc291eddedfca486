//! Counters the components keep about themselves, in atomics, for the
//! metrics endpoint to read: connections open by role and refusals by
//! error code (kept by sessions and the accept loop, `Services::counts`),
//! and frames queued to connections (kept by the router). Each is a
//! relaxed atomic addition where it happens; nothing here takes a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use switchboard_protocol::{ErrorCode, Role};

/// What sessions and the accept loop count.
#[derive(Debug, Default)]
pub struct SessionCounts {
    pub connections: Connections,
    /// Errors written to clients by sessions, and `server_busy` at the door.
    pub refusals: Refusals,
}

/// What the router counts.
#[derive(Debug, Default)]
pub struct FanoutCounts {
    /// Frames queued to connections' outboxes: events, replies, presence.
    delivered: AtomicU64,
    /// Answers refused by storage (`unauthorized`, `assigned_to_other`,
    /// `internal`, …), written by the router to their requesters.
    pub refusals: Refusals,
}

impl FanoutCounts {
    pub fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn delivered_total(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

/// Open connections: not signed in yet, and signed in by role.
#[derive(Debug, Default)]
pub struct Connections {
    anonymous: AtomicI64,
    users: AtomicI64,
    agents: AtomicI64,
}

/// How many connections are open, by what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionsNow {
    pub anonymous: i64,
    pub users: i64,
    pub agents: i64,
}

impl Connections {
    pub fn now(&self) -> ConnectionsNow {
        ConnectionsNow {
            anonymous: self.anonymous.load(Ordering::Relaxed),
            users: self.users.load(Ordering::Relaxed),
            agents: self.agents.load(Ordering::Relaxed),
        }
    }

    fn gauge(&self, role: Option<Role>) -> &AtomicI64 {
        match role {
            None => &self.anonymous,
            Some(Role::User) => &self.users,
            Some(Role::Agent) => &self.agents,
        }
    }
}

/// One connection, counted as anonymous from its start, under its role
/// once it signs in, and no more once this is dropped (however the
/// session ends, a panic included).
#[derive(Debug)]
pub struct Counted {
    counts: Arc<SessionCounts>,
    role: Option<Role>,
}

impl Counted {
    pub fn new(counts: Arc<SessionCounts>) -> Self {
        counts.connections.anonymous.fetch_add(1, Ordering::Relaxed);
        Self { counts, role: None }
    }

    pub fn signed_in(&mut self, role: Role) {
        let connections = &self.counts.connections;
        connections.gauge(self.role).fetch_sub(1, Ordering::Relaxed);
        connections
            .gauge(Some(role))
            .fetch_add(1, Ordering::Relaxed);
        self.role = Some(role);
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counts
            .connections
            .gauge(self.role)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Refusals by the protocol's error code (docs/protocol.md's table).
#[derive(Debug, Default)]
pub struct Refusals([AtomicU64; ErrorCode::ALL.len()]);

impl Refusals {
    pub fn count(&self, code: ErrorCode) {
        self.0[code as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, code: ErrorCode) -> u64 {
        self.0[code as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Refusals` indexes by the enum's discriminant: it must be the
    /// code's place in `ErrorCode::ALL`.
    #[test]
    fn every_code_has_its_own_counter() {
        for (index, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, index, "{code:?}");
        }
        let refusals = Refusals::default();
        refusals.count(ErrorCode::RateLimited);
        refusals.count(ErrorCode::RateLimited);
        refusals.count(ErrorCode::Internal);
        assert_eq!(refusals.get(ErrorCode::RateLimited), 2);
        assert_eq!(refusals.get(ErrorCode::Internal), 1);
        assert_eq!(refusals.get(ErrorCode::ServerBusy), 0);
    }

    #[test]
    fn a_connection_moves_from_anonymous_to_its_role_and_leaves() {
        let counts = Arc::new(SessionCounts::default());
        let mut ana = Counted::new(Arc::clone(&counts));
        let _other = Counted::new(Arc::clone(&counts));
        assert_eq!(counts.connections.now().anonymous, 2);
        ana.signed_in(Role::User);
        let now = counts.connections.now();
        assert_eq!((now.anonymous, now.users, now.agents), (1, 1, 0));
        drop(ana);
        let now = counts.connections.now();
        assert_eq!((now.anonymous, now.users, now.agents), (1, 0, 0));
    }
}
