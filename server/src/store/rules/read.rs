//! What each read means, whatever database keeps it: who may sign in, who
//! may read a history, what a subscriber's backlog holds. Written against
//! [`Reads`], so every backend answers them the same way; the reader
//! threads only choose the snapshot.

use switchboard_protocol::{Message, Name, Role, Token};

use super::{AgentRow, Reads, ResumeCap};
use crate::identity::Identity;
use crate::store::Backlog;
use crate::token;

/// Whether `token` belongs to the user or agent `name`. **A removed agent
/// cannot sign in**: its token is gone, whatever the caller presents.
pub(in crate::store) fn authenticate<R: Reads>(
    reads: &mut R,
    role: Role,
    name: &Name,
    token: &Token,
) -> Result<bool, R::Error> {
    let stored = match role {
        Role::User => reads.find_user(name)?.map(|user| user.token_hash),
        Role::Agent => match reads.find_agent(name)? {
            Some(AgentRow {
                token_hash: Some(hash),
                ..
            }) => Some(hash),
            // No such agent, or a removed one.
            _ => None,
        },
    };
    Ok(stored.is_some_and(|hash| token::verify(token, &hash)))
}

/// A page of `user`'s conversation; `None` if there is no such user.
pub(in crate::store) fn history<R: Reads>(
    reads: &mut R,
    user: &Name,
    before: Option<u64>,
    limit: u32,
) -> Result<Option<Vec<Message>>, R::Error> {
    match reads.find_user(user)? {
        Some(row) => reads.conversation(row.id, before, limit).map(Some),
        None => Ok(None),
    }
}

/// A subscriber's backlog, and the position of the snapshot it was read
/// from (read first, so a backend whose snapshot starts at the first read
/// positions exactly what follows).
///
/// A user gets their own conversation (or what came `since`) and the agent
/// holding it, if any; an agent gets the waiting queue (or everyone's
/// messages `since`) and every held conversation. A `since` resume stops
/// at `cap`.
pub(in crate::store) fn backlog<R: Reads>(
    reads: &mut R,
    identity: &Identity,
    since: Option<u64>,
    limit: u32,
    cap: ResumeCap,
) -> Result<Backlog, R::Error> {
    let as_of = reads.position()?;
    let (messages, truncated, held) = match identity.role {
        Role::User => {
            let Some(user) = reads.find_user(&identity.name)? else {
                return Ok(Backlog {
                    messages: Vec::new(),
                    truncated: false,
                    held: Vec::new(),
                    as_of,
                });
            };
            let (messages, truncated) = match since {
                Some(since) => reads.messages_since(Some(user.id), since, cap)?,
                None => (reads.conversation(user.id, None, limit)?, false),
            };
            let held = user
                .assigned
                .map(|(_, agent)| vec![(identity.name.clone(), agent)])
                .unwrap_or_default();
            (messages, truncated, held)
        }
        Role::Agent => {
            let (messages, truncated) = match since {
                Some(since) => reads.messages_since(None, since, cap)?,
                None => (reads.waiting_queue(limit)?, false),
            };
            (messages, truncated, reads.assignments()?)
        }
    };
    Ok(Backlog {
        messages,
        truncated,
        held,
        as_of,
    })
}
