//! The writer thread: group commit.
//!
//! It blocks for one request, then takes every request already queued (up to
//! [`MAX_GROUP`]) and runs them in one `BEGIN IMMEDIATE … COMMIT`. One fsync
//! then covers the whole group. Only after the commit succeeds are the
//! results handed on, to a [`CommitSink`] it knows only by that trait; if the
//! commit fails, every request of the group is answered `internal` and
//! nothing of it was stored.
//!
//! A request that fails must not take the others down with it, yet wrapping
//! each in a savepoint costs a copy of every page it touches (about a tenth
//! of the writer's work). So a group first runs with no savepoints; in the
//! rare case that one of its requests fails, that attempt is rolled back and
//! the group runs again with a savepoint per request, so only the failing
//! one is undone. Nothing has been answered before the commit, so the first
//! attempt leaves no trace but the time it took.
//!
//! After each group it records what the metrics endpoint reads (`health.rs`):
//! its time, whether it committed, the messages it stored. A `Probe`
//! request, queued by the health check while the last commit stands failed,
//! applies nothing and makes its group write the release count unchanged,
//! so that its commit proves the database takes writes again.
//!
//! The loop is generic over a [`Backend`] (SQLite today, see
//! `store/sqlite/backend.rs`): static dispatch, so the seam costs the hot
//! path nothing; the rules run over the transaction's `Tables`.
//!
//! Single-writer promises kept here (docs/architecture.md): ids and time
//! stamps rise in commit order (SQLite's rowid and [`Clock`], on this one
//! thread), an assignment is decided by one thread at a time, and each
//! commit's [`Seq`](crate::event::Seq) is above every earlier one.
//!
//! On a database other nodes write too (PostgreSQL, cluster mode), each
//! transaction says what the shared sequencer row held when it took it
//! ([`Transaction::shared_clock`]): the writer continues positions from
//! there and stamps from the database's clock, and appends the group's
//! batch to the shared feed before it commits (`append_feed`), encoded once;
//! the same bytes go to the bus in the [`Commit`].

use std::sync::Arc;
use std::time::Instant;

use switchboard_protocol::Timestamp;
use tokio::sync::mpsc;

mod request;

use request::{WriteError, apply, apply_in_savepoint, backend_failed, not_done};

use super::backend::{Backend, Transaction};
use super::commit_stats::CommitStats;
use super::health::WriterRecord;
use super::outcome::Outcome;
use super::position::Position;
use super::rules::{Clock, Written};
use super::{StoreError, WriteJob};
use crate::event::{Batch, Commit, CommitSink, Event, FeedEntry};
use crate::feed_wire;

/// The most requests in one transaction: large enough to amortise the
/// fsync, small enough that the first request of a group is not kept
/// waiting long for the last.
const MAX_GROUP: usize = 1024;

pub(super) struct Writer<B> {
    backend: B,
    sink: Box<dyn CommitSink>,
    clock: Clock,
    position: Position,
    stats: CommitStats,
    /// Health and figures for the metrics endpoint (`health.rs`).
    record: Arc<WriterRecord>,
}

/// What one group came to: each request's outcome, in order, and why its
/// transaction failed to start or commit, if it did (then none of it stands).
struct Group {
    outcomes: Vec<Outcome>,
    failed: Option<String>,
    /// The batch as appended to a shared database's feed, if it was.
    feed: Option<FeedEntry>,
}

impl<B: Backend> Writer<B> {
    pub(super) fn new(mut backend: B, sink: Box<dyn CommitSink>) -> Result<Self, B::Error> {
        let last = backend
            .last_timestamp()?
            .unwrap_or(Timestamp::from_micros(0));
        Ok(Self {
            position: Position::read(&mut backend)?,
            backend,
            sink,
            clock: Clock::after(last),
            stats: CommitStats::new(Instant::now()),
            record: Arc::default(),
        })
    }

    /// Where this writer records its health and figures.
    pub(super) fn record(&self) -> Arc<WriterRecord> {
        Arc::clone(&self.record)
    }

    /// Runs until every [`super::Store`] handle is dropped and the queue is empty.
    pub(super) fn run(mut self, mut jobs: mpsc::Receiver<WriteJob>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while let Some(job) = jobs.blocking_recv() {
            group.push(job);
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            // Drained, not taken: the group's allocation serves every commit.
            self.commit(&mut group);
            let now = Instant::now();
            if self.stats.due(now) {
                self.report(now);
            }
        }
        self.report(Instant::now());
        tracing::debug!("writer stopped: queue closed and empty");
    }

