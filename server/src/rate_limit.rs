//! A token bucket: `rate` a second on average, `burst` at once. One per
//! connection limits `send` (the defaults are far above what a person
//! types); one per address limits new user names ([`crate::signups`]);
//! [`crate::inflow`] counts what users send across their connections.

use std::time::Instant;

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
    /// Whether the bucket would be full at `now`: as good as a new one.
    pub fn is_full_at(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.rate <= 0.0 || self.tokens + elapsed * self.rate >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn rate_zero_disables_the_limit() {
        let mut bucket = TokenBucket::new(0.0, 1);
        assert!((0..10_000).all(|_| bucket.try_take()));
    }
}
