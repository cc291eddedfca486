//! Connections that count for presence, and what they mean for the
//! conversations their agents hold: a cluster's records of its nodes'
//! subscribed connections (issue 16), and auto-release (protocol version
//! 2): a conversation whose holder has had no subscribed connection on any
//! node for `--release-after` goes back to the queue, its waiting messages
//! still waiting.
//!
//! The holder's clock is stored, not kept in a node's memory, so every
//! node (one joining a running cluster too) reads the same one, and the
//! release is decided in the writer's transaction like every other change
//! of holder: atomic against claims, answers and transfers, and, on a
//! shared database, decided once whichever nodes ask. The clock starts at
//! the later of the holder's last subscribed connection closing (for a
//! node that died, when its lease ran out and its connections were swept,
//! never earlier), the holder taking the conversation, and the server's
//! start: one node restarts every agent's clock as it opens its database
//! (`store/mod.rs`); a cluster's start is the earliest start among the
//! nodes holding a current lease, read with the conversations due
//! (`postgres/queries/presence.rs`), so a node joining a running cluster
//! leaves the clocks as they run.

use std::time::Duration;

use switchboard_protocol::{Name, ReleaseReason, Role, Timestamp};

use super::{Clock, Tables};
use crate::event::{ConnId, Event, Member, NodeId};

/// A node's connection opened or closed: recorded (a cluster), its
/// agent's clock stopped or started, and an event for the other nodes'
/// presence when the record changed anything.
pub(in crate::store) fn member<T: Tables>(
    tables: &mut T,
    clock: &mut Clock,
    member: &Member,
    open: bool,
) -> Result<Vec<Event>, T::Error> {
    let changed = if open {
        tables.open_member(member)?
    } else {
        tables.close_member(member)?
    };
    if member.role == Role::Agent {
        if open {
            tables.agent_connected(member)?;
        } else {
            tables.agent_disconnected(member, clock.now())?;
        }
    }
    Ok(changed
        .then(|| Event::Member {
            member: member.clone(),
            open,
        })
        .into_iter()
        .collect())
}

/// `node`'s records of connections no session holds (`live` are the ones
/// that do), closed: the other nodes hear them go.
pub(in crate::store) fn forget_members<T: Tables>(
    tables: &mut T,
    clock: &mut Clock,
    node: NodeId,
    live: &[ConnId],
) -> Result<Vec<Event>, T::Error> {
    let forgotten = tables.forget_members(node, live)?;
    closed(tables, clock, forgotten)
}

/// The connections of nodes whose lease ran out, closed: the other nodes
/// hear them go, in commit order like everything else. Their agents'
/// clocks start now, not when the node stopped: a node's death never
/// releases its agents' conversations before its lease ran out.
pub(in crate::store) fn sweep_expired_nodes<T: Tables>(
    tables: &mut T,
    clock: &mut Clock,
    sweeper: NodeId,
) -> Result<Vec<Event>, T::Error> {
    let swept = tables.sweep_expired_nodes(sweeper)?;
    closed(tables, clock, swept)
}

/// A node stopping cleanly, forgotten with its connections: the other
/// nodes hear them go, and the node no longer counts toward the cluster's
/// start (auto-release), as if its lease had run out, without the wait.
pub(in crate::store) fn retire_node<T: Tables>(
    tables: &mut T,
    clock: &mut Clock,
    node: NodeId,
) -> Result<Vec<Event>, T::Error> {
    let forgotten = tables.retire_node(node)?;
    closed(tables, clock, forgotten)
}

/// Records gone: each agent's clock, then the events.
fn closed<T: Tables>(
    tables: &mut T,
    clock: &mut Clock,
    members: Vec<Member>,
) -> Result<Vec<Event>, T::Error> {
    let at = clock.now();
    for member in members.iter().filter(|member| member.role == Role::Agent) {
        tables.agent_disconnected(member, at)?;
    }
    Ok(members
        .into_iter()
        .map(|member| Event::Member {
            member,
            open: false,
        })
        .collect())
}

/// Lets go of every conversation whose holder has had no subscribed
/// connection for `after`: announced as `released` with
/// `"reason":"agent_offline"`, to everyone concerned, nobody answered. The
/// waiting messages stay waiting, for whoever takes it next.
pub(in crate::store) fn release_offline_holders<T: Tables>(
    tables: &mut T,
    clock: &mut Clock,
    after: Duration,
) -> Result<Vec<Event>, T::Error> {
    let now = clock.now();
    let after = i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
    let deadline = Timestamp::from_micros(now.as_micros().saturating_sub(after));
    let due = tables.offline_holders(deadline)?;
    let mut released = Vec::with_capacity(due.len());
    for (user_id, user, agent) in due {
        tables.set_assignment(user_id, None)?;
        released.push(offline_release(user, agent));
    }
    Ok(released)
}

fn offline_release(user: Name, agent: Name) -> Event {
    Event::Released {
        origin: None,
        user,
        agent,
        by: None,
        reason: Some(ReleaseReason::AgentOffline),
    }
}
