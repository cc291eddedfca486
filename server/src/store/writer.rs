//! The writer thread: group commit.
//!
//! It blocks for one request, then takes every request already queued (up to
//! [`MAX_GROUP`]) and runs them in one `BEGIN IMMEDIATE … COMMIT`. One fsync
//! then covers the whole group. Only after the commit succeeds are the
//! results handed on; if it fails, every request of the group is answered
//! `internal` and nothing of it was stored.
//!
//! A request that fails must not take the others down with it, yet wrapping
//! each in a savepoint costs a copy of every page it touches (about a tenth
//! of the writer's work). So a group first runs with no savepoints; in the
//! rare case that one of its requests fails, that attempt is rolled back and
//! the group runs again with a savepoint per request, so only the failing
//! one is undone. Nothing has been answered before the commit, so the first
//! attempt leaves no trace but the time it took.

use std::collections::VecDeque;
use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior};
use switchboard_protocol::{Message, Name, Role, Timestamp};
use tokio::sync::mpsc;

use super::commit_stats::CommitStats;
use super::queries::HotStatements;
use super::rules::{self, Clock};
use super::{Committed, RESUME_CAP, Registration, SendRequest, StoreError, WriteJob};
use super::{queries, schema};
use crate::error::RequestError;
use crate::identity::{Identity, Origin};
use crate::router::Router;
use crate::token;

/// The most requests in one transaction: large enough to amortise the
/// fsync, small enough that the first request of a group is not kept
/// waiting long for the last.
const MAX_GROUP: usize = 1024;

pub(super) struct Writer {
    conn: Connection,
    router: Router,
    clock: Clock,
    stats: CommitStats,
}

/// What one request of a group produced, before the commit decides its fate.
enum Outcome {
    Route(Committed),
    /// Events nobody asked for (conversations of removed agents released).
    Announce(Vec<Committed>),
    /// The answer to a `RegisterUser` job, whose reply channel stays with
    /// the job.
    Registered(Result<Registration, StoreError>),
}

impl Outcome {
    /// The same request, had its group failed to commit.
    fn into_failure(self) -> Outcome {
        match self {
            Outcome::Route(
                Committed::Sent { origin, .. }
                | Committed::Released {
                    origin: Some(origin),
                    ..
                },
            ) => Outcome::Route(Committed::Rejected {
                origin,
                error: RequestError::Internal,
            }),
            Outcome::Announce(_) => Outcome::Announce(Vec::new()),
            Outcome::Registered(Ok(Registration::Created { .. })) => {
                Outcome::Registered(Err(StoreError::NotCommitted))
            }
            other => other,
        }
    }
}

impl Writer {
    pub(super) fn new(conn: Connection, router: Router) -> rusqlite::Result<Self> {
        let last = queries::last_timestamp(&conn)?.unwrap_or(Timestamp::from_micros(0));
        Ok(Self {
            conn,
            router,
            clock: Clock::after(last),
            stats: CommitStats::new(Instant::now()),
        })
    }

    /// Runs until every [`super::Store`] handle is dropped and the queue is empty.
    ///
    /// A `subscribe` reads its backlog here, between two commits, so that it
    /// sees exactly what was committed before it and the router starts its
    /// live events right after. Reading is the costly part (up to a whole
    /// backlog), so subscribes wait in a queue of their own and only one is
    /// read between two groups: a burst of them cannot hold up the writes
    /// queued behind it for longer than one read. (All at once, 100
    /// resumes of 8 MiB held every send for 2.7 s.) Each subscriber's own
    /// earlier writes are committed before its read, and it sends nothing
    /// else while its subscribe is out. A backlog is read later than the
    /// `subscribe` was queued, so what was committed in between may be in
    /// it: a connection subscribing for the first time gets those messages
    /// there only; one already subscribed got them live, and the router
    /// leaves them out of its new backlog ([`Committed::SubscribeQueued`]).
    pub(super) fn run(mut self, mut jobs: mpsc::Receiver<WriteJob>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        let mut subscribes = VecDeque::new();
        loop {
            if subscribes.is_empty() {
                match jobs.blocking_recv() {
                    Some(job) => group.push(job),
                    None => break,
                }
            }
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            let mut writes = Vec::with_capacity(group.len());
            let mut queued = Vec::new();
            for job in group.drain(..) {
                match job {
                    WriteJob::Subscribe {
                        origin,
                        identity,
                        since,
                        limit,
                    } => {
                        queued.push(origin.conn);
                        subscribes.push_back((origin, identity, since, limit));
                    }
                    job => writes.push(job),
                }
            }
            // Before this turn's commit: its messages may reach the backlogs.
            self.subscribes_queued(queued);
            self.commit(writes);
            if let Some((origin, identity, since, limit)) = subscribes.pop_front() {
                let done = self.subscribe(origin, identity, since, limit);
                self.router.committed_blocking(vec![done]);
            }
            let now = Instant::now();
            if self.stats.due(now) {
                self.report(now);
            }
        }
        self.report(Instant::now());
        tracing::debug!("writer stopped: queue closed and empty");
    }

