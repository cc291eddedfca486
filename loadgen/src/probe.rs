//! What a load message carries, so that any connection can tell whose it is
//! and when it was (meant to be) sent without shared state between tasks.
//!
//! A body reads `sbload TAG u=USER n=SEQ t=MICROS`, where `TAG` names the run
//! (user names start with it too), and `MICROS` is the send time, counted from
//! the run's [`Clock`] origin: the moment it was written in the closed loop,
//! the moment it was scheduled in the open loop.

use std::time::Instant;

use bytes::BufMut;

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

    /// Appends [`Probe::body`] to `buf`, without formatting machinery or a
    /// `String` in between: one is written for every message of the run.
    pub fn write_body(&self, tag: &str, buf: &mut impl BufMut) {
        buf.put_slice(b"sbload ");
        buf.put_slice(tag.as_bytes());
        buf.put_slice(b" u=");
        write_decimal(u64::from(self.user), buf);
        buf.put_slice(b" n=");
        write_decimal(self.seq, buf);
        buf.put_slice(b" t=");
        write_decimal(self.sent_us, buf);
    }

    /// The probe in `body`, if it is one of this run's (`tag`). Strict: only
    /// what [`Probe::body`] writes (no leading zeros, no signs), so a body
    /// parses to a probe exactly when it is byte for byte that probe's body,
    /// and comparing probes compares bodies.
    pub fn parse(body: impl AsRef<[u8]>, tag: &str) -> Option<Probe> {
        let rest = body
            .as_ref()
            .strip_prefix(b"sbload ")?
            .strip_prefix(tag.as_bytes())?;
        let (user, rest) = field(rest, b" u=")?;
        let (seq, rest) = field(rest, b" n=")?;
        let (sent_us, rest) = field(rest, b" t=")?;
        if !rest.is_empty() {
            return None;
        }
        Some(Probe {
            user: u32::try_from(user).ok()?,
            seq,
            sent_us,
        })
    }
}

/// `name` then a decimal number as [`write_decimal`] writes it; returns the
/// number and what follows it.
fn field<'a>(bytes: &'a [u8], name: &[u8]) -> Option<(u64, &'a [u8])> {
    let rest = bytes.strip_prefix(name)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let mut value: u64 = 0;
    for digit in &rest[..digits] {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some((value, &rest[digits..]))
}

/// Appends `value` in decimal.
pub fn write_decimal(mut value: u64, buf: &mut impl BufMut) {
    /// `u64::MAX` has 20 digits.
    const MAX_DIGITS: usize = 20;
    let mut digits = [0u8; MAX_DIGITS];
    let mut start = MAX_DIGITS;
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    buf.put_slice(&digits[start..]);
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

    #[test]
    fn only_the_exact_body_parses() {
        let probe = Probe {
            user: 0,
            seq: u64::MAX,
            sent_us: 10,
        };
        let mut written = Vec::new();
        probe.write_body("Labc", &mut written);
        assert_eq!(written, probe.body("Labc").as_bytes());
        assert_eq!(Probe::parse(&written, "Labc"), Some(probe));
        for near in [
            "sbload Labc u=07 n=1 t=1",
            "sbload Labc u=+7 n=1 t=1",
            "sbload Labc u=7 n=1 t=1 ",
            "sbload Labc  u=7 n=1 t=1",
            "sbload Labcd u=7 n=1 t=1",
            "sbload Labc u=4294967296 n=1 t=1",
            "sbload Labc u=7 n=1 t=99999999999999999999",
        ] {
            assert_eq!(Probe::parse(near, "Labc"), None, "{near}");
        }
    }
}
