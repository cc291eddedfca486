//! What a load message carries, so that any connection can tell whose it is
//! and when it was (meant to be) sent without shared state between tasks.
//!
//! A body reads `sbload TAG u=USER n=SEQ t=MICROS`, where `TAG` names the run
//! (user names start with it too), and `MICROS` is the send time, counted from
//! the run's [`Clock`] origin: the moment it was written in the closed loop,
//! the moment it was scheduled in the open loop.

use std::time::Instant;

/// One origin for every time stamp in the run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Microseconds since the origin.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant `micros` after the origin.
    pub fn at(&self, micros: u64) -> Instant {
        self.origin + std::time::Duration::from_micros(micros)
    }
}

/// The fields of a load message's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub user: u32,
    pub seq: u64,
    pub sent_us: u64,
}

impl Probe {
    pub fn body(&self, tag: &str) -> String {
        format!(
            "sbload {tag} u={} n={} t={}",
            self.user, self.seq, self.sent_us
        )
    }

    /// The probe in `body`, if it is one of this run's (`tag`).
    pub fn parse(body: &str, tag: &str) -> Option<Probe> {
        let rest = body.strip_prefix("sbload ")?.strip_prefix(tag)?;
        let mut fields = rest.split_ascii_whitespace();
        let user = fields.next()?.strip_prefix("u=")?.parse().ok()?;
        let seq = fields.next()?.strip_prefix("n=")?.parse().ok()?;
        let sent_us = fields.next()?.strip_prefix("t=")?.parse().ok()?;
        fields
            .next()
            .is_none()
            .then_some(Probe { user, seq, sent_us })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_round_trips_and_other_runs_are_not_ours() {
        let probe = Probe {
            user: 7,
            seq: 42,
            sent_us: 123_456,
        };
        let body = probe.body("Labc");
        assert_eq!(body, "sbload Labc u=7 n=42 t=123456");
        assert_eq!(Probe::parse(&body, "Labc"), Some(probe));
        assert_eq!(Probe::parse(&body, "Lxyz"), None);
        assert_eq!(Probe::parse("hello", "Labc"), None);
        assert_eq!(Probe::parse("sbload Labc u=7 n=42", "Labc"), None);
    }
}