    /// Tells the router which connections' backlogs will be read after the
    /// commits to come (see [`Committed::SubscribeQueued`]).
    fn subscribes_queued(&mut self, conns: Vec<crate::identity::ConnId>) {
        if conns.is_empty() {
            return;
        }
        let after = match queries::last_message_id(&self.conn) {
            Ok(id) => id,
            Err(error) => {
                // Then nothing counts as delivered live: a re-subscriber may
                // get a message twice, never miss one.
                tracing::error!(%error, "reading the newest message id failed");
                u64::MAX
            }
        };
        let queued = conns
            .into_iter()
            .map(|conn| Committed::SubscribeQueued { conn, after })
            .collect();
        self.router.committed_blocking(queued);
    }

    fn report(&mut self, now: Instant) {
        if let Some(report) = self.stats.take(now) {
            report.log();
        }
    }

    fn commit(&mut self, jobs: Vec<WriteJob>) {
        if jobs.is_empty() {
            return;
        }
        let started = Instant::now();
        let outcomes = run_group(&mut self.conn, &mut self.clock, &jobs);
        self.stats.record(jobs.len(), started.elapsed());
        let mut events = Vec::with_capacity(outcomes.len());
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            match (job, outcome) {
                (WriteJob::RegisterUser { reply, .. }, Outcome::Registered(result)) => {
                    // The session may have gone; its answer has no one to go to.
                    let _ = reply.send(result);
                }
                (_, Outcome::Route(event)) => events.push(event),
                (_, Outcome::Announce(announced)) => events.extend(announced),
                (_, Outcome::Registered(_)) => {
                    tracing::error!("a registration outcome for another kind of request");
                }
            }
        }
        self.router.committed_blocking(events);
    }

    fn subscribe(
        &mut self,
        origin: Origin,
        identity: Identity,
        since: Option<u64>,
        limit: u32,
    ) -> Committed {
        match read_backlog(&self.conn, &identity, since, limit) {
            Ok((backlog, truncated, held)) => Committed::Subscribed {
                origin,
                identity,
                backlog,
                truncated,
                held,
            },
            Err(error) => {
                tracing::error!(%error, "reading a backlog failed");
                Committed::Rejected {
                    origin,
                    error: RequestError::Internal,
                }
            }
        }
    }
}

/// Runs a group of requests in one transaction and commits it; returns
/// each request's outcome, in order.
fn run_group(conn: &mut Connection, clock: &mut Clock, jobs: &[WriteJob]) -> Vec<Outcome> {
    commit_together(conn, clock, jobs).unwrap_or_else(|| commit_apart(conn, clock, jobs))
}

/// The fast path: the whole group in one transaction, no savepoints.
/// `None` when a request failed: the attempt is rolled back.
fn commit_together(
    conn: &mut Connection,
    clock: &mut Clock,
    jobs: &[WriteJob],
) -> Option<Vec<Outcome>> {
    let tx = match begin(conn) {
        Ok(tx) => tx,
        Err(error) => return Some(group_failed(jobs, &error)),
    };
    let outcomes = {
        let mut hot = match HotStatements::new(&tx) {
            Ok(hot) => hot,
            Err(error) => return Some(group_failed(jobs, &error)),
        };
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            match apply(&tx, &mut hot, clock, job) {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => {
                    tracing::warn!(%error, "a request failed; running its group again request by request");
                    return None; // dropping `tx` rolls back
                }
            }
        }
        outcomes
    };
    Some(match tx.commit() {
        Ok(()) => outcomes,
        Err(error) => {
            tracing::error!(%error, requests = jobs.len(), "commit failed; answering internal");
            outcomes.into_iter().map(Outcome::into_failure).collect()
        }
    })
}

