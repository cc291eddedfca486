//! What each write means, whatever database keeps it: who may answer a
//! user and who takes the conversation, idempotent replays, the waiting
//! queue, releases, registrations, time stamps that only increase.
//!
//! The rules reach the data only through [`Tables`], the handful of reads
//! and writes they need inside one transaction. The SQLite writer runs them
//! in its group commits over its prepared statements; a second backend
//! (PostgreSQL, when one machine is outgrown) implements [`Tables`] over its
//! own transaction and reuses these rules unchanged, so both answer every
//! request the same way.

use switchboard_protocol::{Body, Message, Name, Priority, Role, Timestamp, Token};

use super::{NewMessage, Tables};
use crate::assignment::{self, Decision};
use crate::event::{Answer, Event, Origin, Refusal};
use crate::store::{Registration, SendRequest};
use crate::token;

/// What one write request produced: news for everyone concerned, or an
/// answer for the requester alone.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::store) enum Written {
    Event(Event),
    Answer(Answer),
}

/// A first `hello`: the name, if free, is the user's from now on, with a
/// token from `new_token` (only its hash is stored). Free means no user and
/// no agent has it in any case: `Ana` cannot pass for `ana`, nor a customer
/// for an agent (issue 15, finding 10).
pub(in crate::store) fn register_user<T: Tables, E: From<T::Error>>(
    tables: &mut T,
    clock: &mut Clock,
    name: &Name,
    new_token: impl FnOnce() -> Result<Token, E>,
) -> Result<Registration, E> {
    if !tables.names_like(name)?.is_empty() {
        return Ok(Registration::Taken);
    }
    let token = new_token()?;
    tables.insert_user(name, &token::hash(&token), clock.now())?;
    Ok(Registration::Created { token })
}

/// A `send`, from a user into their own conversation or from an agent to a
/// user: stored, or refused with the reason, or (a key seen before)
/// answered with the message that key already stored. An agent's note
/// (protocol version 2) is stored in the conversation like an answer but
/// neither needs, takes nor changes the holder, and answers nothing: the
/// user's questions stay waiting.
pub(in crate::store) fn store_message<T: Tables>(
    tables: &mut T,
    clock: &mut Clock,
    request: &SendRequest,
) -> Result<Written, T::Error> {
    let SendRequest {
        origin,
        from,
        user,
        body,
        priority,
        key,
        note,
    } = request;
    // A user's own message needs only the user's id; an agent's answer also
    // needs who holds the conversation.
    let (customer_id, agent) = match from.role {
        Role::User => match tables.user_id(user)? {
            Some(id) => (id, None),
            None => return Ok(refused(origin, Refusal::UnknownUser(user.clone()))),
        },
        Role::Agent => {
            let Some(customer) = tables.find_user(user)? else {
                return Ok(refused(origin, Refusal::UnknownUser(user.clone())));
            };
            match tables.find_agent(&from.name)? {
                Some(agent) if from.credential.is_current(agent.token_hash.as_deref()) => {
                    (customer.id, Some((agent, customer.assigned)))
                }
                // Removed, rotated, or removed and added again since this
                // connection signed in: checked here, in the commit, because
                // the credential poll closes the connection only up to a
                // poll later, and the agent's name may already be someone
                // else's token (issue 15, finding 7).
                _ => return Ok(refused(origin, Refusal::Revoked)),
            }
        }
    };
    let sender_id = agent.as_ref().map_or(customer_id, |(a, _)| a.id);
    if let Some(key) = key
        && let Some(message_id) = tables.find_key(from.role, sender_id, key.as_str())?
    {
        return Ok(Written::Answer(Answer::Replayed {
            origin: origin.clone(),
            message: tables.message_by_id(message_id)?,
        }));
    }
    let ts = clock.now();
    let mut taken_by = None;
    if let Some((agent, assigned)) = &agent
        && !note
    {
        let holder = assigned.as_ref().map(|(_, name)| name);
        match assignment::decide(holder, &&agent.name) {
            Decision::Take => {
                tables.set_assignment(customer_id, Some((agent.id, ts)))?;
                taken_by = Some(agent.name.clone());
            }
            Decision::AlreadyHeld => {}
            Decision::HeldByOther(holder) => {
                return Ok(refused(
                    origin,
                    Refusal::AssignedToOther {
                        user: user.clone(),
                        agent: holder.clone(),
                    },
                ));
            }
        }
        // An answer resolves everything the user was waiting on.
        tables.clear_waiting(customer_id)?;
    }
    let priority = if agent.is_some() {
        Priority::Normal
    } else {
        *priority
    };
    let id = tables.insert_message(NewMessage {
        ts,
        user_id: customer_id,
        agent_id: agent.as_ref().map(|(a, _)| a.id),
        body,
        priority,
        note: *note,
    })?;
    if agent.is_none() {
        tables.add_waiting(id, customer_id, priority)?;
    }
    if let Some(key) = key {
        tables.insert_key(from.role, sender_id, key.as_str(), id)?;
    }
    Ok(Written::Event(Event::Sent {
        origin: origin.clone(),
        message: message(
            id,
            ts,
            user.clone(),
            agent.map(|(a, _)| a.name),
            body.clone(),
            priority,
            *note,
        ),
        taken_by,
    }))
}

