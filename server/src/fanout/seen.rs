//! What a subscribed connection has already been sent: a run of message
//! ids, so that a `subscribe since=…` on a live connection leaves those out
//! of its backlog (issue 15, finding 6).
//!
//! A client re-subscribes with the last id it has *read*; messages already
//! in its outbox or on the wire are newer than that, so a backlog "after
//! `since`" sent them a second time, after messages newer still (the attack
//! test saw 163, 164, 163). The router knows what it has queued for each
//! connection, and leaves it out.
//!
//! The run claims that *every* message the connection may see with an id
//! in `(after, upto]` is in its outbox already. The claim must never be
//! wider than the truth (a message left out of a backlog on its strength is
//! lost to that client), so the run is forgotten whenever the connection's
//! stream gets a gap (a plain re-subscribe drops the live events its
//! backlog was meant to hold), and it grows only by live delivery in commit
//! order (ids increase with commit order) or by a `since` backlog, which
//! holds every message after `since` up to its snapshot.

/// A run of message ids a connection has been sent, without a gap.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    /// `(after, upto)`: every message it may see with `after < id <= upto`.
    run: Option<(u64, u64)>,
}

impl Seen {
    /// A message queued live (in commit order, with no gap since the run
    /// began).
    pub(super) fn delivered(&mut self, id: u64) {
        match &mut self.run {
            Some((_, upto)) => *upto = (*upto).max(id),
            None => self.run = Some((id.saturating_sub(1), id)),
        }
    }

    /// [`Seen::delivered`] for an event that carries a message.
    pub(super) fn delivered_opt(&mut self, message: Option<u64>) {
        if let Some(id) = message {
            self.delivered(id);
        }
    }

    /// Whether the message is already in the connection's outbox.
    pub(super) fn has(&self, id: u64) -> bool {
        matches!(self.run, Some((after, upto)) if after < id && id <= upto)
    }

    /// A `since` backlog was queued: it holds every message after `since`
    /// up to its snapshot (`newest` is the last id it held, if any), and
    /// live events of later commits follow it.
    pub(super) fn resumed(&mut self, since: u64, newest: Option<u64>) {
        let (after, upto) = match self.run {
            // The backlog reaches back to the run, or overlaps it: one run.
            Some((after, upto)) if since <= upto => (after.min(since), upto),
            _ => (since, since),
        };
        self.run = Some((after, newest.map_or(upto, |newest| newest.max(upto))));
    }

    /// The stream got a gap: claim nothing until live delivery starts a new
    /// run.
    pub(super) fn forget(&mut self) {
        self.run = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_delivery_makes_a_run_from_its_first_message() {
        let mut seen = Seen::default();
        assert!(!seen.has(1));
        seen.delivered(5);
        seen.delivered(9);
        assert!(!seen.has(4));
        assert!(seen.has(5) && seen.has(7) && seen.has(9));
        assert!(!seen.has(10));
    }

    #[test]
    fn a_resume_that_reaches_the_run_joins_it_and_one_past_it_starts_anew() {
        let mut seen = Seen::default();
        seen.delivered(5);
        seen.delivered(6);
        seen.resumed(3, Some(8));
        assert!(seen.has(4) && seen.has(8) && !seen.has(3) && !seen.has(9));
        seen.resumed(20, Some(25));
        assert!(!seen.has(8), "the gap 9..=20 was never sent");
        assert!(seen.has(21) && seen.has(25));
        seen.resumed(30, None);
        assert!(!seen.has(25) && !seen.has(31));
        seen.forget();
        assert!(!seen.has(30));
    }
}
