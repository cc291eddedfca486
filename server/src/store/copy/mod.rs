//! `switchboard copy --db FILE --postgres URL`: a help desk moved from its
//! SQLite file into an empty PostgreSQL database (issue 16), the path for a
//! team that outgrows one machine.
//!
//! The steps, each refusing with what to do next ([`CopyError`]):
//! 1. the SQLite file is opened under the one-server lock
//!    (`sqlite/server_lock.rs`), held to the end: a file a server is
//!    serving is refused, and no server starts on it during the copy. A
//!    schema newer than this build is refused; an older one is upgraded in
//!    place first, exactly as `serve` would on its next start (the lock
//!    shows no server of the old build is writing it). Keep a backup to go
//!    back to the old build, as before any upgrade.
//! 2. the PostgreSQL database is given switchboard's schema (as `serve`
//!    would) and its one-server lock; a database a server uses, or holding
//!    any user, agent or message, is refused.
//! 3. one SQLite snapshot is read table by table, in id order, in batches
//!    ([`batch`]), each batch written in one round trip inside **one
//!    PostgreSQL transaction** (`postgres/import.rs`) that holds the
//!    sequencer row. A failure anywhere rolls it back: the database is
//!    left as empty as it was (its schema may have been created), and the
//!    copy can simply run again.
//! 4. before the commit, the sequencer row takes SQLite's newest id, its
//!    release count and its newest time stamp, and the users' and agents'
//!    id sequences move past the copied ids: new messages get ids and time
//!    stamps strictly above every copied one, and positions (newest id +
//!    releases, the same sum on both backends) continue from SQLite's.
//!
//! **Copied**, value for value: agents (with their token hashes, `NULL`
//! once removed), users (token hashes, who holds each conversation),
//! every message with its id, `ts`, author and priority, the waiting queue
//! with each entry's urgency, idempotency keys, releases left due, and the
//! release count (into the sequencer row). **Not copied**, because
//! PostgreSQL's layout derives them or has no use for them: `prev_id`,
//! `conversations` and `conversation_marks` (SQLite reads a conversation
//! along a chain; PostgreSQL through its index by user and id), SQLite's
//! indexes, and its `application_id` and `user_version` (PostgreSQL has
//! `switchboard_schema`).
//!
//! The SQL of each side stays with its backend (`sqlite/export.rs`,
//! `postgres/import.rs`); here are the order, the counts and the progress.

pub(in crate::store) mod batch;
pub(in crate::store) mod error;
pub(in crate::store) mod progress;
pub(in crate::store) mod records;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Instant;

use super::PostgresUrl;
use super::postgres::import::{Import, Target};
use super::sqlite::export::{Export, Snapshot, Source};
use batch::BatchLimits;
pub use error::CopyError;
use progress::Pace;
pub use progress::{CopyProgress, CopySummary, Counts};
pub use records::Kind;
use records::{AgentRecord, KeyRecord, MessageRecord, ReleaseDueRecord, UserRecord, WaitingRecord};

/// Copies the help desk in the SQLite file `db` into the empty PostgreSQL
/// database `url`, telling `report` how far it is; what was copied, once
/// committed.
pub fn copy_to_postgres(
    db: &Path,
    url: &PostgresUrl,
    report: &mut dyn FnMut(CopyProgress),
) -> Result<CopySummary, CopyError> {
    copy_in_batches(db, url, BatchLimits::default(), report)
}

/// [`copy_to_postgres`] with the batch size given (tests cut small ones).
fn copy_in_batches(
    db: &Path,
    url: &PostgresUrl,
    limits: BatchLimits,
    report: &mut dyn FnMut(CopyProgress),
) -> Result<CopySummary, CopyError> {
    let started = Instant::now();
    let mut source = Source::open(db)?;
    if let Some((from, to)) = source.upgraded() {
        report(CopyProgress::Upgraded { from, to });
    }
    let mut target = Target::open(url)?;
    let snapshot = source.snapshot()?;
    let counts = snapshot.counts()?;
    let sequencer = snapshot.sequencer()?;
    report(CopyProgress::Found(counts));
    target.begin()?;
    if let Err(error) = copy_rows(&snapshot, &mut target, counts, limits, report) {
        target.rollback();
        return Err(error);
    }
    report(CopyProgress::Committing);
    target.finish(sequencer)?;
    if let Err(error) = target.analyze() {
        // The data is committed; only the planner's statistics wait for
        // autovacuum.
        tracing::warn!(%error, "could not ANALYZE the copied tables; autovacuum will");
    }
    Ok(CopySummary {
        from: db.display().to_string(),
        to: target.url(),
        counts,
        next_message_id: sequencer.last_message_id as u64 + 1,
        elapsed: started.elapsed(),
    })
}

/// Every kind, in [`Kind::ALL`]'s order (foreign keys first).
fn copy_rows(
    snapshot: &Snapshot<'_>,
    target: &mut Target,
    counts: Counts,
    limits: BatchLimits,
    report: &mut dyn FnMut(CopyProgress),
) -> Result<(), CopyError> {
    copy_kind::<AgentRecord>(snapshot, target, counts, limits, report)?;
    copy_kind::<UserRecord>(snapshot, target, counts, limits, report)?;
    copy_kind::<MessageRecord>(snapshot, target, counts, limits, report)?;
    copy_kind::<WaitingRecord>(snapshot, target, counts, limits, report)?;
    copy_kind::<KeyRecord>(snapshot, target, counts, limits, report)?;
    copy_kind::<ReleaseDueRecord>(snapshot, target, counts, limits, report)
}

/// One kind's rows, batch by batch; every row read must be written.
fn copy_kind<R: Export + Import>(
    snapshot: &Snapshot<'_>,
    target: &mut Target,
    counts: Counts,
    limits: BatchLimits,
    report: &mut dyn FnMut(CopyProgress),
) -> Result<(), CopyError> {
    let kind = R::KIND;
    let of = counts.get(kind);
    let mut pace = Pace::default();
    let mut written = 0;
    let read = snapshot.stream::<R>(limits, |batch| {
        written += target.insert(batch)?;
        if pace.due(Instant::now(), written >= of) {
            report(CopyProgress::Copying {
                kind,
                done: written,
                of,
            });
        }
        Ok(())
    })?;
    if read == 0 {
        report(CopyProgress::Copying { kind, done: 0, of });
    }
    if read != written || read != of {
        return Err(CopyError::Mismatch {
            kind,
            read,
            written,
        });
    }
    Ok(())
}
