//! Text layout shared by `update` (to keep scrollback still) and the panes (to
//! draw): word wrapping by display width, truncation, and local times.
//!
//! Both sides must agree on how many lines a message takes, so this is the one
//! place that decides it.

use chrono::{DateTime, Local, TimeZone};
use switchboard_protocol::Timestamp;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns a tab is drawn as inside a message body.
const TAB_COLUMNS: usize = 4;

/// `text` cut into lines of at most `width` columns: explicit newlines are
/// kept, long lines break at spaces, and words longer than a line are split.
/// An empty text is one empty line; `width` 0 is treated as 1.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for raw in text.split('\n') {
        let raw = raw
            .replace('\t', &" ".repeat(TAB_COLUMNS))
            .replace(is_bidi_control, "");
        wrap_line(&raw, width, &mut lines);
    }
    lines
}

/// Bidirectional formatting characters (embeddings, overrides, isolates).
/// The protocol lets them into bodies, as right-to-left scripts use them,
/// but a terminal that honours them would let a customer make a message
/// read differently on the agent's screen (an override reverses what
/// follows), so the panes draw bodies without them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Columns a message body is indented under its header line.
pub const MESSAGE_INDENT: usize = 2;

/// Lines one message takes in a pane `width` columns wide: its header line
/// (time and sender) and its indented, wrapped body.
pub fn message_height(body: &str, width: usize) -> usize {
    1 + wrapped_height(body, width.saturating_sub(MESSAGE_INDENT))
}

/// How many lines [`wrap`] gives, without building them.
pub fn wrapped_height(text: &str, width: usize) -> usize {
    // Messages are short; building the lines is cheap and keeps one code path.
    wrap(text, width).len()
}

fn wrap_line(line: &str, width: usize, out: &mut Vec<String>) {
    if line.width() <= width {
        out.push(line.to_owned());
        return;
    }
    let mut current = String::new();
    let mut current_width = 0;
    for word in split_keep_spaces(line) {
        let word_width = word.width();
        if current_width + word_width <= width {
            current.push_str(word);
            current_width += word_width;
            continue;
        }
        if word.trim().is_empty() {
            // A space at the break: end the line here and drop the space.
            out.push(std::mem::take(&mut current));
            current_width = 0;
            continue;
        }
        if !current.is_empty() {
            out.push(std::mem::take(&mut current).trim_end().to_owned());
            current_width = 0;
        }
        // A word longer than a line is split by characters.
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if current_width + w > width && !current.is_empty() {
                out.push(std::mem::take(&mut current));
                current_width = 0;
            }
            current.push(c);
            current_width += w;
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
}

/// Words and the runs of spaces between them, in order.
fn split_keep_spaces(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let is_space = first == ' ';
        let end = rest
            .char_indices()
            .find(|(_, c)| (*c == ' ') != is_space)
            .map_or(rest.len(), |(i, _)| i);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// `text` cut to at most `width` columns, with `…` when something was cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Display width in terminal columns.
pub fn width(text: &str) -> usize {
    text.width()
}

fn local(ts: Timestamp) -> Option<DateTime<Local>> {
    Local.timestamp_micros(ts.as_micros()).single()
}

/// A message time in local time: `14:03` today, `11-24 14:03` on other days.
pub fn clock(ts: Timestamp, now: Timestamp) -> String {
    match (local(ts), local(now)) {
        (Some(t), Some(n)) if t.date_naive() == n.date_naive() => t.format("%H:%M").to_string(),
        (Some(t), _) => t.format("%m-%d %H:%M").to_string(),
        (None, _) => "--:--".to_owned(),
    }
}

/// How long ago `ts` was, in one short unit: `42s`, `5m`, `3h`, `2d`.
pub fn age(ts: Timestamp, now: Timestamp) -> String {
    let seconds = (now.as_micros() - ts.as_micros()).max(0) / 1_000_000;
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_splits_long_words() {
        assert_eq!(wrap("hello world", 20), vec!["hello world"]);
        assert_eq!(wrap("hello world", 5), vec!["hello", "world"]);
        assert_eq!(wrap("hello world", 8), vec!["hello", "world"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\nb", 10), vec!["a", "b"]);
        assert_eq!(wrap("", 10), vec![""]);
        assert_eq!(wrap("x", 0), vec!["x"]);
    }

    #[test]
    fn wrap_leaves_out_bidirectional_overrides() {
        // "pay to ann" with an override that would show "nna ot yap".
        assert_eq!(
            wrap("ok \u{202E}pay to ann\u{202C} \u{2067}x\u{2069}", 40),
            vec!["ok pay to ann x"]
        );
        assert_eq!(wrapped_height("\u{202E}", 10), 1);
    }

    #[test]
    fn wrap_counts_wide_characters_by_columns() {
        assert_eq!(wrap("日本語です", 4), vec!["日本", "語で", "す"]);
        for line in wrap("ünïcödé wörds everywhere", 7) {
            assert!(line.width() <= 7, "{line:?}");
        }
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("alice", 10), "alice");
        assert_eq!(truncate("alexandria", 5), "alex…");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn ages_use_one_unit() {
        let t = |s: i64| Timestamp::from_micros(s * 1_000_000);
        assert_eq!(age(t(0), t(42)), "42s");
        assert_eq!(age(t(0), t(300)), "5m");
        assert_eq!(age(t(0), t(3 * 3_600)), "3h");
        assert_eq!(age(t(0), t(2 * 86_400)), "2d");
        assert_eq!(age(t(10), t(0)), "0s");
    }
}
