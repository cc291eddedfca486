//! What customers may send, counted across all their connections.
//!
//! The per-connection rate ([`crate::cmd::PerConnection`]) alone let one user
//! open 50 connections and send 50 times as much: 16 KB messages within each
//! connection's limit reached every agent faster than any agent could read,
//! and every agent was cut off as a slow consumer within a fifth of a second.
//! Agents are the scarce party, so a flood must be refused at its sender.
//!
//! Every user `send` is counted twice before it is stored: against its user
//! name (all the user's connections together) and against its client
//! address (all users on it; an IPv6 host counts by its /64, as
//! [`client`] says). Each count has two token buckets: messages a second
//! with a burst, and body bytes a second with a burst of
//! [`BYTES_BURST_SECONDS`] seconds' worth. A send goes through only if all
//! four have room, and only then is it taken from each, so a refused send
//! costs nothing. Past a limit the sender gets `rate_limited` and keeps its
//! connection; nobody else notices.
//!
//! Agents are provisioned and trusted, and an office may put dozens of them
//! behind one address: their sends are not counted here (the per-connection
//! rate still applies).
//!
//! The defaults ([`crate::config::defaults`]) come from what one agent
//! connection can take (docs/protocol.md, open point 29, has the figures):
//! one user's burst is a small fraction of an agent's outbox, and one
//! address's sustained rate a small fraction of what a slow agent reads.

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use switchboard_protocol::Name;

use crate::buckets_by::{BucketsBy, Refills};
use crate::per_address::client;
use crate::rate_limit::TokenBucket;

/// A byte allowance's burst, in seconds of its rate: room for a few long
/// messages at once (a pasted log), while the rate still bounds the flow.
pub const BYTES_BURST_SECONDS: u32 = 4;

/// What one sender (a user, or an address) may send. A rate of 0 turns
/// that bucket off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Allowance {
    pub messages_per_second: f64,
    pub message_burst: u32,
    pub bytes_per_second: u32,
}

impl Allowance {
    /// Nothing counted.
    pub const OFF: Allowance = Allowance {
        messages_per_second: 0.0,
        message_burst: 1,
        bytes_per_second: 0,
    };

    /// Whether nothing is limited.
    fn is_off(&self) -> bool {
        self.messages_per_second <= 0.0 && self.bytes_per_second == 0
    }

    fn buckets(&self, now: Instant) -> Buckets {
        let bytes_burst = self.bytes_per_second.saturating_mul(BYTES_BURST_SECONDS);
        Buckets {
            messages: TokenBucket::new_at(self.messages_per_second, self.message_burst, now),
            bytes: TokenBucket::new_at(f64::from(self.bytes_per_second), bytes_burst, now),
        }
    }
}

/// Whose allowance a refused send went over: the client is told which, so a
/// person behind a shared address knows it is not their own doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    User,
    Address,
}

/// One sender's two buckets.
#[derive(Debug)]
struct Buckets {
    messages: TokenBucket,
    bytes: TokenBucket,
}

impl Buckets {
    fn has_room(&mut self, bytes: f64, now: Instant) -> bool {
        self.messages.has_room_at(1.0, now) && self.bytes.has_room_at(bytes, now)
    }

    fn take(&mut self, bytes: f64, now: Instant) {
        self.messages.take_at(1.0, now);
        self.bytes.take_at(bytes, now);
    }
}

impl Refills for Buckets {
    fn is_full_at(&self, now: Instant) -> bool {
        self.messages.is_full_at(now) && self.bytes.is_full_at(now)
    }
}

/// One allowance's buckets, by sender.
#[derive(Debug)]
struct Senders<K> {
    allowance: Allowance,
    buckets: BucketsBy<K, Buckets>,
}

impl<K: Hash + Eq> Senders<K> {
    fn new(allowance: Allowance) -> Self {
        Self {
            allowance,
            buckets: BucketsBy::default(),
        }
    }

    /// `key`'s buckets, or `None` when its allowance is off.
    fn of(&mut self, key: K, now: Instant) -> Option<&mut Buckets> {
        if self.allowance.is_off() {
            return None;
        }
        let allowance = self.allowance;
        Some(self.buckets.of(key, now, || allowance.buckets(now)))
    }
}

/// The server's count of what users send, by name and by address.
#[derive(Debug)]
pub struct InflowLimits {
    senders: Mutex<(Senders<Name>, Senders<IpAddr>)>,
}

impl InflowLimits {
    pub fn new(per_user: Allowance, per_address: Allowance) -> Self {
        Self {
            senders: Mutex::new((Senders::new(per_user), Senders::new(per_address))),
        }
    }

    /// Counts a user's message of `bytes` from `address` (`None`: an
    /// in-memory session, counted by user only), or says whose allowance it
    /// would go over; then nothing is counted.
    pub fn try_send(
        &self,
        user: &Name,
        address: Option<IpAddr>,
        bytes: usize,
    ) -> Result<(), Exceeded> {
        self.try_send_at(user, address, bytes, Instant::now())
    }

