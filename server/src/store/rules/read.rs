//! What each read means, whatever database keeps it: who may sign in, who
//! may read a history, what a subscriber's backlog holds. Written against
//! [`Reads`], so every backend answers them the same way; the reader
//! threads only choose the snapshot.

use switchboard_protocol::{Message, Name, Role, Token};

use super::{AgentRow, Notes, Reads, ReplyChunk, ResumeCap};
use crate::identity::Identity;
use crate::store::{Backlog, Standing};
use crate::token;

/// Whether `token` belongs to the user or agent `name`, and if so its
/// standing. **A removed agent cannot sign in**: its token is gone,
/// whatever the caller presents.
pub(in crate::store) fn authenticate<R: Reads>(
    reads: &mut R,
    role: Role,
    name: &Name,
    token: &Token,
) -> Result<Option<Standing>, R::Error> {
    let stored = match role {
        Role::User => reads.find_user(name)?.map(|user| {
            let standing = Standing { supervisor: false };
            (user.token_hash, standing)
        }),
        Role::Agent => match reads.find_agent(name)? {
            Some(AgentRow {
                token_hash: Some(hash),
                supervisor,
                ..
            }) => Some((hash, Standing { supervisor })),
            // No such agent, or a removed one.
            _ => None,
        },
    };
    Ok(stored
        .filter(|(hash, _)| token::verify(token, hash))
        .map(|(_, standing)| standing))
}

/// The ids of a page of `user`'s conversation, oldest first (its
/// messages are read a chunk at a time, [`chunk`]), with or without the
/// agents' notes; `None` if there is no such user.
pub(in crate::store) fn history<R: Reads>(
    reads: &mut R,
    user: &Name,
    before: Option<u64>,
    limit: u32,
    notes: Notes,
) -> Result<Option<Vec<u64>>, R::Error> {
    match reads.find_user(user)? {
        Some(row) => reads
            .conversation_ids(row.id, before, limit, notes)
            .map(Some),
        None => Ok(None),
    }
}

/// The next chunk of a long reply: the messages of the first of `ids`, at
/// most `chunk` of them (fewer once their bodies reach its bytes).
pub(in crate::store) fn chunk<R: Reads>(
    reads: &mut R,
    ids: &[u64],
    chunk: ReplyChunk,
) -> Result<Vec<Message>, R::Error> {
    let ids = &ids[..ids.len().min(chunk.messages)];
    reads.messages_by_id(ids, chunk.body_bytes)
}

/// A subscriber's backlog, and the position of the snapshot it was read
/// from (read first, so a backend whose snapshot starts at the first read
/// positions exactly what follows).
///
/// A user gets their own conversation (or what came `since`), never its
/// notes, and the agent holding it, if any; an agent gets the waiting queue (or everyone's
/// messages `since`) and every held conversation. A `since` resume stops
/// at `cap`.
///
/// A user's backlog is one conversation, planned as ids in the snapshot:
/// its first `chunk` is read here, the rest later ([`Backlog::rest`]) as
/// the client takes it. An agent's (many conversations, the waiting queue)
/// is read whole: agents are provisioned and trusted, and their backlog is
/// bounded by `limit` and `cap`.
pub(in crate::store) fn backlog<R: Reads>(
    reads: &mut R,
    identity: &Identity,
    since: Option<u64>,
    limit: u32,
    cap: ResumeCap,
    chunk: ReplyChunk,
) -> Result<Backlog, R::Error> {
    let as_of = reads.position()?;
    let mut backlog = Backlog {
        messages: Vec::new(),
        rest: Vec::new(),
        truncated: false,
        held: Vec::new(),
        as_of,
    };
    match identity.role {
        Role::User => {
            let Some(user) = reads.find_user(&identity.name)? else {
                return Ok(backlog);
            };
            let (ids, truncated) = match since {
                Some(since) => reads.conversation_ids_since(user.id, since, cap, Notes::Hidden)?,
                None => (
                    reads.conversation_ids(user.id, None, limit, Notes::Hidden)?,
                    false,
                ),
            };
            backlog.messages = self::chunk(reads, &ids, chunk)?;
            backlog.rest = ids[backlog.messages.len()..].to_vec();
            backlog.truncated = truncated;
            backlog.held = user
                .assigned
                .map(|(_, agent)| vec![(identity.name.clone(), agent)])
                .unwrap_or_default();
        }
        Role::Agent => {
            (backlog.messages, backlog.truncated) = match since {
                Some(since) => reads.messages_since(since, cap)?,
                None => (reads.waiting_queue(limit)?, false),
            };
            backlog.held = reads.assignments()?;
        }
    }
    Ok(backlog)
}
