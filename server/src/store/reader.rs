//! Reader threads: sign-ins, `history` and `subscribe` backlogs, each on its
//! own connection. In WAL mode they read the last commit without waiting for
//! the writer, and the writer never waits for them.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use switchboard_protocol::{Message, Name, Role, Token};
use tokio::sync::mpsc;

use super::sqlite::backend_error;
use super::{Backlog, RESUME_CAP, ReadJob, queries};
use crate::identity::Identity;
use crate::token;

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
                let _ = reply.send(authenticate(&conn, role, &name, &token).map_err(backend_error));
            }
            ReadJob::Backlog {
                identity,
                since,
                limit,
                reply,
            } => {
                let backlog = backlog(&mut conn, &identity, since, limit);
                let _ = reply.send(backlog.map_err(backend_error));
            }
            ReadJob::History {
                user,
                before,
                limit,
                reply,
            } => {
                let _ = reply.send(history(&conn, &user, before, limit).map_err(backend_error));
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

fn authenticate(
    conn: &Connection,
    role: Role,
    name: &Name,
    token: &Token,
) -> rusqlite::Result<bool> {
    let stored = match role {
        Role::User => queries::find_user(conn, name)?.map(|user| user.token_hash),
        Role::Agent => queries::find_agent(conn, name)?.and_then(|agent| agent.token_hash),
    };
    Ok(stored.is_some_and(|hash| token::verify(token, &hash)))
}

fn history(
    conn: &Connection,
    user: &Name,
    before: Option<u64>,
    limit: u32,
) -> rusqlite::Result<Option<Vec<Message>>> {
    match queries::find_user(conn, user)? {
        Some(row) => queries::conversation(conn, row.id, before, limit).map(Some),
        None => Ok(None),
    }
}

/// A subscriber's backlog and the position of the snapshot it was read from.
///
/// One read transaction: the position, the messages and the held list all
/// come from the same commit, whatever the writer commits meanwhile.
fn backlog(
    conn: &mut Connection,
    identity: &Identity,
    since: Option<u64>,
    limit: u32,
) -> rusqlite::Result<Backlog> {
    // Deferred: the snapshot starts at the first read, the position's.
    let tx = conn.transaction()?;
    let as_of = queries::position(&tx)?;
    let (messages, truncated, held) = match identity.role {
        Role::User => {
            let Some(user) = queries::find_user(&tx, &identity.name)? else {
                return Ok(Backlog {
                    messages: Vec::new(),
                    truncated: false,
                    held: Vec::new(),
                    as_of,
                });
            };
            let (messages, truncated) = match since {
                Some(since) => queries::messages_since(&tx, Some(user.id), since, RESUME_CAP)?,
                None => (queries::conversation(&tx, user.id, None, limit)?, false),
            };
            let held = user
                .assigned
                .map(|(_, agent)| vec![(identity.name.clone(), agent)])
                .unwrap_or_default();
            (messages, truncated, held)
        }
        Role::Agent => {
            let (messages, truncated) = match since {
                Some(since) => queries::messages_since(&tx, None, since, RESUME_CAP)?,
                None => (queries::waiting_queue(&tx, limit)?, false),
            };
            (messages, truncated, queries::assignments(&tx)?)
        }
    };
    tx.finish()?;
    Ok(Backlog {
        messages,
        truncated,
        held,
        as_of,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Seq;
    use crate::store::test_support::{db, name};
    use switchboard_protocol::{Body, Priority, Timestamp};

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
