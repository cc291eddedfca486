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
