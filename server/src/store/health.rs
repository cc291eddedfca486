//! The writer's health and what its commits cost, as the store reports
//! them: the writer thread keeps a [`WriterRecord`] in atomics, and anyone
//! (the metrics endpoint) reads it through a [`WriterHealth`] without
//! waiting on the writer.
//!
//! "Can this node commit?" is answered from the last commit the writer
//! attempted: healthy unless it failed. With no traffic that answer is old
//! news, and a node taken out of service for a failed commit would get no
//! traffic to prove it has recovered. So while the last commit stands
//! failed, asking ([`WriterHealth::check`]) queues a *probe*: a write
//! transaction that changes nothing yet writes like any commit (it adds
//! zero to the release count), at most one queued at a time, so asking
//! often costs nothing more. The writer is healthy again once one commits,
//! and while it stands failed every group writes a page as the probe does:
//! a group that changes nothing (a replayed key, refused sends) commits even
//! on a full disk, and must not call the writer healthy.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use super::WriteJob;
use crate::metrics::histogram::{DurationHistogram, HistogramSnapshot};

/// What the writer thread records after each group it runs.
#[derive(Debug, Default)]
pub(super) struct WriterRecord {
    committed: AtomicU64,
    failed: AtomicU64,
    messages: AtomicU64,
    /// Every group's time, from its first statement to its commit
    /// returning (or failing).
    durations: DurationHistogram,
    /// The last group's commit failed.
    failing: AtomicBool,
    /// Why, for `/healthz` (written only when a commit fails).
    last_error: Mutex<String>,
    /// A probe is queued and has not run yet.
    probe_queued: AtomicBool,
}

impl WriterRecord {
    /// A group that committed, storing `messages` new messages.
    pub(super) fn committed(&self, took: Duration, messages: u64) {
        self.durations.record(took);
        self.committed.fetch_add(1, Ordering::Relaxed);
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.failing.store(false, Ordering::Release);
    }

    /// A group that could not be started or committed: none of it stands.
    pub(super) fn failed(&self, took: Duration, error: &str) {
        self.durations.record(took);
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error.to_owned();
        self.failing.store(true, Ordering::Release);
    }

    /// The last group's commit failed, and none has committed since.
    pub(super) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// The queued probe has run (its group's outcome is recorded as any
    /// other's); the next check may queue another.
    pub(super) fn probed(&self) {
        self.probe_queued.store(false, Ordering::Release);
    }
}

/// The writer's health and figures, for the metrics endpoint. Holds no
/// [`super::Store`] handle: it never keeps the writer running on shutdown.
#[derive(Clone)]
pub struct WriterHealth {
    record: Arc<WriterRecord>,
    writes: mpsc::WeakSender<WriteJob>,
}

/// The writer's figures at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterFigures {
    /// Groups committed.
    pub committed: u64,
    /// Groups that failed to start or commit (their requests were answered
    /// `internal`).
    pub failed: u64,
    /// Messages stored (committed), replays of a key not counted.
    pub messages: u64,
    /// Every group's run and commit time, failed ones included.
    pub durations: HistogramSnapshot,
}

impl WriterHealth {
    pub(super) fn new(record: Arc<WriterRecord>, writes: mpsc::WeakSender<WriteJob>) -> Self {
        Self { record, writes }
    }

    /// `Ok` unless the writer's last commit failed; then why, and a probe
    /// is queued (if none is) to find out whether it can commit again.
    pub fn check(&self) -> Result<(), String> {
        if !self.record.failing.load(Ordering::Acquire) {
            return Ok(());
        }
        let queued = self.queue_probe();
        let error = self
            .record
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let next = if queued {
            "a test commit is queued: ask again"
        } else {
            "a test commit is under way"
        };
        Err(format!(
            "the storage writer's last commit failed ({error}); writes are answered \
             `internal` until one succeeds; {next}"
        ))
    }

    /// Queues a probe unless one is; whether this call queued it.
    fn queue_probe(&self) -> bool {
        if self.record.probe_queued.swap(true, Ordering::AcqRel) {
            return false;
        }
        // A full queue means the writer has work that will tell anyway;
        // a gone writer is the node's failure, reported beside this.
        let sent = self
            .writes
            .upgrade()
            .is_some_and(|writes| writes.try_send(WriteJob::Probe).is_ok());
        if !sent {
            self.record.probed();
        }
        sent
    }

    pub fn figures(&self) -> WriterFigures {
        let record = &self.record;
        WriterFigures {
            committed: record.committed.load(Ordering::Relaxed),
            failed: record.failed.load(Ordering::Relaxed),
            messages: record.messages.load(Ordering::Relaxed),
            durations: record.durations.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A health over a queue of its own; the queue stays open while the
    /// returned sender (the store's handle) lives.
    fn health() -> (
        WriterHealth,
        Arc<WriterRecord>,
        mpsc::Sender<WriteJob>,
        mpsc::Receiver<WriteJob>,
    ) {
        let record = Arc::new(WriterRecord::default());
        let (writes, jobs) = mpsc::channel(8);
        let health = WriterHealth::new(Arc::clone(&record), writes.downgrade());
        (health, record, writes, jobs)
    }

    #[test]
    fn healthy_until_a_commit_fails_and_again_once_one_succeeds() {
        let (health, record, _writes, _jobs) = health();
        assert_eq!(health.check(), Ok(()));
        record.committed(Duration::from_millis(1), 3);
        record.failed(Duration::from_secs(5), "database is locked");
        let reason = health.check().expect_err("the last commit failed");
        assert!(reason.contains("database is locked"), "{reason}");
        assert!(!reason.contains('\n'), "one line: {reason}");
        record.committed(Duration::from_millis(1), 0);
        assert_eq!(health.check(), Ok(()));
        let figures = health.figures();
        assert_eq!(
            (figures.committed, figures.failed, figures.messages),
            (2, 1, 3)
        );
        assert_eq!(figures.durations.count, 3);
    }

    /// However often it is asked, one probe at a time is queued.
    #[test]
    fn a_failing_writer_is_probed_once_at_a_time() {
        let (health, record, _writes, mut jobs) = health();
        record.failed(Duration::ZERO, "disk I/O error");
        for _ in 0..5 {
            assert!(health.check().is_err());
        }
        assert!(matches!(jobs.try_recv(), Ok(WriteJob::Probe)));
        assert!(jobs.try_recv().is_err(), "only one probe queued");
        record.probed();
        assert!(health.check().is_err());
        assert!(matches!(jobs.try_recv(), Ok(WriteJob::Probe)));
    }
}