    fn report(&mut self, now: Instant) {
        if let Some(report) = self.stats.take(now) {
            report.log();
        }
    }

    fn commit(&mut self, jobs: &mut Vec<WriteJob>) {
        let started = Instant::now();
        let probed = jobs.iter().any(|job| matches!(job, WriteJob::Probe));
        // While the last commit stands failed, every group proves it can
        // write: one that wrote nothing (a replayed key, refused sends)
        // commits even on a full disk, and would call the writer healthy.
        let must_write = probed || self.record.is_failing();
        let Group {
            outcomes,
            failed,
            feed,
        } = run_group(
            &mut self.backend,
            &mut self.clock,
            &mut self.position,
            jobs,
            must_write,
        );
        let took = started.elapsed();
        self.stats.record(jobs.len(), took);
        let mut events = Vec::with_capacity(outcomes.len());
        let mut answers = Vec::new();
        let committed = failed.is_none();
        for (job, outcome) in jobs.drain(..).zip(outcomes) {
            match (job, outcome) {
                (WriteJob::RegisterUser { reply, .. }, Outcome::Registered(result)) => {
                    // The session may have gone; its answer has no one to go to.
                    let _ = reply.send(result);
                }
                (
                    WriteJob::Member {
                        reply: Some(reply), ..
                    },
                    Outcome::Announce(announced),
                ) => {
                    events.extend(announced);
                    let _ = reply.send(if committed {
                        Ok(())
                    } else {
                        Err(StoreError::NotCommitted)
                    });
                }
                (_, Outcome::Written(Written::Event(event))) => events.push(event),
                (_, Outcome::Written(Written::Answer(answer))) => {
                    answers.push((events.len(), answer));
                }
                (_, Outcome::Announce(announced)) => events.extend(announced),
                (_, Outcome::Registered(_)) => {
                    tracing::error!("a registration outcome for another kind of request");
                }
            }
        }
        match failed {
            None => {
                let stored = events
                    .iter()
                    .filter(|event| matches!(event, Event::Sent { .. }))
                    .count();
                self.record.committed(took, stored as u64);
            }
            Some(error) => self.record.failed(took, &error),
        }
        if probed {
            self.record.probed();
        }
        let batch = (!events.is_empty()).then(|| Batch {
            seq: self.position.advance(&events),
            events,
        });
        let commit = Commit {
            batch,
            answers,
            feed,
        };
        if !commit.is_empty() {
            self.sink.committed(commit);
        }
    }
}

/// Runs a group of requests in one transaction and commits it; returns
/// each request's outcome, in order, and whether the commit failed.
/// `must_write`: the commit writes a page even if the group changes
/// nothing (`count_releases`).
fn run_group<B: Backend>(
    backend: &mut B,
    clock: &mut Clock,
    position: &mut Position,
    jobs: &[WriteJob],
    must_write: bool,
) -> Group {
    commit_together(backend, clock, position, jobs, must_write)
        .unwrap_or_else(|| commit_apart(backend, clock, position, jobs, must_write))
}

/// The fast path: the whole group in one transaction, no savepoints.
/// `None` when a request failed: the attempt is rolled back.
fn commit_together<B: Backend>(
    backend: &mut B,
    clock: &mut Clock,
    position: &mut Position,
    jobs: &[WriteJob],
    must_write: bool,
) -> Option<Group> {
    let tx = match backend.begin().map_err(backend_failed) {
        Ok(tx) => tx,
        Err(error) => return Some(group_failed(jobs, &error)),
    };
    follow_shared_clock(&tx, clock, position);
    let outcomes = {
        let mut hot = match tx.tables() {
            Ok(hot) => hot,
            Err(error) => return Some(group_failed(jobs, &backend_failed(error))),
        };
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            match apply(&mut hot, clock, job) {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => {
                    tracing::warn!(%error, "a request failed; running its group again request by request");
                    return None; // dropping `tx` rolls back
                }
            }
        }
        outcomes
    };
    // A row the database refuses here is some request's: find which on
    // the slow path.
    if let Err(error) = tx.write_held() {
        tracing::warn!(%error, "a request's rows were refused; running its group again request by request");
        return None;
    }
    let committed = finish(tx, *position, &outcomes, must_write);
    Some(settle(committed, outcomes))
}

