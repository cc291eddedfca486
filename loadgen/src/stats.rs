//! What each task measures, merged at the end: latency histograms, error
//! counts, and when the last thing happened.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Longest latency the histogram tells apart, in microseconds (a sample is
/// a `u32`, so at most about 71 minutes; --timeout bounds them anyway).
const LATENCY_MAX_US: u64 = u32::MAX as u64;
/// Significant figures kept: 0.1% resolution at any latency.
const LATENCY_SIGNIFICANT_FIGURES: u8 = 3;

/// Latencies in microseconds. Each task keeps its own samples (4 bytes
/// each) and they go into one histogram at the end: a histogram per task
/// would cost a thousand open-loop users hundreds of megabytes of counters.
#[derive(Debug, Clone, Default)]
pub struct Latency(Vec<u32>);

impl Latency {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&mut self, micros: u64) {
        self.0.push(u32::try_from(micros).unwrap_or(u32::MAX));
    }

    pub fn merge(&mut self, other: &Latency) {
        self.0.extend_from_slice(&other.0);
    }

    pub fn summary(&self) -> LatencySummary {
        let mut histogram: Histogram<u64> =
            Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_FIGURES)
                .expect("constant bounds are valid");
        for micros in &self.0 {
            histogram.saturating_record(u64::from(*micros).max(1));
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        let empty = histogram.is_empty();
        let at = |q: f64| {
            if empty {
                0.0
            } else {
                ms(histogram.value_at_quantile(q))
            }
        };
        LatencySummary {
            count: histogram.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            p99_9_ms: at(0.999),
            max_ms: if empty { 0.0 } else { ms(histogram.max()) },
        }
    }
}

/// Percentiles of a [`Latency`], in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub max_ms: f64,
}

/// Errors by code: the server's codes (`rate_limited`, …) and the load
/// generator's own (`timeout`, `connection_lost`, `unexpected_reply`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct ErrorCounts(BTreeMap<String, u64>);

impl ErrorCounts {
    pub fn add(&mut self, code: &str, count: u64) {
        if count > 0 {
            *self.0.entry(code.to_string()).or_default() += count;
        }
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for (code, count) in &other.0 {
            self.add(code, *count);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(code, count)| (code.as_str(), *count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let mut latency = Latency::new();
        for micros in 1..=1000 {
            latency.record(micros);
        }
        let mut other = Latency::new();
        other.record(50_000);
        latency.merge(&other);
        let summary = latency.summary();
        assert_eq!(summary.count, 1001);
        assert!((summary.p50_ms - 0.5).abs() < 0.01, "{summary:?}");
        assert!((summary.max_ms - 50.0).abs() < 0.1, "{summary:?}");
        assert_eq!(Latency::new().summary().p99_ms, 0.0);
    }

    #[test]
    fn errors_add_up_by_code() {
        let mut errors = ErrorCounts::default();
        errors.add("timeout", 2);
        errors.add("ignored", 0);
        let mut more = ErrorCounts::default();
        more.add("timeout", 1);
        more.add("rate_limited", 4);
        errors.merge(&more);
        assert_eq!(
            errors.iter().collect::<Vec<_>>(),
            vec![("rate_limited", 4), ("timeout", 3)]
        );
        assert_eq!(errors.total(), 7);
    }
}
