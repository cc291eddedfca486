//! A token bucket: `rate` a second on average, `burst` at once. One per
//! connection limits `send` (the defaults are far above what a person
//! types); one per address limits new user names and new connections
//! ([`crate::address_rate`]); one per user spaces presence announcements
//! (`fanout/presence.rs`); [`crate::inflow`] counts what users send across
//! their connections.

use std::time::{Duration, Instant};

const MICROS_PER_SECOND: f64 = 1_000_000.0;

#[derive(Debug)]
pub struct TokenBucket {
    /// Tokens added per second; 0 means no limit.
    rate: f64,
    capacity: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32) -> Self {
        Self::new_at(rate, burst, Instant::now())
    }

    /// A full bucket, as of `now`.
    pub fn new_at(rate: f64, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        Self {
            rate,
            capacity,
            tokens: capacity,
            refilled: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }

    pub fn try_take_at(&mut self, now: Instant) -> bool {
        if self.has_room_at(1.0, now) {
            self.take_at(1.0, now);
            true
        } else {
            false
        }
    }

    /// Whether `cost` tokens can be taken at `now`. A cost above the burst
    /// counts as the whole burst, so anything can pass once the bucket is
    /// full. Split from [`TokenBucket::take_at`] so that a caller checking
    /// several buckets takes from none unless all have room.
    pub fn has_room_at(&mut self, cost: f64, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        self.refill(now);
        self.tokens >= cost.min(self.capacity)
    }

    /// Takes `cost` tokens (at most the burst) at `now`, room or not.
    pub fn take_at(&mut self, cost: f64, now: Instant) {
        if self.rate <= 0.0 {
            return;
        }
        self.refill(now);
        self.tokens = (self.tokens - cost.min(self.capacity)).max(0.0);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.refilled = now;
    }
}

impl TokenBucket {
    /// How long from `now` until a token is there to take (zero: now),
    /// rounded up to the microsecond so that a token is there by then.
    pub fn wait_at(&self, now: Instant) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        let tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if tokens >= 1.0 {
            Duration::ZERO
        } else {
            let micros = ((1.0 - tokens) / self.rate * MICROS_PER_SECOND).ceil();
            // Saturates for absurdly slow rates: never sooner than true.
            Duration::from_micros(micros as u64)
        }
    }

    /// Whether the bucket would be full at `now`: as good as a new one.
    pub fn is_full_at(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.rate <= 0.0 || self.tokens + elapsed * self.rate >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3);
        bucket.refilled = start;
        assert!((0..3).all(|_| bucket.try_take_at(start)));
        assert!(!bucket.try_take_at(start));
        assert!(bucket.try_take_at(start + Duration::from_millis(500)));
        assert!(!bucket.try_take_at(start + Duration::from_millis(600)));
        // A long pause refills only up to the burst.
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.try_take_at(later)));
        assert!(!bucket.try_take_at(later));
    }

    #[test]
    fn says_how_long_until_the_next_token() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new_at(2.0, 1, start);
        assert_eq!(bucket.wait_at(start), Duration::ZERO);
        assert!(bucket.try_take_at(start));
        assert_eq!(bucket.wait_at(start), Duration::from_millis(500));
        let later = start + Duration::from_millis(200);
        let wait = bucket.wait_at(later);
        assert!(wait > Duration::from_millis(299) && wait <= Duration::from_millis(301));
        assert!(bucket.try_take_at(later + wait));
    }

    #[test]
    fn rate_zero_disables_the_limit() {
        let mut bucket = TokenBucket::new(0.0, 1);
        assert!((0..10_000).all(|_| bucket.try_take()));
    }
}
