//! Reader threads: sign-ins and `history`, each on its own connection. In WAL
//! mode they read the last commit without waiting for the writer.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use switchboard_protocol::{Message, Name, Role, Token};
use tokio::sync::mpsc;

use super::{ReadJob, StoreError, queries};
use crate::token;

pub(super) fn run(conn: Connection, jobs: Arc<Mutex<mpsc::Receiver<ReadJob>>>) {
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
                let _ =
                    reply.send(authenticate(&conn, role, &name, &token).map_err(StoreError::from));
            }
            ReadJob::History {
                user,
                before,
                limit,
                reply,
            } => {
                let _ = reply.send(history(&conn, &user, before, limit).map_err(StoreError::from));
            }
            ReadJob::AgentCredentials { reply } => {
                let _ = reply.send(queries::agent_credentials(&conn).map_err(StoreError::from));
            }
            ReadJob::RemovedAgentsHold { reply } => {
                let _ = reply.send(
                    queries::removed_agents_hold_conversations(&conn).map_err(StoreError::from),
                );
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
