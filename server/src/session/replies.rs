//! Replies in request order.
//!
//! A connection's requests are answered in the order they came, whichever
//! way each reply travels: a `send`'s reply comes through storage and the
//! router after its commit, a `ping`'s at once. So an immediate reply waits
//! behind the replies still to come from the router for earlier requests.
//!
//! This counts on one promise, kept by the router and the outbox: replies
//! from the router reach the session in the order their requests were
//! issued (one FIFO path per connection). In a cluster, where a reply may
//! come over another route, this is the place that would order by a
//! per-request number instead.

use std::collections::VecDeque;

use bytes::Bytes;

/// The session's book of replies owed.
#[derive(Debug, Default)]
pub struct Replies {
    /// Requests whose reply comes through the router.
    issued: u64,
    /// Of those, how many replies are written.
    answered: u64,
    /// Immediate replies waiting for earlier replies: (replies from the
    /// router that must be written first, the reply).
    held: VecDeque<(u64, Bytes)>,
}

impl Replies {
    /// A request whose reply will come through the router.
    pub fn expect_later(&mut self) {
        self.issued += 1;
    }

    /// Whether a reply from the router is still to come.
    pub fn owed(&self) -> bool {
        self.answered < self.issued
    }

    /// How many replies from the router are still to come.
    pub fn owed_count(&self) -> u64 {
        self.issued - self.answered
    }

    /// An immediate reply: to write now, or `None` when it must wait for
    /// earlier replies (it is kept, and comes out of [`Replies::next_due`]).
    pub fn immediate(&mut self, reply: Bytes) -> Option<Bytes> {
        if self.owed() {
            self.held.push_back((self.issued, reply));
            None
        } else {
            Some(reply)
        }
    }

    /// A reply from the router was written.
    pub fn answered(&mut self) {
        self.answered += 1;
    }

    /// The next held reply whose earlier replies are all written.
    pub fn next_due(&mut self) -> Option<Bytes> {
        match self.held.front() {
            Some((after, _)) if *after <= self.answered => self.held.pop_front().map(|(_, r)| r),
            _ => None,
        }
    }

    /// Immediate replies waiting.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(replies: &mut Replies) -> Vec<Bytes> {
        std::iter::from_fn(|| replies.next_due()).collect()
    }

    #[test]
    fn an_immediate_reply_goes_out_at_once_when_nothing_is_owed() {
        let mut replies = Replies::default();
        assert_eq!(
            replies.immediate(Bytes::from("pong")),
            Some(Bytes::from("pong"))
        );
    }

    /// send, ping, send, ping: each pong waits for the sends before it, and
    /// only those.
    #[test]
    fn immediate_replies_wait_for_the_earlier_replies_only() {
        let mut replies = Replies::default();
        replies.expect_later();
        assert_eq!(replies.immediate(Bytes::from("pong 1")), None);
        replies.expect_later();
        assert_eq!(replies.immediate(Bytes::from("pong 2")), None);
        assert_eq!(replies.held(), 2);
        replies.answered();
        assert_eq!(due(&mut replies), [Bytes::from("pong 1")]);
        assert!(replies.owed());
        replies.answered();
        assert_eq!(due(&mut replies), [Bytes::from("pong 2")]);
        assert!(!replies.owed());
        assert_eq!(replies.held(), 0);
    }
}
