//! A conversation's state changed without a message (protocol version 2,
//! "Conversation state"): `claim`, `release`, `resolve`, `transfer`, with a
//! supervisor's rights. Apart from `write.rs` because it is its own set of
//! rules over the same [`Tables`]; the refusal helper is shared.

use switchboard_protocol::Name;

use super::write::{Written, refused};
use super::{Clock, Tables};
use crate::event::{Answer, Event, Origin, Refusal};
use crate::identity::Identity;

/// What an agent asks of a conversation without writing to it (protocol
/// version 2, "Conversation state").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// Take an unheld conversation.
    Claim,
    /// Put it back in the queue: no holder; waiting messages stay waiting.
    Release,
    /// It is done: no holder, nothing waiting.
    Resolve,
    /// Hand it to another agent.
    Transfer { to: Name },
}

/// An agent's `claim`, `release`, `resolve` or `transfer`, decided in the
/// writer's transaction like an answer (`find_user` locks the user's row),
/// so it is atomic against sends and against each other: of two agents
/// claiming or answering an unheld user at once, exactly one holds it
/// after. Checks in the protocol's order: a token taken away since
/// sign-in (`unauthorized`, as for [`store_message`]), an unknown user, for
/// a transfer an unknown agent, then who holds the conversation.
pub(in crate::store) fn lifecycle<T: Tables>(
    tables: &mut T,
    clock: &mut Clock,
    origin: &Origin,
    agent: &Identity,
    user: &Name,
    action: &Lifecycle,
) -> Result<Written, T::Error> {
    let current = tables.find_agent(&agent.name)?;
    let me = match current {
        Some(row) if agent.credential.is_current(row.token_hash.as_deref()) => row,
        _ => return Ok(refused(origin, Refusal::Revoked)),
    };
    let Some(customer) = tables.find_user(user)? else {
        return Ok(refused(origin, Refusal::UnknownUser(user.clone())));
    };
    let holder = customer.assigned.map(|(_, name)| name);
    let mine = holder.as_ref() == Some(&me.name);
    // A supervisor may release, resolve and transfer any conversation; for
    // claiming and writing it is bound like every agent.
    let may_change = mine || me.supervisor;
    Ok(match action {
        Lifecycle::Claim => match holder {
            None => {
                tables.set_assignment(customer.id, Some((me.id, clock.now())))?;
                Written::Event(Event::Assigned {
                    origin: Some(origin.clone()),
                    user: user.clone(),
                    agent: me.name,
                    by: None,
                })
            }
            Some(holder) if mine => already_assigned(origin, user, holder, None),
            Some(holder) => refused(
                origin,
                Refusal::AssignedToOther {
                    user: user.clone(),
                    agent: holder,
                },
            ),
        },
        // Unheld: nothing to release, even for a supervisor.
        Lifecycle::Release => match holder {
            Some(holder) if may_change => {
                // The customer's questions stay in the queue for whoever
                // takes the conversation next.
                tables.set_assignment(customer.id, None)?;
                Written::Event(Event::Released {
                    origin: Some(origin.clone()),
                    user: user.clone(),
                    agent: holder,
                    by: (!mine).then_some(me.name),
                    reason: None,
                })
            }
            _ => refused(origin, Refusal::NotAssigned { user: user.clone() }),
        },
        Lifecycle::Resolve => {
            if holder.is_some() && !may_change {
                return Ok(refused(origin, Refusal::NotAssigned { user: user.clone() }));
            }
            if holder.is_some() {
                tables.set_assignment(customer.id, None)?;
            }
            let stopped_waiting = tables.clear_waiting(customer.id)?;
            if holder.is_none() && stopped_waiting == 0 {
                Written::Answer(Answer::NothingToResolve {
                    origin: origin.clone(),
                    user: user.clone(),
                    agent: me.name,
                })
            } else {
                Written::Event(Event::Resolved {
                    origin: Some(origin.clone()),
                    user: user.clone(),
                    agent: me.name,
                })
            }
        }
        Lifecycle::Transfer { to } => {
            let target = match tables.find_agent(to)? {
                Some(row) if row.token_hash.is_some() => row,
                // Removed agents hold nothing, and are given nothing.
                _ => return Ok(refused(origin, Refusal::UnknownAgent(to.clone()))),
            };
            // The holder hands over; a supervisor hands over anyone's, or
            // gives an unheld conversation.
            if !(may_change && (holder.is_some() || me.supervisor)) {
                return Ok(refused(origin, Refusal::NotAssigned { user: user.clone() }));
            }
            if holder.as_ref() == Some(&target.name) {
                // Still a transfer: it names who asked (`by`), as every
                // transfer does.
                already_assigned(origin, user, target.name, Some(me.name))
            } else {
                tables.set_assignment(customer.id, Some((target.id, clock.now())))?;
                Written::Event(Event::Assigned {
                    origin: Some(origin.clone()),
                    user: user.clone(),
                    agent: target.name,
                    by: Some(me.name),
                })
            }
        }
    })
}

fn already_assigned(origin: &Origin, user: &Name, agent: Name, by: Option<Name>) -> Written {
    Written::Answer(Answer::AlreadyAssigned {
        origin: origin.clone(),
        user: user.clone(),
        agent,
        by,
    })
}