/// The slow path: each request in its own savepoint, so a failing one
/// is undone alone and answered `internal`.
fn commit_apart<B: Backend>(
    backend: &mut B,
    clock: &mut Clock,
    position: &mut Position,
    jobs: &[WriteJob],
    must_write: bool,
) -> Group {
    let tx = match backend.begin().map_err(backend_failed) {
        Ok(tx) => tx,
        Err(error) => return group_failed(jobs, &error),
    };
    follow_shared_clock(&tx, clock, position);
    let mut poisoned = false;
    let outcomes: Vec<Outcome> = {
        let mut hot = match tx.tables() {
            Ok(hot) => hot,
            Err(error) => return group_failed(jobs, &backend_failed(error)),
        };
        jobs.iter()
            .map(|job| apply_in_savepoint(&tx, &mut hot, clock, job, &mut poisoned))
            .collect()
    };
    let committed = if poisoned {
        // A request's writes could not be undone, and it was answered
        // `internal`: none of the group may be kept.
        drop(tx); // rolls back
        Err(WriteError::Poisoned)
    } else {
        finish(tx, *position, &outcomes, must_write)
    };
    settle(committed, outcomes)
}

/// On a database other nodes write too, positions and time stamps
/// continue from its sequencer row, which this transaction now holds.
fn follow_shared_clock<T: Transaction>(tx: &T, clock: &mut Clock, position: &mut Position) {
    if let Some(shared) = tx.shared_clock() {
        *position = Position::at(shared.last_message_id, shared.releases);
        clock.pin(shared.now, shared.last_ts);
    }
}

/// The end of a group's transaction: its releases counted, its batch
/// appended to a shared database's feed, then the commit.
fn finish<T: Transaction>(
    tx: T,
    before: Position,
    outcomes: &[Outcome],
    must_write: bool,
) -> Result<Option<FeedEntry>, WriteError> {
    count_releases(&tx, outcomes, must_write)?;
    let feed = append_feed(&tx, before, outcomes)?;
    tx.commit().map_err(backend_failed)?;
    Ok(feed)
}

/// Appends the group's batch, if it has events, to a shared database's
/// feed (cluster mode), linked to the position before it: encoded once,
/// here, and the same bytes go on the bus after the commit.
fn append_feed<T: Transaction>(
    tx: &T,
    before: Position,
    outcomes: &[Outcome],
) -> Result<Option<FeedEntry>, WriteError> {
    let mut events = outcomes.iter().flat_map(Outcome::events).peekable();
    if tx.shared_clock().is_none() || events.peek().is_none() {
        return Ok(None);
    }
    let after = before.seq();
    let mut next = before;
    let seq = next.advance(outcomes.iter().flat_map(Outcome::events));
    let encoded = feed_wire::encode_events(after, seq, events);
    tx.append_feed(after, seq, &encoded)
        .map_err(backend_failed)?;
    Ok(Some(FeedEntry {
        after,
        encoded: encoded.into(),
    }))
}

/// Counts the group's releases in its own transaction (schema 7), so the
/// position a reader computes moves with the commit that makes them. With
/// `must_write` (a probe, or any group while the writer stands failed:
/// `health.rs`) it writes the count even when it adds nothing: a commit
/// that writes a page is what recovery must prove.
fn count_releases<T: Transaction>(
    tx: &T,
    outcomes: &[Outcome],
    must_write: bool,
) -> Result<(), WriteError> {
    let released: u64 = outcomes.iter().map(Outcome::releases).sum();
    if released > 0 || must_write {
        tx.add_releases(released).map_err(backend_failed)?;
    }
    Ok(())
}

/// The outcomes of a group whose commit succeeded, or their failures.
fn settle(committed: Result<Option<FeedEntry>, WriteError>, outcomes: Vec<Outcome>) -> Group {
    match committed {
        Ok(feed) => Group {
            outcomes,
            failed: None,
            feed,
        },
        Err(error) => {
            tracing::error!(%error, requests = outcomes.len(), "commit failed; answering internal");
            Group {
                outcomes: outcomes.into_iter().map(Outcome::into_failure).collect(),
                failed: Some(error.to_string()),
                feed: None,
            }
        }
    }
}

/// The answers to a group that could not be started.
fn group_failed(jobs: &[WriteJob], error: &WriteError) -> Group {
    tracing::error!(%error, requests = jobs.len(), "cannot start a transaction");
    Group {
        outcomes: jobs.iter().map(not_done).collect(),
        failed: Some(error.to_string()),
        feed: None,
    }
}