/// The slow path: each request in its own savepoint, so a failing one
/// is undone alone and answered `internal`.
fn commit_apart(conn: &mut Connection, clock: &mut Clock, jobs: &[WriteJob]) -> Vec<Outcome> {
    let tx = match begin(conn) {
        Ok(tx) => tx,
        Err(error) => return group_failed(jobs, &error),
    };
    let mut poisoned = false;
    let outcomes: Vec<Outcome> = {
        let mut hot = match HotStatements::new(&tx) {
            Ok(hot) => hot,
            Err(error) => return group_failed(jobs, &error),
        };
        jobs.iter()
            .map(|job| apply_in_savepoint(&tx, &mut hot, clock, job, &mut poisoned))
            .collect()
    };
    let committed = if poisoned {
        // A request's writes could not be undone, and it was answered
        // `internal`: none of the group may be kept.
        drop(tx); // rolls back
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some("a failed request's savepoint could not be undone".into()),
        ))
    } else {
        tx.commit()
    };
    match committed {
        Ok(()) => outcomes,
        Err(error) => {
            tracing::error!(%error, requests = jobs.len(), "commit failed; answering internal");
            outcomes.into_iter().map(Outcome::into_failure).collect()
        }
    }
}

fn begin(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    same_schema(&tx)?;
    Ok(tx)
}

/// Refuses to write if another process upgraded the schema under this
/// server: it would keep writing the old layout into the new one.
fn same_schema(conn: &Connection) -> rusqlite::Result<()> {
    let found = schema::version(conn)?;
    if found == schema::CURRENT_VERSION {
        return Ok(());
    }
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_SCHEMA),
        Some(format!(
            "the database schema is now version {found}, not {}: a newer switchboard \
             upgraded it; stop this server",
            schema::CURRENT_VERSION
        )),
    ))
}

/// The answers to a group that could not be started.
fn group_failed(jobs: &[WriteJob], error: &rusqlite::Error) -> Vec<Outcome> {
    tracing::error!(%error, requests = jobs.len(), "cannot start a transaction");
    jobs.iter().map(not_done).collect()
}

impl WriteJob {
    /// What kind of request this is, for the log (never its content).
    fn kind(&self) -> &'static str {
        match self {
            WriteJob::RegisterUser { .. } => "register",
            WriteJob::Send(_) => "send",
            WriteJob::Release { .. } => "release",
            WriteJob::Subscribe { .. } => "subscribe",
            WriteJob::ReleaseRemovedAgents => "release removed agents",
        }
    }
}

/// The answer to a request whose writes were not made: `internal` (a
/// registration's own channel is told so; a release of removed agents'
/// conversations announces nothing and runs again on the next poll).
fn not_done(job: &WriteJob) -> Outcome {
    match job {
        WriteJob::RegisterUser { .. } => Outcome::Registered(Err(StoreError::NotCommitted)),
        WriteJob::Send(SendRequest { origin, .. })
        | WriteJob::Release { origin, .. }
        | WriteJob::Subscribe { origin, .. } => Outcome::Route(Committed::Rejected {
            origin: origin.clone(),
            error: RequestError::Internal,
        }),
        WriteJob::ReleaseRemovedAgents => Outcome::Announce(Vec::new()),
    }
}

/// Runs one request; an error means its writes may be half done.
fn apply(
    conn: &Connection,
    hot: &mut HotStatements<'_>,
    clock: &mut Clock,
    job: &WriteJob,
) -> rusqlite::Result<Outcome> {
    Ok(match job {
        WriteJob::RegisterUser { name, .. } => {
            let new_token = || {
                token::generate().map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            };
            Outcome::Registered(Ok(rules::register_user(hot, clock, name, new_token)?))
        }
        WriteJob::Send(request) => Outcome::Route(rules::store_message(hot, clock, request)?),
        WriteJob::Release {
            origin,
            agent,
            user,
        } => Outcome::Route(rules::release(hot, origin, agent, user)?),
        WriteJob::ReleaseRemovedAgents => {
            let released = queries::release_removed_agents(conn)?;
            if !released.is_empty() {
                tracing::info!(
                    conversations = released.len(),
                    "released the conversations of removed agents"
                );
            }
            Outcome::Announce(
                released
                    .into_iter()
                    .map(|(user, agent)| Committed::Released {
                        origin: None,
                        user,
                        agent,
                    })
                    .collect(),
            )
        }
        // Read between commits by `run`, never part of a group.
        WriteJob::Subscribe { origin, .. } => Outcome::Route(Committed::Rejected {
            origin: origin.clone(),
            error: RequestError::Internal,
        }),
    })
}

