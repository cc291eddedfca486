//! A histogram of durations kept in atomics: recorded by one thread
//! without a lock, read by a scrape at any time. The buckets are fixed, in
//! seconds, as Prometheus wants them; the exposition (`collector.rs`)
//! hands them to the encoder, which makes them cumulative.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: from half a millisecond (a
/// group commit's fsync on a fast disk) to ten seconds (past SQLite's
/// five-second busy timeout: a commit stuck behind another process's lock).
pub const BUCKETS_SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Durations counted by bucket; recording is two relaxed atomic additions.
#[derive(Debug, Default)]
pub struct DurationHistogram {
    /// Observations in each bucket, not cumulative; the last one holds
    /// those above every bound.
    counts: [AtomicU64; BUCKETS_SECONDS.len() + 1],
    sum_micros: AtomicU64,
}

/// What a histogram held when it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Each bound with the observations in its bucket alone (not
    /// cumulative), as the encoder takes them.
    pub buckets: Vec<(f64, u64)>,
    /// Every observation, those above the last bound included.
    pub count: u64,
    pub sum_seconds: f64,
}

impl DurationHistogram {
    pub fn record(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS_SECONDS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The buckets as they are now. Read one at a time, so a scrape that
    /// races a record may see it in the count and not yet in the sum: the
    /// count is the buckets' total, so `+Inf` always equals `_count`.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            buckets: BUCKETS_SECONDS
                .iter()
                .copied()
                .zip(counts.iter().copied())
                .collect(),
            count: counts.iter().sum(),
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_duration_lands_in_the_first_bucket_that_holds_it() {
        let histogram = DurationHistogram::default();
        histogram.record(Duration::from_micros(300)); // <= 0.5 ms
        histogram.record(Duration::from_micros(500)); // on a bound: that bucket
        histogram.record(Duration::from_millis(3)); // <= 5 ms
        histogram.record(Duration::from_secs(60)); // above every bound
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 4);
        assert_eq!(snapshot.buckets[0], (0.0005, 2));
        assert_eq!(snapshot.buckets[3], (0.005, 1));
        let in_bounds: u64 = snapshot.buckets.iter().map(|(_, n)| n).sum();
        assert_eq!(in_bounds, 3, "the minute is only in the count (+Inf)");
        assert!(
            (snapshot.sum_seconds - 60.0038).abs() < 1e-9,
            "{snapshot:?}"
        );
    }
}
