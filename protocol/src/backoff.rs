//! How a client waits between attempts to connect: jittered exponential
//! backoff, and how long it waits for the greeting before it gives an
//! attempt up.
//!
//! The server speaks first. When a burst of connects overflows its listen
//! queue, Linux drops the handshake's last ACK: the client believes it is
//! connected and the server never hears of it, so the only sign is a
//! greeting that does not come (issue 15, finding 9). Every client
//! therefore gives up on a connection after [`GREETING_TIMEOUT`] and tries
//! again after a [`Backoff`] wait. The jitter matters as much as the
//! growth: clients cut off together must not all come back together and
//! overflow the queue again.
//!
//! This is a rule of the protocol's clients, not I/O: it lives here so that
//! the terminal client and the load generator follow the same one. The
//! randomness comes from the caller, so the rule is pure and testable.

use std::time::Duration;

/// How long a client waits, after connecting, for the server's greeting
/// before it gives the connection up and tries again. A server that is up
/// greets within milliseconds; this is seconds so that a busy machine is
/// not mistaken for a lost handshake.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits between attempts: each step twice the last, up to a maximum; the
/// wait itself is drawn between half the step and the whole of it ("equal
/// jitter": spread out, never close to zero). Optionally a number of
/// retries, after which [`Backoff::next_wait`] says to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    step: Duration,
    max: Duration,
    /// `None`: retry for ever (a person's client that keeps reconnecting).
    retries_left: Option<u32>,
}

impl Backoff {
    /// Steps from `first`, doubling, to at most `max`; retries for ever.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self {
            step: first,
            max,
            retries_left: None,
        }
    }

    /// The same, giving up after `retries` waits.
    pub const fn with_retries(mut self, retries: u32) -> Self {
        self.retries_left = Some(retries);
        self
    }

    /// The wait before the next attempt, drawn with `random` (any value;
    /// uniform draws give uniform waits), or `None` once the retries are
    /// spent.
    pub fn next_wait(&mut self, random: u64) -> Option<Duration> {
        if let Some(left) = &mut self.retries_left {
            *left = left.checked_sub(1)?;
        }
        let step = self.step.min(self.max);
        self.step = step.saturating_mul(2).min(self.max);
        let step_ns = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
        let half = step_ns / 2;
        let spread = (step_ns - half).saturating_add(1);
        Some(Duration::from_nanos(half + random % spread))
    }

    /// The most all the remaining waits can add up to (`None` if retrying
    /// for ever): what a caller can promise about how long it tries.
    pub fn longest_total(&self) -> Option<Duration> {
        let retries = self.retries_left?;
        let mut step = self.step;
        let mut total = Duration::ZERO;
        for _ in 0..retries {
            total = total.saturating_add(step.min(self.max));
            step = step.saturating_mul(2).min(self.max);
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn nanos(duration: Duration) -> u64 {
        u64::try_from(duration.as_nanos()).expect("short")
    }

    #[test]
    fn each_wait_lies_between_half_its_step_and_the_whole_step() {
        let steps = [100, 200, 400, 800, 1_000, 1_000].map(|ms| ms * MS);
        let mut low = Backoff::new(100 * MS, 1_000 * MS);
        let mut high = low.clone();
        for step in steps {
            assert_eq!(low.next_wait(0), Some(step / 2));
            // The largest draw gives the whole step.
            let largest = nanos(step) - nanos(step) / 2;
            assert_eq!(high.next_wait(largest), Some(step));
        }
    }

    #[test]
    fn waits_grow_as_a_sequence() {
        let mut backoff = Backoff::new(100 * MS, 1_000 * MS);
        let smallest: Vec<Duration> = (0..6).filter_map(|_| backoff.next_wait(0)).collect();
        assert_eq!(smallest, [50, 100, 200, 400, 500, 500].map(|ms| ms * MS));
    }

    #[test]
    fn different_draws_spread_the_waits() {
        let mut seen = HashSet::new();
        let mut draw: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..100 {
            // A simple generator is enough to show the draw is used.
            draw = draw.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let wait = Backoff::new(1_000 * MS, 8_000 * MS)
                .next_wait(draw)
                .expect("retries for ever");
            assert!((500 * MS..=1_000 * MS).contains(&wait), "{wait:?}");
            seen.insert(wait);
        }
        assert!(seen.len() > 90, "only {} distinct waits", seen.len());
    }

    #[test]
    fn retries_are_bounded_and_so_is_their_total() {
        let mut backoff = Backoff::new(100 * MS, 1_000 * MS).with_retries(3);
        assert_eq!(backoff.longest_total(), Some(700 * MS));
        for _ in 0..3 {
            assert!(backoff.next_wait(u64::MAX).is_some());
        }
        assert_eq!(backoff.next_wait(0), None);
        assert_eq!(backoff.next_wait(0), None);
        assert_eq!(backoff.longest_total(), Some(Duration::ZERO));
    }

    #[test]
    fn without_a_bound_it_retries_for_ever() {
        let mut backoff = Backoff::new(MS, 2 * MS);
        assert_eq!(backoff.longest_total(), None);
        assert!((0..10_000).all(|_| backoff.next_wait(7).is_some()));
    }
}
