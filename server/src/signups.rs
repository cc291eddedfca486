//! New user names: per client address ([`AddressRate`]) and for the whole
//! server.
//!
//! A user's first `hello` registers a name, and that costs the server a
//! write and a row for ever. Without a limit, one host could loop
//! connect → `hello` → close and fill the database with names (a probe made
//! 4,000 in 0.7 s). Each address may register `--signups-per-minute` names a
//! minute, in a burst of as many; signing in with a token is never limited.
//!
//! Sign-ups also multiply with addresses (40 addresses registered 2,400
//! names in 1.3 s), so the whole server registers at most
//! `--signups-per-minute-total` names a minute, in a burst of as many.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::address_rate::AddressRate;
use crate::rate_limit::TokenBucket;

/// Seconds in a minute, for turning a rate a minute into one a second.
const SECONDS_PER_MINUTE: f64 = 60.0;

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
    by_address: AddressRate,
    /// Every address together (rate 0: no limit).
    total: Mutex<TokenBucket>,
}

impl SignupLimiter {
    /// `per_minute` names per address, `total_per_minute` for the whole
    /// server, each in a burst of as many (0: no limit).
    pub fn new(per_minute: u32, total_per_minute: u32) -> Self {
        Self {
            by_address: AddressRate::new(f64::from(per_minute) / SECONDS_PER_MINUTE, per_minute),
            total: Mutex::new(TokenBucket::new(
                f64::from(total_per_minute) / SECONDS_PER_MINUTE,
                total_per_minute,
            )),
        }
    }

    /// Whether `address` may register one more name now, or why not. A
    /// refusal costs neither count anything.
    pub fn try_take(&self, address: IpAddr) -> Result<(), SignupRefused> {
        self.try_take_at(address, Instant::now())
    }

    fn try_take_at(&self, address: IpAddr, now: Instant) -> Result<(), SignupRefused> {
        // Held across both, so the server's count is checked and taken as one.
        let mut total = self.total.lock().unwrap_or_else(PoisonError::into_inner);
        if !total.has_room_at(1.0, now) {
            return Err(SignupRefused::Server);
        }
        if !self.by_address.try_take_at(address, now) {
            return Err(SignupRefused::Address);
        }
        total.take_at(1.0, now);
        Ok(())
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
        let limiter = SignupLimiter::new(2, 0);
        let start = Instant::now();
        assert!(limiter.try_take_at(address(1), start).is_ok());
        assert!(limiter.try_take_at(address(1), start).is_ok());
        assert_eq!(
            limiter.try_take_at(address(1), start),
            Err(SignupRefused::Address),
            "the burst is 2"
        );
        assert!(limiter.try_take_at(address(2), start).is_ok());
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
        // again (a name every 20 s), it registers twice more.
        let later = start + Duration::from_secs(40);
        assert!(limiter.try_take_at(address(4), later).is_ok());
        assert!(limiter.try_take_at(address(4), later).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = SignupLimiter::new(0, 0);
        assert!((0..10_000).all(|_| limiter.try_take(address(1)).is_ok()));
        assert_eq!(limiter.by_address.remembered(), 0);
    }
}
