//! What one request of the writer's group produced, before the commit
//! decides whether it stands or becomes `internal`.

use super::rules::Written;
use super::{Registration, StoreError};
use crate::event::{Answer, Event, Origin, Refusal};

/// What one request of a group produced, before the commit decides its fate.
pub(super) enum Outcome {
    Written(Written),
    /// Events nobody asked for (conversations of removed agents released).
    Announce(Vec<Event>),
    /// The answer to a `RegisterUser` job, whose reply channel stays with
    /// the job.
    Registered(Result<Registration, StoreError>),
}

impl Outcome {
    /// The same request, had its group failed to commit.
    pub(super) fn into_failure(self) -> Outcome {
        let not_done = |origin: Origin| {
            Outcome::Written(Written::Answer(Answer::Refused {
                origin,
                refusal: Refusal::NotDone,
            }))
        };
        match self {
            Outcome::Written(Written::Event(event)) => match event.requester() {
                Some(origin) => not_done(origin.clone()),
                None => Outcome::Written(Written::Event(event)),
            },
            Outcome::Written(Written::Answer(
                Answer::Replayed { origin, .. }
                | Answer::AlreadyAssigned { origin, .. }
                | Answer::NothingToResolve { origin, .. },
            )) => not_done(origin),
            Outcome::Announce(_) => Outcome::Announce(Vec::new()),
            Outcome::Registered(Ok(Registration::Created { .. })) => {
                Outcome::Registered(Err(StoreError::NotCommitted))
            }
            other => other,
        }
    }

    /// The events committing this would hand on, in order.
    pub(super) fn events(&self) -> &[Event] {
        match self {
            Outcome::Written(Written::Event(event)) => std::slice::from_ref(event),
            Outcome::Announce(events) => events,
            _ => &[],
        }
    }

    /// How many events besides messages committing this would count in
    /// the position (schema 7 calls them all releases).
    pub(super) fn releases(&self) -> u64 {
        let released = |event: &Event| !matches!(event, Event::Sent { .. });
        match self {
            Outcome::Written(Written::Event(event)) => u64::from(released(event)),
            Outcome::Announce(events) => events.iter().filter(|e| released(e)).count() as u64,
            _ => 0,
        }
    }
}
