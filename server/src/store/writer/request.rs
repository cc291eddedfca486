//! One request inside the writer's transaction: what it applies through
//! the rules, what it is answered when its writes were not made, and the
//! savepoint that undoes it alone on the slow path (`mod.rs` runs the
//! group around it and commits).

use thiserror::Error;

use crate::event::{Answer, Event, Refusal};
use crate::store::backend::Transaction;
use crate::store::outcome::Outcome;
use crate::store::rules::{self, Clock, Tables, Written};
use crate::store::{SendRequest, StoreError, WriteJob};
use crate::token;

/// Why a request or a group could not be written. Only logged; the
/// backend's own error is boxed, off the path of a request that succeeds.
#[derive(Debug, Error)]
pub(super) enum WriteError {
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    #[error("a failed request's savepoint could not be undone")]
    Poisoned,
    #[error("no randomness for a new token: {0}")]
    NoRandomness(getrandom::Error),
}

/// For `map_err`: a backend's error as a [`WriteError`].
pub(super) fn backend_failed<E: std::error::Error + Send + Sync + 'static>(error: E) -> WriteError {
    WriteError::Backend(Box::new(error))
}

impl WriteJob {
    /// What kind of request this is, for the log (never its content).
    pub(super) fn kind(&self) -> &'static str {
        match self {
            WriteJob::RegisterUser { .. } => "register",
            WriteJob::Send(_) => "send",
            WriteJob::Lifecycle { .. } => "conversation change",
            WriteJob::ReleaseRemovedAgents => "release removed agents",
            WriteJob::ReleaseOfflineHolders { .. } => "release offline agents' conversations",
            WriteJob::Probe => "probe",
            WriteJob::Member { .. } => "connection",
            WriteJob::SweepExpiredNodes { .. } => "sweep expired nodes",
            WriteJob::RetireNode { .. } => "retire this node",
            WriteJob::ReconcileMembers { .. } => "reconcile connection records",
        }
    }
}

/// The answer to a request whose writes were not made: `internal` (a
/// registration's own channel is told so; a release of removed agents'
/// conversations announces nothing and runs again on the next poll).
pub(super) fn not_done(job: &WriteJob) -> Outcome {
    match job {
        WriteJob::RegisterUser { .. } => Outcome::Registered(Err(StoreError::NotCommitted)),
        WriteJob::Send(SendRequest { origin, .. }) | WriteJob::Lifecycle { origin, .. } => {
            Outcome::Written(Written::Answer(Answer::Refused {
                origin: origin.clone(),
                refusal: Refusal::NotDone,
            }))
        }
        WriteJob::ReleaseRemovedAgents
        | WriteJob::ReleaseOfflineHolders { .. }
        | WriteJob::Probe
        | WriteJob::Member { .. }
        | WriteJob::SweepExpiredNodes { .. }
        | WriteJob::RetireNode { .. }
        | WriteJob::ReconcileMembers { .. } => Outcome::Announce(Vec::new()),
    }
}

/// A registration's failure: the backend's, or no token (the rule asks
/// for one only once the name is known to be free).
enum Registering<E> {
    Backend(E),
    Failed(WriteError),
}