    fn try_send_at(
        &self,
        user: &Name,
        address: Option<IpAddr>,
        bytes: usize,
        now: Instant,
    ) -> Result<(), Exceeded> {
        // Exact for any body the protocol accepts (at most a few hundred KB).
        let bytes = bytes as f64;
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        let (users, addresses) = &mut *senders;
        let mut by_user = users.of(user.clone(), now);
        if let Some(buckets) = by_user.as_deref_mut()
            && !buckets.has_room(bytes, now)
        {
            return Err(Exceeded::User);
        }
        let mut by_address = address.and_then(|address| addresses.of(client(address), now));
        if let Some(buckets) = by_address.as_deref_mut()
            && !buckets.has_room(bytes, now)
        {
            return Err(Exceeded::Address);
        }
        for buckets in [by_user, by_address].into_iter().flatten() {
            buckets.take(bytes, now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    const OFF: Allowance = Allowance::OFF;

    fn name(text: &str) -> Name {
        Name::parse(text).expect("a valid name")
    }

    fn address(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
    }

    #[test]
    fn a_user_gets_one_burst_however_many_connections_it_opens() {
        let per_user = Allowance {
            messages_per_second: 1.0,
            message_burst: 3,
            bytes_per_second: 0,
        };
        let limits = InflowLimits::new(per_user, OFF);
        let now = Instant::now();
        let ana = name("ana");
        // Connections are invisible here: every send is ana's.
        assert!((0..3).all(|_| limits.try_send_at(&ana, address(1), 10, now).is_ok()));
        assert_eq!(
            limits.try_send_at(&ana, address(2), 10, now),
            Err(Exceeded::User),
            "another address does not buy ana more"
        );
        assert!(limits.try_send_at(&name("bo"), address(1), 10, now).is_ok());
        let later = now + Duration::from_secs(1);
        assert!(limits.try_send_at(&ana, address(1), 10, later).is_ok());
    }

    #[test]
    fn bytes_are_counted_with_a_burst_of_a_few_seconds() {
        let per_user = Allowance {
            messages_per_second: 0.0,
            message_burst: 1,
            bytes_per_second: 1_000,
        };
        let limits = InflowLimits::new(per_user, OFF);
        let now = Instant::now();
        let ana = name("ana");
        let burst = 1_000 * BYTES_BURST_SECONDS as usize;
        assert!(limits.try_send_at(&ana, None, burst - 100, now).is_ok());
        assert_eq!(
            limits.try_send_at(&ana, None, 200, now),
            Err(Exceeded::User)
        );
        assert!(limits.try_send_at(&ana, None, 100, now).is_ok());
        let later = now + Duration::from_millis(500);
        assert!(limits.try_send_at(&ana, None, 500, later).is_ok());
    }

    #[test]
    fn an_address_counts_every_user_on_it() {
        let per_address = Allowance {
            messages_per_second: 1.0,
            message_burst: 2,
            bytes_per_second: 0,
        };
        let limits = InflowLimits::new(OFF, per_address);
        let now = Instant::now();
        assert!(limits.try_send_at(&name("a"), address(1), 1, now).is_ok());
        assert!(limits.try_send_at(&name("b"), address(1), 1, now).is_ok());
        assert_eq!(
            limits.try_send_at(&name("c"), address(1), 1, now),
            Err(Exceeded::Address)
        );
        assert!(limits.try_send_at(&name("c"), address(2), 1, now).is_ok());
        assert!(
            limits.try_send_at(&name("c"), None, 1, now).is_ok(),
            "no address, no address count"
        );
    }

    #[test]
    fn a_refused_send_costs_nothing() {
        let per_user = Allowance {
            messages_per_second: 1.0,
            message_burst: 5,
            bytes_per_second: 0,
        };
        let per_address = Allowance {
            messages_per_second: 1.0,
            message_burst: 1,
            bytes_per_second: 0,
        };
        let limits = InflowLimits::new(per_user, per_address);
        let now = Instant::now();
        let ana = name("ana");
        assert!(limits.try_send_at(&ana, address(1), 1, now).is_ok());
        // The address is spent: ana's own bucket must not be charged for
        // the sends it refuses.
        for _ in 0..10 {
            assert_eq!(
                limits.try_send_at(&ana, address(1), 1, now),
                Err(Exceeded::Address)
            );
        }
        assert!(
            (0..4).all(|_| limits.try_send_at(&ana, None, 1, now).is_ok()),
            "ana still has four of her five"
        );
        assert_eq!(limits.try_send_at(&ana, None, 1, now), Err(Exceeded::User));
    }

    #[test]
    fn senders_whose_buckets_refilled_are_forgotten() {
        let per_user = Allowance {
            messages_per_second: 10.0,
            message_burst: 10,
            bytes_per_second: 0,
        };
        let limits = InflowLimits::new(per_user, OFF);
        let now = Instant::now();
        for i in 0..crate::buckets_by::FORGET_ABOVE {
            let user = name(&format!("u{i}"));
            assert!(limits.try_send_at(&user, None, 1, now).is_ok());
        }
        let later = now + Duration::from_secs(2);
        assert!(limits.try_send_at(&name("late"), None, 1, later).is_ok());
        let senders = limits.senders.lock().expect("not poisoned");
        assert_eq!(senders.0.buckets.len(), 1);
    }

    #[test]
    fn zero_rates_turn_the_count_off() {
        let limits = InflowLimits::new(OFF, OFF);
        let ana = name("ana");
        assert!((0..10_000).all(|_| limits.try_send(&ana, address(1), 65_536).is_ok()));
        let senders = limits.senders.lock().expect("not poisoned");
        assert!(senders.0.buckets.is_empty() && senders.1.buckets.is_empty());
    }
}