/// Runs one request inside its own savepoint, so a failure undoes only
/// that request's writes and answers it `internal`.
fn apply_in_savepoint(
    conn: &Connection,
    hot: &mut HotStatements<'_>,
    clock: &mut Clock,
    job: &WriteJob,
    poisoned: &mut bool,
) -> Outcome {
    let outcome = queries::savepoint(conn).and_then(|()| {
        let applied = apply(conn, hot, clock, job);
        keep_or_undo(conn, applied, poisoned)
    });
    outcome.unwrap_or_else(|error| {
        let request = job.kind();
        tracing::error!(%error, request, "a write failed and was undone; answering internal");
        not_done(job)
    })
}

/// Releases the request's savepoint if it succeeded, rolls back to it if
/// not. If either fails, the request's writes may still be in the
/// transaction: `poisoned` tells the group not to commit.
fn keep_or_undo<T>(
    conn: &Connection,
    outcome: rusqlite::Result<T>,
    poisoned: &mut bool,
) -> rusqlite::Result<T> {
    match outcome {
        Ok(value) => queries::release_savepoint(conn)
            .map(|()| value)
            .inspect_err(|_| *poisoned = true),
        Err(error) => {
            if let Err(undo) = queries::rollback_savepoint(conn) {
                tracing::error!(%undo, "rolling back a failed request failed");
                *poisoned = true;
            }
            Err(error)
        }
    }
}

type Backlog = (Vec<Message>, bool, Vec<(Name, Name)>);

