//! The writer thread: group commit.
//!
//! It blocks for one request, then takes every request already queued (up to
//! [`MAX_GROUP`]) and runs them in one `BEGIN IMMEDIATE … COMMIT`, each inside
//! its own savepoint so one failure rolls back only its own request. One
//! fsync then covers the whole group. Only after the commit succeeds are the
//! results handed on; if it fails, every request of the group is answered
//! `internal` and nothing of it was stored.

use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior};
use switchboard_protocol::{Body, Message, Name, Priority, Role, Timestamp};
use tokio::sync::{mpsc, oneshot};

use super::commit_stats::CommitStats;
use super::{Committed, MAX_RESUME_MESSAGES, Registration, SendRequest, StoreError, WriteJob};
use super::{queries, schema};
use crate::assignment::{self, Decision};
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
enum Done {
    Route(Committed),
    /// Events nobody asked for (conversations of removed agents released).
    Announce(Vec<Committed>),
    Registered {
        reply: oneshot::Sender<Result<Registration, StoreError>>,
        result: Result<Registration, StoreError>,
    },
}

impl Done {
    /// The same request, had its group failed to commit.
    fn into_failure(self) -> Done {
        match self {
            Done::Route(
                Committed::Sent { origin, .. }
                | Committed::Released {
                    origin: Some(origin),
                    ..
                },
            ) => Done::Route(Committed::Rejected {
                origin,
                error: RequestError::Internal,
            }),
            Done::Announce(_) => Done::Announce(Vec::new()),
            Done::Registered {
                reply,
                result: Ok(Registration::Created { .. }),
            } => Done::Registered {
                reply,
                result: Err(StoreError::Stopped),
            },
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
            clock: Clock { last },
            stats: CommitStats::new(Instant::now()),
        })
    }

    /// Runs until every [`super::Store`] handle is dropped and the queue is empty.
    pub(super) fn run(mut self, mut jobs: mpsc::Receiver<WriteJob>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while let Some(first) = jobs.blocking_recv() {
            group.push(first);
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            let mut writes = Vec::with_capacity(group.len());
            for job in group.drain(..) {
                match job {
                    // A backlog must see exactly what was committed before
                    // it: commit what came first, then read.
                    WriteJob::Subscribe {
                        origin,
                        identity,
                        since,
                        limit,
                    } => {
                        self.commit(std::mem::take(&mut writes));
                        let done = self.subscribe(origin, identity, since, limit);
                        self.router.committed_blocking(vec![done]);
                    }
                    job => writes.push(job),
                }
            }
            self.commit(writes);
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

    fn commit(&mut self, jobs: Vec<WriteJob>) {
        if jobs.is_empty() {
            return;
        }
        let started = Instant::now();
        let requests = jobs.len();
        let mut done = Vec::with_capacity(jobs.len());
        let begun = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| same_schema(&tx).map(|()| tx));
        let committed = match begun {
            Ok(tx) => {
                let mut poisoned = false;
                for job in jobs {
                    done.push(apply_in_savepoint(&tx, &mut self.clock, job, &mut poisoned));
                }
                if poisoned {
                    // A request's writes could not be undone, and it was
                    // answered `internal`: none of the group may be kept.
                    drop(tx); // rolls back
                    Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                        Some("a failed request's savepoint could not be undone".into()),
                    ))
                } else {
                    tx.commit()
                }
            }
            Err(error) => {
                done.extend(jobs.into_iter().map(|job| failed(job, &error)));
                Err(error)
            }
        };
        self.stats.record(requests, started.elapsed());
        if let Err(error) = committed {
            tracing::error!(%error, requests = done.len(), "commit failed; answering internal");
            done = done.into_iter().map(Done::into_failure).collect();
        }
        let mut events = Vec::with_capacity(done.len());
        for outcome in done {
            match outcome {
                Done::Route(event) => events.push(event),
                Done::Announce(announced) => events.extend(announced),
                Done::Registered { reply, result } => {
                    // The session may have gone; its answer has no one to go to.
                    let _ = reply.send(result);
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

/// The answer to a request whose transaction never began.
fn failed(job: WriteJob, error: &rusqlite::Error) -> Done {
    tracing::error!(%error, "cannot begin a transaction");
    match job {
        WriteJob::RegisterUser { reply, .. } => Done::Registered {
            reply,
            result: Err(StoreError::Stopped),
        },
        WriteJob::Send(SendRequest { origin, .. })
        | WriteJob::Release { origin, .. }
        | WriteJob::Subscribe { origin, .. } => Done::Route(Committed::Rejected {
            origin,
            error: RequestError::Internal,
        }),
        WriteJob::ReleaseRemovedAgents => Done::Announce(Vec::new()),
    }
}

/// Runs one request inside its own savepoint, so a failure undoes only
/// that request's writes.
fn apply_in_savepoint(
    conn: &Connection,
    clock: &mut Clock,
    job: WriteJob,
    poisoned: &mut bool,
) -> Done {
    if let Err(error) = queries::savepoint(conn) {
        return failed(job, &error);
    }
    match job {
        WriteJob::RegisterUser { name, reply } => {
            let result =
                keep_or_undo(conn, register_user(conn, clock, &name), poisoned).map_err(|error| {
                    tracing::error!(%error, "registering a user failed");
                    StoreError::Sqlite(error)
                });
            Done::Registered { reply, result }
        }
        WriteJob::Send(request) => {
            let origin = request.origin.clone();
            let outcome = keep_or_undo(conn, store_message(conn, clock, request), poisoned);
            Done::Route(internal_on_error(origin, outcome))
        }
        WriteJob::Release {
            origin,
            agent,
            user,
        } => {
            let outcome = keep_or_undo(conn, release(conn, origin.clone(), &agent, user), poisoned);
            Done::Route(internal_on_error(origin, outcome))
        }
        WriteJob::ReleaseRemovedAgents => {
            match keep_or_undo(conn, queries::release_removed_agents(conn), poisoned) {
                Ok(released) => {
                    if !released.is_empty() {
                        tracing::info!(
                            conversations = released.len(),
                            "released the conversations of removed agents"
                        );
                    }
                    Done::Announce(
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
                Err(error) => {
                    tracing::error!(%error, "releasing the conversations of removed agents failed");
                    Done::Announce(Vec::new())
                }
            }
        }
        WriteJob::Subscribe { origin, .. } => {
            let _ = queries::release_savepoint(conn);
            Done::Route(Committed::Rejected {
                origin,
                error: RequestError::Internal,
            })
        }
    }
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

fn internal_on_error(origin: Origin, outcome: rusqlite::Result<Committed>) -> Committed {
    outcome.unwrap_or_else(|error| {
        tracing::error!(%error, "a write failed; its request is answered internal");
        Committed::Rejected {
            origin,
            error: RequestError::Internal,
        }
    })
}

fn register_user(
    conn: &Connection,
    clock: &mut Clock,
    name: &Name,
) -> rusqlite::Result<Registration> {
    if queries::find_user(conn, name)?.is_some() {
        return Ok(Registration::Taken);
    }
    let token =
        token::generate().map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    queries::insert_user(conn, name, &token::hash(&token), clock.now())?;
    Ok(Registration::Created { token })
}

fn rejected(origin: Origin, error: RequestError) -> rusqlite::Result<Committed> {
    Ok(Committed::Rejected { origin, error })
}

fn store_message(
    conn: &Connection,
    clock: &mut Clock,
    request: SendRequest,
) -> rusqlite::Result<Committed> {
    let SendRequest {
        origin,
        from,
        user,
        body,
        priority,
        key,
    } = request;
    let Some(customer) = queries::find_user(conn, &user)? else {
        return rejected(origin, RequestError::unknown_user(user.as_str()));
    };
    let agent = match from.role {
        Role::User => None,
        Role::Agent => match queries::find_agent(conn, &from.name)? {
            Some(agent) if agent.token_hash.is_some() => Some(agent),
            _ => return rejected(origin, RequestError::Forbidden("this agent was removed")),
        },
    };
    let sender_id = agent.as_ref().map_or(customer.id, |a| a.id);
    if let Some(key) = &key
        && let Some(message_id) = queries::find_key(conn, from.role, sender_id, key.as_str())?
    {
        return Ok(Committed::Sent {
            origin,
            message: queries::message_by_id(conn, message_id)?,
            taken_by: None,
            replayed: true,
        });
    }
    let mut taken_by = None;
    if let Some(agent) = &agent {
        let holder = customer.assigned.map(|(_, name)| name);
        match assignment::decide(holder, &agent.name) {
            Decision::Take => {
                queries::set_assignment(conn, customer.id, Some(agent.id))?;
                taken_by = Some(agent.name.clone());
            }
            Decision::AlreadyHeld => {}
            Decision::HeldByOther(holder) => {
                return rejected(
                    origin,
                    RequestError::AssignedToOther {
                        user,
                        agent: holder,
                    },
                );
            }
        }
        // An answer resolves everything the user was waiting on.
        queries::clear_waiting(conn, customer.id)?;
    }
    let ts = clock.now();
    let priority = if agent.is_some() {
        Priority::Normal
    } else {
        priority
    };
    let id = queries::insert_message(
        conn,
        ts,
        customer.id,
        agent.as_ref().map(|a| a.id),
        &body,
        priority,
    )?;
    if agent.is_none() {
        queries::add_waiting(conn, id, customer.id, priority)?;
    }
    if let Some(key) = &key {
        queries::insert_key(conn, from.role, sender_id, key.as_str(), id)?;
    }
    Ok(Committed::Sent {
        origin,
        message: message(id, ts, user, agent.map(|a| a.name), body, priority),
        taken_by,
        replayed: false,
    })
}

fn message(
    id: u64,
    ts: Timestamp,
    user: Name,
    agent: Option<Name>,
    body: Body,
    priority: Priority,
) -> Message {
    Message {
        id,
        ts,
        user,
        from: if agent.is_some() {
            Role::Agent
        } else {
            Role::User
        },
        agent,
        body,
        priority,
    }
}

fn release(
    conn: &Connection,
    origin: Origin,
    agent: &Name,
    user: Name,
) -> rusqlite::Result<Committed> {
    let Some(customer) = queries::find_user(conn, &user)? else {
        return rejected(origin, RequestError::unknown_user(user.as_str()));
    };
    match customer.assigned {
        Some((_, holder)) if holder == *agent => {
            queries::set_assignment(conn, customer.id, None)?;
            queries::clear_waiting(conn, customer.id)?;
            Ok(Committed::Released {
                origin: Some(origin),
                user,
                agent: holder,
            })
        }
        _ => rejected(origin, RequestError::NotAssigned { user }),
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
                Some(since) => {
                    queries::messages_since(conn, Some(user.id), since, MAX_RESUME_MESSAGES)?
                }
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
                Some(since) => queries::messages_since(conn, None, since, MAX_RESUME_MESSAGES)?,
                None => (queries::waiting_queue(conn, limit)?, false),
            };
            Ok((backlog, truncated, queries::assignments(conn)?))
        }
    }
}

/// Time stamps that strictly increase, even if the system clock steps back.
struct Clock {
    last: Timestamp,
}

impl Clock {
    fn now(&mut self) -> Timestamp {
        let now = Timestamp::now();
        self.last = if now > self.last {
            now
        } else {
            Timestamp::from_micros(self.last.as_micros() + 1)
        };
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
