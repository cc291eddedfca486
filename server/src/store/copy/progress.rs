//! What `switchboard copy` tells the operator while it runs and when it is
//! done: [`CopyProgress`] lines, paced by [`Pace`], and the
//! [`CopySummary`]. Pure: `main.rs` prints them on stdout.

use std::fmt;
use std::time::{Duration, Instant};

use super::records::Kind;

/// At most one progress line per kind this often, so a million messages
/// make a few lines, not one per batch.
pub(in crate::store) const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Rows per [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts([u64; Kind::ALL.len()]);

impl Counts {
    pub fn get(&self, kind: Kind) -> u64 {
        self.0[kind.index()]
    }

    pub(in crate::store) fn set(&mut self, kind: Kind, rows: u64) {
        self.0[kind.index()] = rows;
    }
}

/// `3 agents, 4 users, 25 messages, …`.
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Kind::ALL
            .iter()
            .map(|&kind| format!("{} {kind}", self.get(kind)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// One line of progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyProgress {
    /// The SQLite file had an older schema and was upgraded in place first,
    /// as `switchboard serve` would have.
    Upgraded { from: i32, to: i32 },
    /// What the SQLite file holds, counted in the snapshot being copied.
    Found(Counts),
    /// `done` rows of `kind` of `of` are written (not yet committed).
    Copying { kind: Kind, done: u64, of: u64 },
    /// Everything is written; committing.
    Committing,
}

impl fmt::Display for CopyProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyProgress::Upgraded { from, to } => write!(
                f,
                "upgraded the SQLite schema from version {from} to {to} first"
            ),
            CopyProgress::Found(counts) => write!(f, "found {counts}"),
            CopyProgress::Copying { kind, done, of } => {
                let percent = if *of == 0 { 100 } else { done * 100 / of };
                write!(f, "{kind}: {done} of {of} ({percent}%)")
            }
            CopyProgress::Committing => f.write_str("committing"),
        }
    }
}

/// When the next [`CopyProgress::Copying`] line is due: a kind's first
/// batch, then at most every [`PROGRESS_INTERVAL`], and always its last.
#[derive(Debug, Default)]
pub(in crate::store) struct Pace {
    last: Option<Instant>,
}

impl Pace {
    /// Whether to print now; `finished` says the kind is all written.
    pub(in crate::store) fn due(&mut self, now: Instant, finished: bool) -> bool {
        let due = finished
            || self
                .last
                .is_none_or(|last| now.duration_since(last) >= PROGRESS_INTERVAL);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// What was copied, once committed.
#[derive(Debug, Clone)]
pub struct CopySummary {
    /// The SQLite file, as given.
    pub from: String,
    /// The database, shown without its password.
    pub to: String,
    pub counts: Counts,
    /// The id the next message gets.
    pub next_message_id: u64,
    pub elapsed: Duration,
}

/// A table of counts, then where new messages continue and what to do next.
impl fmt::Display for CopySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "copied {} to {} in {:.1} s:",
            self.from,
            self.to,
            self.elapsed.as_secs_f64()
        )?;
        for kind in Kind::ALL {
            writeln!(f, "  {:<18}{:>12}", kind.to_string(), self.counts.get(kind))?;
        }
        writeln!(
            f,
            "new messages continue from id {}, stamped after the newest copied",
            self.next_message_id
        )?;
        write!(
            f,
            "next: start the server with `switchboard serve --postgres URL`; keep {} as a \
             backup and do not serve it again (docs/cluster.md, \"Moving from one SQLite node\")",
            self.from
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_per_kind_at_first_then_at_most_every_interval_and_always_the_last() {
        let start = Instant::now();
        let mut pace = Pace::default();
        assert!(pace.due(start, false), "the first batch");
        assert!(!pace.due(start + Duration::from_millis(500), false));
        assert!(pace.due(start + PROGRESS_INTERVAL, false));
        assert!(!pace.due(start + PROGRESS_INTERVAL, false));
        assert!(pace.due(start + PROGRESS_INTERVAL, true), "the last");
    }

    #[test]
    fn lines_say_how_far() {
        let line = CopyProgress::Copying {
            kind: Kind::Messages,
            done: 250,
            of: 1_000,
        };
        assert_eq!(line.to_string(), "messages: 250 of 1000 (25%)");
        let empty = CopyProgress::Copying {
            kind: Kind::ReleasesDue,
            done: 0,
            of: 0,
        };
        assert_eq!(empty.to_string(), "releases due: 0 of 0 (100%)");
    }

    #[test]
    fn the_summary_counts_every_kind_and_says_what_next() {
        let mut counts = Counts::default();
        for (kind, rows) in Kind::ALL.into_iter().zip(1..) {
            counts.set(kind, rows);
        }
        assert_eq!(
            counts.to_string(),
            "1 agents, 2 users, 3 messages, 4 waiting messages, 5 idempotency keys, \
             6 releases due"
        );
        let summary = CopySummary {
            from: "desk.db".into(),
            to: "postgres://sb@db:5432/desk".into(),
            counts,
            next_message_id: 4,
            elapsed: Duration::from_millis(1_300),
        };
        let text = summary.to_string();
        assert!(
            text.starts_with("copied desk.db to postgres://sb@db:5432/desk in 1.3 s:\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  messages                     3\n"),
            "{text}"
        );
        assert!(text.contains("from id 4"), "{text}");
        assert!(text.contains("switchboard serve --postgres"), "{text}");
    }
}
