//! New user names per client address: a token bucket each.
//!
//! A user's first `hello` registers a name, and that costs the server a
//! write and a row for ever. Without a limit, one host could loop
//! connect → `hello` → close and fill the database with names (a probe made
//! 4,000 in 0.7 s). Each address may register `--signups-per-minute` names a
//! minute, in a burst of as many; signing in with a token is never limited.
//! An address is a client as [`client`] counts it (an IPv6 host by its /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::per_address::client;
use crate::rate_limit::TokenBucket;

/// Addresses remembered before those that could register a full burst again
/// (and so need no bucket) are forgotten.
const FORGET_ABOVE: usize = 4_096;

#[derive(Debug)]
pub struct SignupLimiter {
    /// Names an address may register a minute; 0: no limit.
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl SignupLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `address` may register one more name now.
    pub fn try_take(&self, address: IpAddr) -> bool {
        self.try_take_at(address, Instant::now())
    }

    fn try_take_at(&self, address: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let address = client(address);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= FORGET_ABOVE {
            buckets.retain(|_, bucket| !bucket.is_full_at(now));
        }
        let per_minute = self.per_minute;
        buckets
            .entry(address)
            .or_insert_with(|| TokenBucket::new_at(f64::from(per_minute) / 60.0, per_minute, now))
            .try_take_at(now)
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    fn address(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn each_address_gets_its_burst_then_its_rate() {
        let limiter = SignupLimiter::new(2);
        let start = Instant::now();
        assert!(limiter.try_take_at(address(1), start));
        assert!(limiter.try_take_at(address(1), start));
        assert!(!limiter.try_take_at(address(1), start), "the burst is 2");
        assert!(limiter.try_take_at(address(2), start), "another address");
        // Two a minute: one more after 30 s.
        assert!(limiter.try_take_at(address(1), start + Duration::from_secs(30)));
        assert!(!limiter.try_take_at(address(1), start + Duration::from_secs(31)));
    }

    #[test]
    fn addresses_that_could_register_a_full_burst_again_are_forgotten() {
        let limiter = SignupLimiter::new(60);
        let start = Instant::now();
        for i in 0..FORGET_ABOVE {
            let ip = IpAddr::V4(Ipv4Addr::from(u32::try_from(i).expect("small")));
            assert!(limiter.try_take_at(ip, start));
        }
        assert_eq!(limiter.remembered(), FORGET_ABOVE);
        // A minute later every bucket is full again: one more address makes
        // the limiter forget them all.
        assert!(limiter.try_take_at(address(1), start + Duration::from_secs(61)));
        assert_eq!(limiter.remembered(), 1);
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = SignupLimiter::new(0);
        assert!((0..10_000).all(|_| limiter.try_take(address(1))));
        assert_eq!(limiter.remembered(), 0);
    }
}
