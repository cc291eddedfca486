//! Token buckets by key (a client address, a user name), with bounded
//! memory: the shape every count of "one sender across its connections"
//! shares ([`crate::address_rate`], [`crate::inflow`]).
//!
//! A bucket that has refilled is as good as none, so those are forgotten.
//! A sweep for them runs when the map reaches a size, and the next one only
//! once it has doubled from what the sweep left, so a crowd of active
//! senders costs amortised constant time each, never a scan per request.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use crate::rate_limit::TokenBucket;

/// Senders remembered before the first sweep for refilled buckets.
pub(crate) const FORGET_ABOVE: usize = 4_096;

/// What a map of buckets needs to know to forget one.
pub trait Refills {
    /// Whether it would be full at `now`: as good as a new one.
    fn is_full_at(&self, now: Instant) -> bool;
}

impl Refills for TokenBucket {
    fn is_full_at(&self, now: Instant) -> bool {
        TokenBucket::is_full_at(self, now)
    }
}

#[derive(Debug)]
pub struct BucketsBy<K, B> {
    buckets: HashMap<K, B>,
    /// Size at which the next sweep runs.
    sweep_at: usize,
}

impl<K, B> Default for BucketsBy<K, B> {
    fn default() -> Self {
        Self {
            buckets: HashMap::new(),
            sweep_at: FORGET_ABOVE,
        }
    }
}

impl<K: Hash + Eq, B: Refills> BucketsBy<K, B> {
    /// `key`'s bucket, made full by `new` if it has none.
    pub fn of(&mut self, key: K, now: Instant, new: impl FnOnce() -> B) -> &mut B {
        if self.buckets.len() >= self.sweep_at {
            self.buckets.retain(|_, bucket| !bucket.is_full_at(now));
            self.sweep_at = FORGET_ABOVE.max(self.buckets.len() * 2);
        }
        self.buckets.entry(key).or_insert_with(new)
    }

    /// How many keys have a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn bucket(now: Instant) -> TokenBucket {
        TokenBucket::new_at(10.0, 10, now)
    }

    #[test]
    fn refilled_buckets_are_forgotten_once_the_map_is_large() {
        let mut by: BucketsBy<usize, TokenBucket> = BucketsBy::default();
        let start = Instant::now();
        for key in 0..FORGET_ABOVE {
            assert!(by.of(key, start, || bucket(start)).try_take_at(start));
        }
        assert_eq!(by.len(), FORGET_ABOVE);
        let later = start + Duration::from_secs(2);
        by.of(usize::MAX, later, || bucket(later));
        assert_eq!(by.len(), 1, "every refilled bucket went in one sweep");
    }

    /// Buckets that have not refilled are kept, and the next sweep waits
    /// until the map has doubled: a flood of fresh senders does not make
    /// every new one pay for a sweep.
    #[test]
    fn a_sweep_that_frees_little_is_not_repeated_at_once() {
        let mut by: BucketsBy<usize, TokenBucket> = BucketsBy::default();
        let now = Instant::now();
        for key in 0..=FORGET_ABOVE {
            assert!(by.of(key, now, || bucket(now)).try_take_at(now));
        }
        assert_eq!(by.len(), FORGET_ABOVE + 1);
        assert_eq!(by.sweep_at, FORGET_ABOVE * 2);
    }
}
