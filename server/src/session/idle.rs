//! When a signed-in connection that does nothing is closed.
//!
//! A connection slot is worth holding only for a conversation. Without a
//! bound, a few addresses could sign in on every slot and sit there (the
//! per-address cap only divides the slots among them). A signed-in
//! connection that has not subscribed is closed after `--idle-timeout`
//! without a `send` or `release`; `ping`, `history` and the like do not
//! count, or a keep-alive loop would hold a slot for ever. Subscribing ends
//! the clock for good: a subscribed connection is someone waiting for
//! events, which may be quiet for hours.

use tokio::time::{Duration, Instant};

use crate::cmd::Command;

/// The idle deadline of one connection.
#[derive(Debug)]
pub(super) struct IdleClock {
    /// `None`: no idle timeout (`--idle-timeout 0`).
    timeout: Option<Duration>,
    deadline: Option<Instant>,
}

impl IdleClock {
    pub(super) fn new(timeout: Duration) -> Self {
        Self {
            timeout: (!timeout.is_zero()).then_some(timeout),
            deadline: None,
        }
    }

    /// The connection signed in at `now`: the clock starts.
    pub(super) fn start(&mut self, now: Instant) {
        self.deadline = self.timeout.map(|timeout| now + timeout);
    }

    /// The connection made `command` at `now`.
    pub(super) fn saw(&mut self, command: &Command, now: Instant) {
        match command {
            Command::Subscribe(_) => self.timeout = None,
            Command::Send(_) | Command::ChangeConversation(_) => {}
            Command::History(_) | Command::Ping | Command::Bye => return,
        }
        self.start(now);
    }

    /// When the connection is closed unless it does something first.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The timeout, for the message that says why the connection closed.
    pub(super) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::{Name, Role};

    use super::*;
    use crate::cmd::lifecycle::ChangeConversation;
    use crate::cmd::subscribe::Subscribe;
    use crate::identity::Identity;
    use crate::store::Lifecycle;

    /// A write: an agent's `release` (a `send` needs the server's services
    /// to parse; the clock treats both alike).
    fn a_write() -> Command {
        let alice = Identity {
            role: Role::Agent,
            name: Name::parse("alice").expect("a valid name"),
            credential: crate::identity::Credential::new(b"t"),
        };
        Command::ChangeConversation(
            ChangeConversation::parse(&alice, "ana", Lifecycle::Release).expect("a valid release"),
        )
    }

    #[test]
    fn runs_from_sign_in_and_restarts_on_a_write_but_not_a_ping() {
        let mut clock = IdleClock::new(Duration::from_secs(300));
        assert_eq!(clock.deadline(), None, "not before sign-in");
        let start = Instant::now();
        clock.start(start);
        assert_eq!(clock.deadline(), Some(start + Duration::from_secs(300)));
        clock.saw(&Command::Ping, start + Duration::from_secs(100));
        assert_eq!(clock.deadline(), Some(start + Duration::from_secs(300)));
        let later = start + Duration::from_secs(200);
        clock.saw(&a_write(), later);
        assert_eq!(clock.deadline(), Some(later + Duration::from_secs(300)));
    }

    #[test]
    fn subscribing_ends_it_for_good() {
        let mut clock = IdleClock::new(Duration::from_secs(300));
        let start = Instant::now();
        clock.start(start);
        clock.saw(
            &Command::Subscribe(Subscribe::parse(Role::User, None, None)),
            start,
        );
        assert_eq!(clock.deadline(), None);
        clock.saw(&a_write(), start);
        assert_eq!(clock.deadline(), None);
    }

    #[test]
    fn zero_turns_it_off() {
        let mut clock = IdleClock::new(Duration::ZERO);
        clock.start(Instant::now());
        assert_eq!(clock.deadline(), None);
    }
}
