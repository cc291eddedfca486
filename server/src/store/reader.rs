//! Reader threads: sign-ins, `history` and `subscribe` backlogs, each on its
//! own connection to the backend ([`ReadBackend`]), so reads never wait for
//! a commit nor hold one up. What each read means is in
//! [`super::rules::read`]; a reader only picks the snapshot.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::backend::ReadBackend;
use super::rules::read;
use super::{RESUME_CAP, ReadJob, StoreError};

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
                let backlog = backend
                    .in_snapshot(|reads| read::backlog(reads, &identity, since, limit, RESUME_CAP));
                let _ = reply.send(backlog.map_err(StoreError::backend));
            }
            ReadJob::History {
                user,
                before,
                limit,
                reply,
            } => {
                // Two reads, as before the rules moved: no transaction.
                let page = read::history(&mut backend.reads(), &user, before, limit);
                let _ = reply.send(page.map_err(StoreError::backend));
            }
            ReadJob::AgentCredentials { reply } => {
                let _ = reply.send(backend.agent_credentials().map_err(StoreError::backend));
            }
            ReadJob::RemovedAgentsHold { reply } => {
                let _ = reply.send(
                    backend
                        .removed_agents_hold_conversations()
                        .map_err(StoreError::backend),
                );
            }
        }
    }
}
