//! Reader threads: sign-ins, `history` pages and `subscribe` backlogs (and
//! the chunks of the long ones), each on its
//! own connection to the backend ([`ReadBackend`]), so reads never wait for
//! a commit nor hold one up. What each read means is in
//! [`super::rules::read`]; a reader only picks the snapshot.

use std::sync::{Arc, Mutex};

use switchboard_protocol::{Message, Name, Role, Token};
use tokio::sync::{mpsc, oneshot};

use super::backend::ReadBackend;
use super::rules::{Notes, Reads, read};
use super::{AgentCredential, Backlog, REPLY_CHUNK, RESUME_CAP, Standing, StoreError};
use crate::event::Seq;
use crate::identity::Identity;

/// A read request, answered on its oneshot.
pub(super) enum ReadJob {
    Authenticate {
        role: Role,
        name: Name,
        token: Token,
        reply: oneshot::Sender<Result<Option<Standing>, StoreError>>,
    },
    Backlog {
        identity: Identity,
        since: Option<u64>,
        limit: u32,
        reply: oneshot::Sender<Result<Backlog, StoreError>>,
    },
    /// The ids of a `history` page.
    History {
        user: Name,
        before: Option<u64>,
        limit: u32,
        notes: Notes,
        reply: oneshot::Sender<Result<Option<Vec<u64>>, StoreError>>,
    },
    /// The next chunk of a long reply.
    Chunk {
        ids: Vec<u64>,
        reply: oneshot::Sender<Result<Vec<Message>, StoreError>>,
    },
    AgentCredentials {
        reply: oneshot::Sender<Result<Vec<AgentCredential>, StoreError>>,
    },
    RemovedAgentsHold {
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Whether a conversation is due for auto-release.
    OfflineHoldersDue {
        after: std::time::Duration,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// The position of the newest commit (a cluster's barrier).
    Position {
        reply: oneshot::Sender<Result<Seq, StoreError>>,
    },
}

pub(super) fn run<R: ReadBackend>(mut backend: R, jobs: Arc<Mutex<mpsc::Receiver<ReadJob>>>) {
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
                let signed_in = read::authenticate(&mut backend.reads(), role, &name, &token);
                let _ = reply.send(signed_in.map_err(StoreError::backend));
            }
            ReadJob::Backlog {
                identity,
                since,
                limit,
                reply,
            } => {
                let backlog = backend.in_snapshot(|reads| {
                    read::backlog(reads, &identity, since, limit, RESUME_CAP, REPLY_CHUNK)
                });
                let _ = reply.send(backlog.map_err(StoreError::backend));
            }
            ReadJob::History {
                user,
                before,
                limit,
                notes,
                reply,
            } => {
                // Two reads, as before the rules moved: no transaction.
                let page = read::history(&mut backend.reads(), &user, before, limit, notes);
                let _ = reply.send(page.map_err(StoreError::backend));
            }
            ReadJob::Chunk { ids, reply } => {
                // One statement, no transaction around it: messages never
                // change once stored, so any snapshot reads the same ones
                // (PostgreSQL: one round trip a chunk instead of three).
                let chunk = read::chunk(&mut backend.reads(), &ids, REPLY_CHUNK);
                let _ = reply.send(chunk.map_err(StoreError::backend));
            }
            ReadJob::AgentCredentials { reply } => {
                let _ = reply.send(backend.agent_credentials().map_err(StoreError::backend));
            }
            ReadJob::Position { reply } => {
                let _ = reply.send(backend.reads().position().map_err(StoreError::backend));
            }
            ReadJob::RemovedAgentsHold { reply } => {
                let _ = reply.send(
                    backend
                        .removed_agents_hold_conversations()
                        .map_err(StoreError::backend),
                );
            }
            ReadJob::OfflineHoldersDue { after, reply } => {
                let _ = reply.send(
                    backend
                        .offline_holders_due(after)
                        .map_err(StoreError::backend),
                );
            }
        }
    }
}
