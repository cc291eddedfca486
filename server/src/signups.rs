//! New user names per client address: a token bucket each.
//!
//! A user's first `hello` registers a name, and that costs the server a
//! write and a row for ever. Without a limit, one host could loop
//! connect → `hello` → close and fill the database with names (a probe made
//! 4,000 in 0.7 s). Each address may register `--signups-per-minute` names a
//! minute, in a burst of as many; signing in with a token is never limited.
//! An address is a client as [`client`] counts it (an IPv6 host by its /64).
//!
//! Sign-ups also multiply with addresses (40 addresses registered 2,400
//! names in 1.3 s), so the whole server also registers at most
//! `--signups-per-minute-total` names a minute, in a burst of as many.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::per_address::client;
use crate::rate_limit::TokenBucket;

/// Addresses remembered before those that could register a full burst again
/// (and so need no bucket) are forgotten.
const FORGET_ABOVE: usize = 4_096;

/// Why a new name may not be registered now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupRefused {
    /// This address registered its share.
    Address,
    /// The whole server did.
    Server,
}

#[derive(Debug)]
pub struct SignupLimiter {
    /// Names an address may register a minute; 0: no limit.
    per_minute: u32,
    buckets: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    by_address: HashMap<IpAddr, TokenBucket>,
    /// Every address together (rate 0: no limit).
    total: TokenBucket,
}

impl SignupLimiter {
    /// `per_minute` names per address, `total_per_minute` for the whole
    /// server (0: no limit).
    pub fn new(per_minute: u32, total_per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(Buckets {
                by_address: HashMap::new(),
                total: per_minute_bucket(total_per_minute, Instant::now()),
            }),
        }
    }

    /// Whether `address` may register one more name now, or why not.
    pub fn try_take(&self, address: IpAddr) -> Result<(), SignupRefused> {
        self.try_take_at(address, Instant::now())
    }

    fn try_take_at(&self, address: IpAddr, now: Instant) -> Result<(), SignupRefused> {
        let address = client(address);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let Buckets { by_address, total } = &mut *buckets;
        let mut own = None;
        if self.per_minute > 0 {
            if by_address.len() >= FORGET_ABOVE {
                by_address.retain(|_, bucket| !bucket.is_full_at(now));
            }
            let per_minute = self.per_minute;
            let bucket = by_address
                .entry(address)
                .or_insert_with(|| per_minute_bucket(per_minute, now));
            if !bucket.has_room_at(1.0, now) {
                return Err(SignupRefused::Address);
            }
            own = Some(bucket);
        }
        if !total.has_room_at(1.0, now) {
            return Err(SignupRefused::Server);
        }
        total.take_at(1.0, now);
        if let Some(own) = own {
            own.take_at(1.0, now);
        }
        Ok(())
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_address
            .len()
    }
}

/// `per_minute` a minute, in a burst of as many (0: no limit).
fn per_minute_bucket(per_minute: u32, now: Instant) -> TokenBucket {
    TokenBucket::new_at(f64::from(per_minute) / 60.0, per_minute, now)
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
        let limiter = SignupLimiter::new(2, 0);
        let start = Instant::now();
        assert!(limiter.try_take_at(address(1), start).is_ok());
        assert!(limiter.try_take_at(address(1), start).is_ok());
        assert_eq!(
            limiter.try_take_at(address(1), start),
            Err(SignupRefused::Address),
            "the burst is 2"
        );
        assert!(
            limiter.try_take_at(address(2), start).is_ok(),
            "another address"
        );
        // Two a minute: one more after 30 s.
        let half_a_minute = start + Duration::from_secs(30);
        assert!(limiter.try_take_at(address(1), half_a_minute).is_ok());
        let just_after = start + Duration::from_secs(31);
        assert!(limiter.try_take_at(address(1), just_after).is_err());
    }

    #[test]
    fn the_whole_server_has_a_share_too() {
        let limiter = SignupLimiter::new(2, 3);
        let start = Instant::now();
        assert!(limiter.try_take_at(address(1), start).is_ok());
        assert!(limiter.try_take_at(address(2), start).is_ok());
        assert!(limiter.try_take_at(address(3), start).is_ok());
        assert_eq!(
            limiter.try_take_at(address(4), start),
            Err(SignupRefused::Server),
            "a fresh address, but the server registered its 3"
        );
        // The refusal cost address 4 nothing: once the server has room
        // again (a name every 20 s), it registers.
        let later = start + Duration::from_secs(20);
        assert!(limiter.try_take_at(address(4), later).is_ok());
    }

    #[test]
    fn addresses_that_could_register_a_full_burst_again_are_forgotten() {
        let limiter = SignupLimiter::new(60, 0);
        let start = Instant::now();
        for i in 0..FORGET_ABOVE {
            let ip = IpAddr::V4(Ipv4Addr::from(u32::try_from(i).expect("small")));
            assert!(limiter.try_take_at(ip, start).is_ok());
        }
        assert_eq!(limiter.remembered(), FORGET_ABOVE);
        // A minute later every bucket is full again: one more address makes
        // the limiter forget them all.
        let later = start + Duration::from_secs(61);
        assert!(limiter.try_take_at(address(1), later).is_ok());
        assert_eq!(limiter.remembered(), 1);
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = SignupLimiter::new(0, 0);
        assert!((0..10_000).all(|_| limiter.try_take(address(1)).is_ok()));
        assert_eq!(limiter.remembered(), 0);
    }
}