fn read_backlog(
    conn: &Connection,
    identity: &Identity,
    since: Option<u64>,
    limit: u32,
) -> rusqlite::Result<Backlog> {
    match identity.role {
        Role::User => {
            let Some(user) = queries::find_user(conn, &identity.name)? else {
                return Ok((Vec::new(), false, Vec::new()));
            };
            let (backlog, truncated) = match since {
                Some(since) => queries::messages_since(conn, Some(user.id), since, RESUME_CAP)?,
                None => (queries::conversation(conn, user.id, None, limit)?, false),
            };
            let held = user
                .assigned
                .map(|(_, agent)| vec![(identity.name.clone(), agent)])
                .unwrap_or_default();
            Ok((backlog, truncated, held))
        }
        Role::Agent => {
            let (backlog, truncated) = match since {
                Some(since) => queries::messages_since(conn, None, since, RESUME_CAP)?,
                None => (queries::waiting_queue(conn, limit)?, false),
            };
            Ok((backlog, truncated, queries::assignments(conn)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{db, name};
    use switchboard_protocol::{Body, Priority};

    fn send(conn: crate::identity::ConnId, user: &str, body: &str) -> WriteJob {
        WriteJob::Send(SendRequest {
            origin: Origin {
                conn,
                request: None,
            },
            from: Identity {
                role: Role::User,
                name: name(user),
            },
            user: name(user),
            body: Body::parse(body, 100).expect("valid"),
            priority: Priority::Normal,
            key: None,
        })
    }

    /// What each outcome says, in order: the body stored, or the error.
    fn summary(outcomes: &[Outcome]) -> Vec<String> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Route(Committed::Sent { message, .. }) => message.body.as_str().into(),
                Outcome::Route(Committed::Rejected { error, .. }) => error.code().to_string(),
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

    /// The agent alice, as the subscribe tests sign her in.
    fn alice() -> Identity {
        Identity {
            role: Role::Agent,
            name: name("alice"),
        }
    }

    /// A connection of alice's registered with `router`; its outbox.
    async fn alice_connected(
        router: &Router,
        conn: crate::identity::ConnId,
    ) -> crate::outbox::OutboxReceiver {
        let (sender, receiver) = crate::outbox::outbox(64, usize::MAX);
        router
            .connect(conn, alice(), b"t".to_vec(), sender)
            .await
            .expect("router runs");
        receiver
    }

    fn subscribe(conn: crate::identity::ConnId) -> WriteJob {
        WriteJob::Subscribe {
            origin: Origin {
                conn,
                request: None,
            },
            identity: alice(),
            since: None,
            limit: 10,
        }
    }

    /// Queues `jobs`, then runs the writer on `conn` until the queue is done.
    async fn run_writer(conn: Connection, router: &Router, jobs: Vec<WriteJob>) {
        let (queue, receiver) = mpsc::channel(jobs.len().max(1));
        for job in jobs {
            queue.send(job).await.expect("queued");
        }
        drop(queue);
        let writer = Writer::new(conn, router.clone()).expect("writer");
        tokio::task::spawn_blocking(move || writer.run(receiver))
            .await
            .expect("writer ran");
    }

    /// Subscribes wait behind the writes queued with them: a send queued
    /// after two subscribes is committed before either backlog is read, so a
    /// burst of subscribes (each reading up to a whole backlog) cannot hold
    /// it up. Read first, as before, neither backlog would hold it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_subscribes_are_not_held_up_by_their_reads() {
        let conn = db();
        let start = Timestamp::from_micros(0);
        queries::insert_user(&conn, &name("ann"), b"h", start).expect("user");
        queries::upsert_agent(&conn, &name("alice"), b"t", start).expect("agent");
        let router = Router::spawn();
        let outboxes = [
            alice_connected(&router, 1).await,
            alice_connected(&router, 2).await,
        ];
        let jobs = vec![subscribe(1), subscribe(2), send(3, "ann", "queued behind")];
        run_writer(conn, &router, jobs).await;
        for mut outbox in outboxes {
            let backlog = outbox.recv().await.expect("a backlog");
            assert!(backlog.answers_request);
            let text = String::from_utf8_lossy(&backlog.to_bytes()).into_owned();
            assert!(text.contains("queued behind"), "{text}");
        }
    }

    /// A re-subscribe waits for its read like any other, and the writes
    /// committed meanwhile reach the (already subscribed) connection live:
    /// its new backlog leaves them out, so each message comes once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_resubscribe_gets_a_message_committed_while_it_waited_once() {
        let conn = db();
        let start = Timestamp::from_micros(0);
        let ann = queries::insert_user(&conn, &name("ann"), b"h", start).expect("user");
        queries::upsert_agent(&conn, &name("alice"), b"t", start).expect("agent");
        let earlier = queries::insert_message(
            &conn,
            start,
            ann,
            None,
            &Body::parse("earlier", 100).expect("valid"),
            Priority::Normal,
        )
        .expect("message");
        queries::add_waiting(&conn, earlier, ann, Priority::Normal).expect("waits");
        let router = Router::spawn();
        let mut outbox = alice_connected(&router, 1).await;
        // Subscribed once already, with an empty backlog.
        let first = Committed::Subscribed {
            origin: Origin {
                conn: 1,
                request: None,
            },
            identity: alice(),
            backlog: Vec::new(),
            truncated: false,
            held: Vec::new(),
        };
        let to_router = router.clone();
        tokio::task::spawn_blocking(move || to_router.committed_blocking(vec![first]))
            .await
            .expect("routed");
        assert!(outbox.recv().await.expect("first backlog").answers_request);

        run_writer(
            conn,
            &router,
            vec![subscribe(1), send(3, "ann", "while it waited")],
        )
        .await;
        let live = outbox.recv().await.expect("the live message");
        assert!(!live.answers_request);
        assert!(String::from_utf8_lossy(&live.to_bytes()).contains("while it waited"));
        let backlog = outbox.recv().await.expect("the new backlog");
        assert!(backlog.answers_request);
        let text = String::from_utf8_lossy(&backlog.to_bytes()).into_owned();
        assert!(text.contains("earlier"), "{text}");
        assert!(!text.contains("while it waited"), "sent twice: {text}");
        assert!(text.contains(r#""backlog":1"#), "{text}");
    }

    #[test]
    fn a_group_commits_every_request_in_order() {
        let mut conn = db();
        queries::insert_user(&conn, &name("ann"), b"h", Timestamp::from_micros(0)).expect("user");
        let jobs = [send(1, "ann", "one"), send(2, "ann", "two")];
        let outcomes = run_group(&mut conn, &mut clock(), &jobs);
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
        let outcomes = run_group(&mut conn, &mut clock(), &jobs);
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
        };
        let outcomes = run_group(&mut conn, &mut clock(), &[WriteJob::Send(answer)]);
        assert_eq!(summary(&outcomes), ["unauthorized"]);
        assert!(stored_bodies(&conn).is_empty());
    }

    #[test]
    fn writes_stop_once_another_process_changed_the_schema() {
        let mut conn = Connection::open_in_memory().expect("opens");
        schema::migrate(&mut conn).expect("migrates");
        assert!(same_schema(&conn).is_ok());
        conn.pragma_update(None, "user_version", schema::CURRENT_VERSION + 1)
            .expect("sets");
        let error = same_schema(&conn).expect_err("a newer schema");
        assert!(error.to_string().contains("stop this server"), "{error}");
    }
}
