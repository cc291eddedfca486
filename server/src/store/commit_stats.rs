//! What the writer's group commits cost, logged once a minute and when the
//! writer stops.
//!
//! Every acknowledged message waits for one commit, so the commit time is
//! the floor of every `sent` latency: this line tells an operator whether a
//! slow server is waiting on its disk (commit p99 close to the clients'
//! latency) or on its CPU (commits fast, clients slow), without a profiler.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// How often the figures are logged while the server runs.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Commits longer than this are counted as this: a stall that long is
/// already plain from the log line.
const MAX_RECORDED_US: u64 = 60_000_000;

/// The groups committed since the last report.
pub(super) struct CommitStats {
    since: Instant,
    groups: u64,
    requests: u64,
    /// Group durations, from its first statement to its commit returning
    /// (the write-ahead log written and flushed), in microseconds.
    durations_us: Histogram<u64>,
}

/// One report: what [`CommitStats::take`] returns and the log line shows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CommitReport {
    pub over: Duration,
    pub groups: u64,
    pub requests: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl CommitStats {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            since: now,
            groups: 0,
            requests: 0,
            durations_us: new_histogram(),
        }
    }

    /// One group of `requests` write requests took `took` to run and commit.
    pub(super) fn record(&mut self, requests: usize, took: Duration) {
        self.groups += 1;
        self.requests += requests as u64;
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.durations_us
            .saturating_record(micros.clamp(1, MAX_RECORDED_US));
    }

    /// Whether a report is due at `now`.
    pub(super) fn due(&self, now: Instant) -> bool {
        now.duration_since(self.since) >= REPORT_EVERY
    }

    /// The figures since the last report (`None` if nothing was committed),
    /// and a fresh start from `now`.
    pub(super) fn take(&mut self, now: Instant) -> Option<CommitReport> {
        let durations = &self.durations_us;
        let at = |quantile: f64| Duration::from_micros(durations.value_at_quantile(quantile));
        let report = (self.groups > 0).then(|| CommitReport {
            over: now.duration_since(self.since),
            groups: self.groups,
            requests: self.requests,
            p50: at(0.5),
            p99: at(0.99),
            max: Duration::from_micros(durations.max()),
        });
        self.since = now;
        self.groups = 0;
        self.requests = 0;
        self.durations_us.reset();
        report
    }
}

impl CommitReport {
    pub(super) fn log(&self) {
        tracing::info!(
            requests = self.requests,
            groups = self.groups,
            per_group = format_args!("{:.1}", self.requests as f64 / self.groups as f64),
            commit_p50_ms = format_args!("{:.3}", millis(self.p50)),
            commit_p99_ms = format_args!("{:.3}", millis(self.p99)),
            commit_max_ms = format_args!("{:.3}", millis(self.max)),
            over_s = format_args!("{:.1}", self.over.as_secs_f64()),
            "storage: group commits"
        );
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn new_histogram() -> Histogram<u64> {
    // Three significant figures from 1 µs to a minute: a few tens of KiB,
    // allocated once when the writer starts and reset after each report.
    Histogram::new_with_bounds(1, MAX_RECORDED_US, 3)
        .expect("constant bounds are valid: 1 <= low, high >= 2 * low, 3 figures")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_counts_groups_and_requests_and_reads_the_percentiles() {
        let start = Instant::now();
        let mut stats = CommitStats::new(start);
        for _ in 0..98 {
            stats.record(3, Duration::from_micros(200));
        }
        stats.record(10, Duration::from_millis(5));
        stats.record(1, Duration::from_millis(80));
        let report = stats
            .take(start + Duration::from_secs(2))
            .expect("groups were committed");
        assert_eq!(report.groups, 100);
        assert_eq!(report.requests, 98 * 3 + 11);
        assert_eq!(report.over, Duration::from_secs(2));
        let near = |got: Duration, want: Duration| {
            let (got, want) = (got.as_secs_f64(), want.as_secs_f64());
            assert!((got - want).abs() <= want * 0.01, "{got} vs {want}");
        };
        near(report.p50, Duration::from_micros(200));
        near(report.p99, Duration::from_millis(5));
        near(report.max, Duration::from_millis(80));
    }

    #[test]
    fn taking_a_report_starts_the_next_one_empty() {
        let start = Instant::now();
        let mut stats = CommitStats::new(start);
        stats.record(1, Duration::from_millis(1));
        let later = start + REPORT_EVERY;
        assert!(stats.due(later));
        assert!(stats.take(later).is_some());
        assert!(!stats.due(later));
        assert_eq!(stats.take(later + Duration::from_secs(1)), None);
    }

    #[test]
    fn a_stall_beyond_the_range_is_kept_as_the_longest_recordable() {
        let start = Instant::now();
        let mut stats = CommitStats::new(start);
        stats.record(1, Duration::from_secs(3600));
        let report = stats.take(start).expect("one group");
        assert!(report.max >= Duration::from_secs(59), "{:?}", report.max);
    }
}