impl<E> From<E> for Registering<E> {
    fn from(error: E) -> Self {
        Registering::Backend(error)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> Registering<E> {
    fn into_write_error(self) -> WriteError {
        match self {
            Registering::Backend(error) => backend_failed(error),
            Registering::Failed(error) => error,
        }
    }
}

/// Runs one request; an error means its writes may be half done.
pub(super) fn apply<H: Tables>(
    hot: &mut H,
    clock: &mut Clock,
    job: &WriteJob,
) -> Result<Outcome, WriteError>
where
    H::Error: std::error::Error + Send + Sync + 'static,
{
    Ok(match job {
        WriteJob::RegisterUser { name, .. } => {
            let new_token = || {
                token::generate()
                    .map_err(|error| Registering::Failed(WriteError::NoRandomness(error)))
            };
            let registered = rules::register_user(hot, clock, name, new_token);
            Outcome::Registered(Ok(registered.map_err(Registering::into_write_error)?))
        }
        WriteJob::Send(request) => {
            Outcome::Written(rules::store_message(hot, clock, request).map_err(backend_failed)?)
        }
        WriteJob::Lifecycle {
            origin,
            agent,
            user,
            action,
        } => Outcome::Written(
            rules::lifecycle(hot, clock, origin, agent, user, action).map_err(backend_failed)?,
        ),
        // Nothing to apply: the group's commit is the probe (`count_releases`).
        WriteJob::Probe => Outcome::Announce(Vec::new()),
        WriteJob::Member { member, open, .. } => {
            Outcome::Announce(rules::member(hot, clock, member, *open).map_err(backend_failed)?)
        }
        WriteJob::ReconcileMembers { node, live } => {
            let forgotten =
                rules::forget_members(hot, clock, *node, &live()).map_err(backend_failed)?;
            if !forgotten.is_empty() {
                tracing::info!(
                    connections = forgotten.len(),
                    "removed records of connections that had closed"
                );
            }
            Outcome::Announce(forgotten)
        }
        WriteJob::SweepExpiredNodes { sweeper } => {
            let swept = rules::sweep_expired_nodes(hot, clock, *sweeper).map_err(backend_failed)?;
            if !swept.is_empty() {
                tracing::warn!(
                    connections = swept.len(),
                    "a node's lease ran out: its connections are offline now"
                );
            }
            Outcome::Announce(swept)
        }
        WriteJob::RetireNode { node } => {
            let forgotten = rules::retire_node(hot, clock, *node).map_err(backend_failed)?;
            tracing::info!(
                connections = forgotten.len(),
                "gave up this node's lease: the other nodes need not wait for it to run out"
            );
            Outcome::Announce(forgotten)
        }
        WriteJob::ReleaseOfflineHolders { after } => {
            let released =
                rules::release_offline_holders(hot, clock, *after).map_err(backend_failed)?;
            if !released.is_empty() {
                tracing::info!(
                    conversations = released.len(),
                    "released the conversations of agents offline for longer than --release-after"
                );
            }
            Outcome::Announce(released)
        }
        WriteJob::ReleaseRemovedAgents => {
            let released = rules::release_removed_agents(hot).map_err(backend_failed)?;
            if !released.is_empty() {
                tracing::info!(
                    conversations = released.len(),
                    "released the conversations of removed agents"
                );
            }
            Outcome::Announce(
                released
                    .into_iter()
                    .map(|(user, agent)| Event::Released {
                        origin: None,
                        user,
                        agent,
                        by: None,
                        reason: None,
                    })
                    .collect(),
            )
        }
    })
}

/// Runs one request inside its own savepoint, so a failure undoes only
/// that request's writes and answers it `internal`.
pub(super) fn apply_in_savepoint<T: Transaction>(
    tx: &T,
    hot: &mut T::Tables<'_>,
    clock: &mut Clock,
    job: &WriteJob,
    poisoned: &mut bool,
) -> Outcome {
    let outcome = tx.savepoint().map_err(backend_failed).and_then(|()| {
        // Its held-back rows are written inside its savepoint: refused,
        // they are this request's failure, undone with it.
        let applied = apply(hot, clock, job)
            .and_then(|outcome| tx.write_held().map(|()| outcome).map_err(backend_failed));
        keep_or_undo(tx, applied, poisoned)
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
fn keep_or_undo<T: Transaction, V>(
    tx: &T,
    outcome: Result<V, WriteError>,
    poisoned: &mut bool,
) -> Result<V, WriteError> {
    match outcome {
        Ok(value) => tx
            .release_savepoint()
            .map(|()| value)
            .map_err(backend_failed)
            .inspect_err(|_| *poisoned = true),
        Err(error) => {
            if let Err(undo) = tx.rollback_to_savepoint() {
                tracing::error!(%undo, "rolling back a failed request failed");
                *poisoned = true;
            }
            Err(error)
        }
    }
}
