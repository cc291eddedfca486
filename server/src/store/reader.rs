//! Reader threads: sign-ins, `history` and `subscribe` backlogs, each on its
//! own connection. In WAL mode they read the last commit without waiting for
//! the writer, and the writer never waits for them. What each read means is
//! in [`super::rules::read`]; a reader only picks the snapshot.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::mpsc;

use super::rules::read;
use super::sqlite::backend_error;
use super::sqlite::reads::Snapshot;
use super::{RESUME_CAP, ReadJob, queries};

pub(super) fn run(mut conn: Connection, jobs: Arc<Mutex<mpsc::Receiver<ReadJob>>>) {
    loop {
        // One idle reader waits on the channel, the others on the lock.
        let job = {
            let mut jobs = jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            jobs.blocking_recv()
        };
        let Some(job) = job else { break };
        match job {
            ReadJob::Authenticate {
                role,
                name,
                token,
                reply,
            } => {
                let signed_in = read::authenticate(&mut Snapshot(&conn), role, &name, &token);
                let _ = reply.send(signed_in.map_err(backend_error));
            }
            ReadJob::Backlog {
                identity,
                since,
                limit,
                reply,
            } => {
                let backlog = in_snapshot(&mut conn, |reads| {
                    read::backlog(reads, &identity, since, limit, RESUME_CAP)
                });
                let _ = reply.send(backlog.map_err(backend_error));
            }
            ReadJob::History {
                user,
                before,
                limit,
                reply,
            } => {
                // Two reads, as before the rules moved: no transaction.
                let page = read::history(&mut Snapshot(&conn), &user, before, limit);
                let _ = reply.send(page.map_err(backend_error));
            }
            ReadJob::AgentCredentials { reply } => {
                let _ = reply.send(queries::agent_credentials(&conn).map_err(backend_error));
            }
            ReadJob::RemovedAgentsHold { reply } => {
                let _ = reply
                    .send(queries::removed_agents_hold_conversations(&conn).map_err(backend_error));
            }
        }
    }
}

/// One snapshot for every read of the job: a deferred read transaction,
/// which SQLite starts at its first read (the backlog's position).
fn in_snapshot<T>(
    conn: &mut Connection,
    read: impl FnOnce(&mut Snapshot<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = conn.transaction()?;
    let value = read(&mut Snapshot(&tx))?;
    tx.finish()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Seq;
    use crate::identity::Identity;
    use crate::store::Backlog;
    use crate::store::test_support::{db, name};
    use switchboard_protocol::{Body, Priority, Role, Timestamp};

    /// A backlog as a reader reads it: the rule, in one snapshot.
    fn backlog(
        conn: &mut Connection,
        identity: &Identity,
        since: Option<u64>,
        limit: u32,
    ) -> rusqlite::Result<Backlog> {
        in_snapshot(conn, |reads| {
            read::backlog(reads, identity, since, limit, RESUME_CAP)
        })
    }

    fn agent() -> Identity {
        Identity {
            role: Role::Agent,
            name: name("alice"),
        }
    }

    /// A backlog says which commits its snapshot saw: the newest message id
    /// plus the releases made, the position the writer gives each batch.
    #[test]
    fn a_backlog_comes_with_the_position_of_its_snapshot() {
        let mut conn = db();
        let start = Timestamp::from_micros(0);
        let ann = queries::insert_user(&conn, &name("ann"), b"h", start).expect("user");
        let empty = backlog(&mut conn, &agent(), None, 10).expect("reads");
        assert_eq!(empty.as_of, Seq(0));
        let body = Body::parse("waiting", 100).expect("valid");
        let id = queries::insert_message(&conn, start, ann, None, &body, Priority::Normal)
            .expect("message");
        queries::add_waiting(&conn, id, ann, Priority::Normal).expect("waits");
        let read = backlog(&mut conn, &agent(), None, 10).expect("reads");
        assert_eq!(read.as_of, Seq(id));
        assert_eq!(read.messages.len(), 1);
        queries::add_releases(&conn, 2).expect("counts");
        let read = backlog(&mut conn, &agent(), Some(0), 10).expect("reads");
        assert_eq!(read.as_of, Seq(id + 2));
        assert_eq!(read.messages.len(), 1, "since 0: everything");
    }
}