pub(super) fn refused(origin: &Origin, refusal: Refusal) -> Written {
    Written::Answer(Answer::Refused {
        origin: origin.clone(),
        refusal,
    })
}

fn message(
    id: u64,
    ts: Timestamp,
    user: Name,
    agent: Option<Name>,
    body: Body,
    priority: Priority,
    note: bool,
) -> Message {
    Message {
        id,
        ts,
        user,
        from: if agent.is_some() {
            Role::Agent
        } else {
            Role::User
        },
        agent,
        body,
        priority,
        note,
    }
}

/// Lets go of every conversation a removed agent still marks, as if the
/// agent had released it: the conversation goes back to the queue, and the
/// user's waiting messages stay waiting for the next agent (protocol
/// version 2; version 1 dropped them, and the customer was left waiting
/// with no agent seeing it). Also the releases left due by an agent added
/// again before a server got here: each is announced the same way, unless
/// the user was taken since (everyone then heard `assigned` instead).
/// Returns them as (user, agent), to announce.
pub(in crate::store) fn release_removed_agents<T: Tables>(
    tables: &mut T,
) -> Result<Vec<(Name, Name)>, T::Error> {
    // Read before anything below changes an assignment: a user freed just
    // now, from another removed agent, was not free when it came due.
    let due = tables.take_releases_due()?;
    let held = tables.held_by_removed_agents()?;
    let mut released = Vec::with_capacity(held.len() + due.len());
    for (user_id, user, agent) in held {
        tables.set_assignment(user_id, None)?;
        released.push((user, agent));
    }
    released.extend(
        due.into_iter()
            .filter(|due| !due.taken)
            .map(|due| (due.user, due.agent)),
    );
    Ok(released)
}

/// Time stamps that strictly increase, even if the system clock steps back.
pub(in crate::store) struct Clock {
    last: Timestamp,
    /// The database's time, read when the transaction began (cluster).
    pinned: Option<Timestamp>,
}

impl Clock {
    /// A clock whose next time stamp comes after `last` (the newest stored).
    pub(in crate::store) fn after(last: Timestamp) -> Self {
        Self { last, pinned: None }
    }

    /// Follows a shared database's clock (a cluster's nodes stamp from one
    /// clock, not each from its own): from now on time stamps come after
    /// `last`, the newest stored by any node, taken from the database's
    /// `now` (read as its transaction began).
    pub(in crate::store) fn pin(&mut self, now: Timestamp, last: Timestamp) {
        self.last = self.last.max(last);
        self.pinned = Some(now);
    }

    pub(in crate::store) fn now(&mut self) -> Timestamp {
        let now = self.pinned.unwrap_or_else(Timestamp::now);
        self.last = if now > self.last {
            now
        } else {
            Timestamp::from_micros(self.last.as_micros() + 1)
        };
        self.last
    }
}
