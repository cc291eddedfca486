//! A token bucket per client address: the shape both per-address rates share
//! (new user names, [`crate::signups`]; new connections, the accept loop in
//! [`crate::server`]).
//!
//! An address is a client as [`client`] counts it (an IPv6 host by its /64),
//! so a host cannot dodge its bucket by changing addresses within its own
//! network. Memory is bounded as [`BucketsBy`] bounds it.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::buckets_by::BucketsBy;
use crate::per_address::client;
use crate::rate_limit::TokenBucket;

#[derive(Debug)]
pub struct AddressRate {
    /// Tokens a second each address earns; 0: no limit.
    per_second: f64,
    burst: u32,
    buckets: Mutex<BucketsBy<IpAddr, TokenBucket>>,
}

impl AddressRate {
    /// `per_second` on average per address (0: no limit), `burst` at once.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst,
            buckets: Mutex::default(),
        }
    }

    /// Whether the limit is off.
    pub fn is_off(&self) -> bool {
        self.per_second <= 0.0
    }

    /// Takes a token from `address`'s bucket, if it has one.
    pub fn try_take(&self, address: IpAddr) -> bool {
        self.try_take_at(address, Instant::now())
    }

    pub fn try_take_at(&self, address: IpAddr, now: Instant) -> bool {
        if self.is_off() {
            return true;
        }
        let address = client(address);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (per_second, burst) = (self.per_second, self.burst);
        buckets
            .of(address, now, || TokenBucket::new_at(per_second, burst, now))
            .try_take_at(now)
    }

    /// How many addresses have a bucket (for tests).
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
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
    use crate::buckets_by::FORGET_ABOVE;

    fn address(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn each_address_gets_its_burst_then_its_rate() {
        let rate = AddressRate::new(10.0, 3);
        let start = Instant::now();
        assert!((0..3).all(|_| rate.try_take_at(address(1), start)));
        assert!(!rate.try_take_at(address(1), start), "the burst is 3");
        assert!(rate.try_take_at(address(2), start), "another address");
        // Ten a second: one more after 100 ms.
        let later = start + Duration::from_millis(100);
        assert!(rate.try_take_at(address(1), later));
        assert!(!rate.try_take_at(address(1), later));
    }

    #[test]
    fn an_ipv6_host_shares_one_bucket_across_its_64() {
        let rate = AddressRate::new(1.0, 1);
        let start = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("an address");
        let same_host: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("an address");
        assert!(rate.try_take_at(one, start));
        assert!(!rate.try_take_at(same_host, start));
    }

    #[test]
    fn addresses_whose_bucket_refilled_are_forgotten() {
        let rate = AddressRate::new(1.0, 60);
        let start = Instant::now();
        for i in 0..FORGET_ABOVE {
            let ip = IpAddr::V4(Ipv4Addr::from(u32::try_from(i).expect("small")));
            assert!(rate.try_take_at(ip, start));
        }
        assert_eq!(rate.remembered(), FORGET_ABOVE);
        // A second later every bucket is full again: one more address makes
        // the limiter forget them all.
        assert!(rate.try_take_at(address(1), start + Duration::from_secs(1)));
        assert_eq!(rate.remembered(), 1);
    }

    #[test]
    fn zero_means_no_limit() {
        let rate = AddressRate::new(0.0, 1);
        assert!((0..10_000).all(|_| rate.try_take(address(1))));
        assert_eq!(rate.remembered(), 0);
    }
}
