//! New user names per client address: a token bucket each
//! ([`AddressRate`]).
//!
//! A user's first `hello` registers a name, and that costs the server a
//! write and a row for ever. Without a limit, one host could loop
//! connect → `hello` → close and fill the database with names (a probe made
//! 4,000 in 0.7 s). Each address may register `--signups-per-minute` names a
//! minute, in a burst of as many; signing in with a token is never limited.

use std::net::IpAddr;

use crate::address_rate::AddressRate;

/// Seconds in a minute, for turning a rate a minute into one a second.
const SECONDS_PER_MINUTE: f64 = 60.0;

#[derive(Debug)]
pub struct SignupLimiter(AddressRate);

impl SignupLimiter {
    /// `per_minute` names an address may register a minute, in a burst of
    /// as many; 0: no limit.
    pub fn new(per_minute: u32) -> Self {
        Self(AddressRate::new(
            f64::from(per_minute) / SECONDS_PER_MINUTE,
            per_minute,
        ))
    }

    /// Whether `address` may register one more name now.
    pub fn try_take(&self, address: IpAddr) -> bool {
        self.0.try_take(address)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use super::*;

    fn address(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn each_address_gets_its_burst_then_its_rate() {
        let limiter = SignupLimiter::new(2);
        let start = Instant::now();
        assert!(limiter.0.try_take_at(address(1), start));
        assert!(limiter.0.try_take_at(address(1), start));
        assert!(!limiter.0.try_take_at(address(1), start), "the burst is 2");
        assert!(limiter.0.try_take_at(address(2), start), "another address");
        // Two a minute: one more after 30 s.
        assert!(
            limiter
                .0
                .try_take_at(address(1), start + Duration::from_secs(30))
        );
        assert!(
            !limiter
                .0
                .try_take_at(address(1), start + Duration::from_secs(31))
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = SignupLimiter::new(0);
        assert!((0..10_000).all(|_| limiter.try_take(address(1))));
        assert_eq!(limiter.0.remembered(), 0);
    }
}