#[cfg(test)]
mod postgres_tests;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Answer, Refusal};
    use crate::identity::{Credential, Identity};
    use crate::store::SendRequest;
    use crate::store::sqlite::queries;
    use crate::store::test_support::{db, name};
    use rusqlite::Connection;
    use switchboard_protocol::{Body, Priority, Role};

    fn send(conn: crate::event::ConnId, user: &str, body: &str) -> WriteJob {
        WriteJob::Send(SendRequest {
            origin: crate::event::Origin {
                node: crate::event::NodeId::LOCAL,
                conn,
                request: None,
            },
            from: Identity {
                role: Role::User,
                name: name(user),
                credential: Credential::new(b"h"),
            },
            user: name(user),
            body: Body::parse(body, 100).expect("valid"),
            priority: Priority::Normal,
            key: None,
            note: false,
        })
    }

    /// What each outcome says, in order: the body stored, or the error.
    fn summary(outcomes: &[Outcome]) -> Vec<String> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Written(Written::Event(Event::Sent { message, .. })) => {
                    message.body.as_str().into()
                }
                Outcome::Written(Written::Answer(Answer::Refused { refusal, .. })) => {
                    crate::error::RequestError::from(refusal.clone())
                        .code()
                        .to_string()
                }
                _ => "other".into(),
            })
            .collect()
    }

    fn stored_bodies(conn: &Connection) -> Vec<String> {
        let mut statement = conn
            .prepare("SELECT body FROM messages ORDER BY id")
            .expect("prepares");
        let rows = statement.query_map([], |row| row.get(0)).expect("reads");
        rows.collect::<rusqlite::Result<_>>().expect("reads")
    }

    fn clock() -> Clock {
        Clock::after(Timestamp::from_micros(0))
    }

    /// Each request's outcome, `jobs` run as one group on a fresh writer's
    /// clock and position.
    fn group_of(conn: &mut Connection, jobs: &[WriteJob]) -> Vec<Outcome> {
        run_group(conn, &mut clock(), &mut Position::at(0, 0), jobs, false).outcomes
    }

    /// A sink that keeps every commit, for the tests to read.
    #[derive(Clone, Default)]
    struct Kept(std::sync::Arc<std::sync::Mutex<Vec<Commit>>>);

    impl CommitSink for Kept {
        fn committed(&self, commit: Commit) {
            self.0.lock().expect("not poisoned").push(commit);
        }
    }

    impl Kept {
        fn take(&self) -> Vec<Commit> {
            std::mem::take(&mut *self.0.lock().expect("not poisoned"))
        }
    }

    /// The writer hands each commit to its sink: events at a position above
    /// the last, and each answer after the events of the requests before it,
    /// so replies keep request order. (Replaces the tests of subscribes read
    /// between commits: backlogs are now read on readers, see
    /// `reader::tests` and `router::tests`.)
    #[test]
    fn a_commit_reaches_the_sink_in_request_order_at_a_rising_position() {
        let mut conn = db();
        queries::insert_user(&conn, &name("ann"), b"h", Timestamp::from_micros(0)).expect("user");
        let sink = Kept::default();
        let mut writer = Writer::new(conn, Box::new(sink.clone())).expect("writer");
        writer.commit(&mut vec![
            send(1, "ann", "one"),
            send(2, "nobody", "unknown"),
            send(3, "ann", "two"),
        ]);
        writer.commit(&mut vec![send(4, "ann", "three")]);
        let commits = sink.take();
        assert_eq!(commits.len(), 2);
        let first = commits[0].batch.as_ref().expect("events");
        let bodies = |batch: &Batch| -> Vec<String> {
            batch
                .events
                .iter()
                .map(|event| match event {
                    Event::Sent { message, .. } => message.body.as_str().to_owned(),
                    _ => "other".into(),
                })
                .collect()
        };
        assert_eq!(bodies(first), ["one", "two"]);
        assert!(matches!(
            commits[0].answers.as_slice(),
            [(1, Answer::Refused { origin, refusal: Refusal::UnknownUser(_) })] if origin.conn == 2
        ));
        let second = commits[1].batch.as_ref().expect("events");
        assert_eq!(bodies(second), ["three"]);
        assert!(second.seq > first.seq);
        conn = writer.backend;
        assert_eq!(queries::position(&conn).expect("reads"), second.seq);
    }

    /// While the writer stands failed, a group that changes nothing (every
    /// send refused) still writes, so that its commit proves the database
    /// takes writes before the writer is called healthy again; a healthy
    /// writer's such group writes nothing.
    #[test]
    fn a_failed_writer_is_healthy_again_only_after_a_commit_that_wrote() {
        let conn = db();
        let mut writer = Writer::new(conn, Box::new(Kept::default())).expect("writer");
        let refused_only = || vec![send(1, "nobody", "refused")];
        let before = writer.backend.total_changes();
        writer.commit(&mut refused_only());
        assert_eq!(
            writer.backend.total_changes(),
            before,
            "healthy: nothing written"
        );
        writer
            .record()
            .failed(std::time::Duration::ZERO, "disk full");
        assert!(writer.record().is_failing());
        writer.commit(&mut refused_only());
        assert!(
            writer.backend.total_changes() > before,
            "failing: the group wrote"
        );
        assert!(!writer.record().is_failing());
    }

    /// The figures the metrics endpoint reads: groups and messages stored
    /// (a refused send is no message); a probe commits, stores nothing,
    /// tells no one, and moves no position.
    #[test]
    fn the_writer_records_its_groups_messages_and_probes() {
        let conn = db();
        queries::insert_user(&conn, &name("ann"), b"h", Timestamp::from_micros(0)).expect("user");
        let sink = Kept::default();
        let mut writer = Writer::new(conn, Box::new(sink.clone())).expect("writer");
        let (writes, _jobs) = tokio::sync::mpsc::channel(1);
        let health = crate::store::health::WriterHealth::new(writer.record(), writes.downgrade());
        writer.commit(&mut vec![
            send(1, "ann", "one"),
            send(2, "nobody", "refused"),
        ]);
        let before = queries::position(&writer.backend).expect("reads");
        writer.commit(&mut vec![WriteJob::Probe]);
        assert_eq!(sink.take().len(), 1, "the probe told no one");
        assert_eq!(queries::position(&writer.backend).expect("reads"), before);
        let figures = health.figures();
        assert_eq!(
            (figures.committed, figures.failed, figures.messages),
            (2, 0, 1)
        );
        assert_eq!(figures.durations.count, 2);
        assert_eq!(health.check(), Ok(()));
    }

    #[test]
    fn a_group_commits_every_request_in_order() {
        let mut conn = db();
        queries::insert_user(&conn, &name("ann"), b"h", Timestamp::from_micros(0)).expect("user");
        let jobs = [send(1, "ann", "one"), send(2, "ann", "two")];
        let outcomes = group_of(&mut conn, &jobs);
        assert_eq!(summary(&outcomes), ["one", "two"]);
        assert_eq!(stored_bodies(&conn), ["one", "two"]);
    }

    /// The fast path has no savepoints: a request failing halfway must send
    /// the group down the slow path, where only that request is undone.
    #[test]
    fn a_request_that_fails_halfway_is_undone_alone() {
        let mut conn = db();
        queries::insert_user(&conn, &name("ann"), b"h", Timestamp::from_micros(0)).expect("user");
        // Fails after the message row is written, while queueing it.
        conn.execute_batch(
            "CREATE TEMP TRIGGER fail_waiting BEFORE INSERT ON waiting
             WHEN (SELECT body FROM messages WHERE id = NEW.message_id) = 'boom'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .expect("trigger");
        let jobs = [
            send(1, "ann", "before"),
            send(2, "ann", "boom"),
            send(3, "ann", "after"),
            send(4, "nobody", "unknown"),
        ];
        let outcomes = group_of(&mut conn, &jobs);
        assert_eq!(
            summary(&outcomes),
            ["before", "internal", "after", "unknown_user"]
        );
        assert_eq!(stored_bodies(&conn), ["before", "after"]);
        let waiting: i64 = conn
            .query_row("SELECT count(*) FROM waiting", [], |row| row.get(0))
            .expect("counts");
        assert_eq!(waiting, 2, "the failed message left nothing behind");
    }

    /// An agent removed after it signed in, before the credential poll
    /// closes its connection: its answer is refused as that poll will say.
    #[test]
    fn a_removed_agents_answer_is_unauthorized() {
        let mut conn = db();
        queries::insert_user(&conn, &name("ann"), b"h", Timestamp::from_micros(0)).expect("user");
        queries::upsert_agent(&conn, &name("alice"), b"t", Timestamp::from_micros(0))
            .expect("agent");
        assert!(queries::remove_agent(&conn, &name("alice")).expect("removes"));
        let WriteJob::Send(mut answer) = send(1, "ann", "hi ann") else {
            unreachable!("a send");
        };
        answer.from = Identity {
            role: Role::Agent,
            name: name("alice"),
            credential: Credential::new(b"t"),
        };
        let outcomes = group_of(&mut conn, &[WriteJob::Send(answer)]);
        assert_eq!(summary(&outcomes), ["unauthorized"]);
        assert!(stored_bodies(&conn).is_empty());
    }
}
