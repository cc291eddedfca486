//! Agent mode, after a resume: rebuilding the waiting queue.
//!
//! A `since` resume replays the messages the agent missed, but not the
//! resolves: a conversation resolved while the agent was offline would go on
//! waiting. So the client resumes, then subscribes once more without `since`
//! (docs/protocol.md, open point 5): that backlog is the waiting queue as it
//! is now. A backlog can only say what waits, not what stopped waiting, so
//! what it brings is collected apart from the queue on screen and, at its
//! `subscribed`, becomes the whole queue.
//!
//! Live events go on while the backlog arrives, and cannot be told apart
//! from it: a user's message is collected like a backlog entry, while an
//! answer or a resolve ends the waiting of what the user wrote before it. Each is kept
//! as a mark per conversation, so that the result does not depend on which
//! of the two arrived first.

use std::collections::BTreeMap;

use switchboard_protocol::{Message, Name, RequestId, Role};

use super::Waiting;

/// The waiting messages per conversation, as the re-sync found them.
pub type WaitingQueue = BTreeMap<Name, Vec<Waiting>>;

/// A re-sync in progress: from the agent's `Connected` to the re-sync's
/// `subscribed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingResync {
    /// The `subscribe` with `since`: its backlog is the replay.
    resume: RequestId,
    /// The plain `subscribe`: its backlog is the waiting queue.
    resync: RequestId,
    phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// The resume's replay is still arriving: its messages are history, and
    /// say nothing about what waits now.
    Replaying,
    /// Since the resume's `subscribed`: the re-sync's backlog, and live
    /// events.
    Collecting(BTreeMap<Name, Collected>),
}

/// One conversation's share of the re-sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Collected {
    waiting: Vec<Waiting>,
    /// Messages up to this id are resolved: an answer or a release came
    /// after them.
    resolved_through: Option<u64>,
}

impl Collected {
    fn resolve_through(&mut self, id: u64) {
        let through = self.resolved_through.max(Some(id));
        self.resolved_through = through;
        self.waiting.retain(|w| Some(w.id) > through);
    }
}

impl WaitingResync {
    pub fn new(resume: RequestId, resync: RequestId) -> Self {
        Self {
            resume,
            resync,
            phase: Phase::Replaying,
        }
    }

    /// The plain `subscribe`'s request id.
    pub fn request(&self) -> &RequestId {
        &self.resync
    }

    /// The resume's (`since`) request id.
    pub fn resume(&self) -> &RequestId {
        &self.resume
    }

    /// The resume was refused: there is no replay, but the plain
    /// `subscribe` behind it still brings the queue as it is now.
    pub fn resume_failed(&mut self) {
        self.phase = Phase::Collecting(BTreeMap::new());
    }

    /// A `subscribed` arrived. The resume's starts the collection; the
    /// re-sync's ends it, and the queue it brought is returned. Replies come
    /// in request order, so the resume's comes first.
    pub fn on_subscribed(&mut self, id: Option<&RequestId>) -> Option<WaitingQueue> {
        if id == Some(&self.resume) {
            self.phase = Phase::Collecting(BTreeMap::new());
            return None;
        }
        if id != Some(&self.resync) {
            return None;
        }
        let Phase::Collecting(collected) = std::mem::replace(&mut self.phase, Phase::Replaying)
        else {
            return Some(WaitingQueue::new());
        };
        Some(
            collected
                .into_iter()
                .map(|(user, c)| (user, c.waiting))
                .collect(),
        )
    }

    /// A message from the subscription (a `message` event or a `sent`).
    pub fn on_message(&mut self, message: &Message) {
        let Phase::Collecting(collected) = &mut self.phase else {
            return;
        };
        if message.note {
            return; // a note answers nothing
        }
        let conversation = collected.entry(message.user.clone()).or_default();
        match message.from {
            Role::Agent => conversation.resolve_through(message.id),
            Role::User => {
                let resolved = Some(message.id) <= conversation.resolved_through;
                let known = conversation.waiting.iter().any(|w| w.id == message.id);
                if !resolved && !known {
                    conversation.waiting.push(Waiting {
                        id: message.id,
                        priority: message.priority,
                        ts: message.ts,
                    });
                }
            }
        }
    }

    /// `user`'s conversation was resolved: nothing of it waits. `last_id` is
    /// the highest id the
    /// subscription has delivered: live events come in commit order, so
    /// every message written before the resolve that this client will get
    /// has an id no higher, and every one written after it a higher one.
    pub fn on_resolved(&mut self, user: &Name, last_id: Option<u64>) {
        let Phase::Collecting(collected) = &mut self.phase else {
            return;
        };
        let conversation = collected.entry(user.clone()).or_default();
        match last_id {
            Some(id) => conversation.resolve_through(id),
            None => conversation.waiting.clear(),
        }
    }
}
