//! Where each pane goes on a screen of a given size, and how the input line
//! takes up room (its prompt, the text wrapped by characters).
//!
//! Neutral ground between the model and the view: `update` asks it how wide
//! and tall the message area is, so that scrollback agrees with drawing, and
//! `ui` asks it where to draw. It imports neither: the app describes itself
//! to it as a [`Shape`].

use ratatui::layout::Rect;
use unicode_width::UnicodeWidthChar;

use crate::mode::Mode;
use crate::text;

/// The most rows the input grows to before it scrolls.
pub const INPUT_ROWS_MAX: u16 = 6;

/// The longest name the prompt shows before cutting it.
const PROMPT_NAME_COLUMNS: usize = 12;

/// Where each pane goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    /// Agent mode only.
    pub queue: Option<Rect>,
    /// The line above the messages naming the conversation (agent mode).
    pub title: Option<Rect>,
    pub messages: Rect,
    pub input: Rect,
    pub footer: Rect,
}

/// Whom the input writes to, which its prompt says: agents see the name, so
/// no one types into the wrong conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt<'a> {
    /// User mode: always one's own conversation.
    User,
    /// Agent mode, with no conversation selected.
    NoOneSelected,
    /// Agent mode: the selected customer, `locked` if another agent holds it.
    To { user: &'a str, locked: bool },
    /// Agent mode, note mode (protocol version 2): a private note into the
    /// selected customer's conversation, for the agents only.
    Note { user: &'a str },
}

impl Prompt<'_> {
    /// `› ` for users, `to ana › ` for agents.
    pub fn text(&self) -> String {
        match *self {
            Prompt::User => "› ".to_owned(),
            Prompt::NoOneSelected => "no one selected › ".to_owned(),
            Prompt::To { user, locked } => {
                let to = text::truncate(user, PROMPT_NAME_COLUMNS);
                if locked {
                    format!("to {to} (locked) › ")
                } else {
                    format!("to {to} › ")
                }
            }
            Prompt::Note { user } => {
                format!("note {} › ", text::truncate(user, PROMPT_NAME_COLUMNS))
            }
        }
    }

    /// Columns the prompt takes.
    pub fn width(&self) -> u16 {
        u16::try_from(text::width(&self.text())).unwrap_or(u16::MAX)
    }

    /// The prompt on an input `columns` wide: whole while it leaves at
    /// least half the row for the text, else `› ` (`! › ` when locked),
    /// so the text being typed always shows (first-hour findings: at 25
    /// columns the agent saw only `to carl`). The header still says whose
    /// conversation it is.
    pub fn text_within(&self, columns: u16) -> String {
        if self.width().saturating_mul(2) <= columns {
            return self.text();
        }
        match *self {
            Prompt::To { locked: true, .. } => "! › ".to_owned(),
            Prompt::Note { .. } => "note › ".to_owned(),
            _ => "› ".to_owned(),
        }
    }

    /// Columns [`Prompt::text_within`] takes.
    pub fn width_within(&self, columns: u16) -> u16 {
        u16::try_from(text::width(&self.text_within(columns))).unwrap_or(u16::MAX)
    }
}

/// What of the app decides where the panes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape<'a> {
    pub mode: Mode,
    pub prompt: Prompt<'a>,
    /// The text being typed and the cursor's byte offset in it.
    pub draft: &'a str,
    pub cursor: usize,
}

impl Shape<'_> {
    /// Rows the text being typed takes at `width` columns (at least 1).
    pub fn input_rows(&self, width: u16) -> u16 {
        let (rows, _) = layout_text(self.draft, self.cursor, usize::from(width));
        u16::try_from(rows.len()).unwrap_or(u16::MAX)
    }
}

/// The text cut into rows of at most `width` columns, and the cursor's
/// (row, column). Rows break after a space when the word that overflows
/// began on the row (first-hour findings: the input broke words in the
/// middle, where the transcript wraps on words); a word longer than a row
/// is cut where it must be.
pub fn layout_text(text: &str, cursor: usize, width: usize) -> (Vec<String>, (usize, usize)) {
    let width = width.max(1);
    let mut rows = vec![String::new()];
    let mut column = 0;
    let mut at = (0, 0);
    // In the current row: the byte offset and the column just after its
    // last space, where it may break.
    let mut break_after: Option<(usize, usize)> = None;
    for (i, c) in text.char_indices() {
        if c == '\n' {
            if i == cursor {
                at = (rows.len() - 1, column);
            }
            rows.push(String::new());
            column = 0;
            break_after = None;
            continue;
        }
        let (c, w) = match c {
            '\t' => (' ', 1),
            c => (c, c.width().unwrap_or(0)),
        };
        if column + w > width {
            let row = rows.len() - 1;
            match break_after {
                // The overflowing word moves whole to the next row.
                Some((byte, after)) if c != ' ' && after < column => {
                    let tail = rows[row].split_off(byte);
                    rows.push(tail);
                    column -= after;
                    if at.0 == row && at.1 >= after && cursor < i {
                        at = (row + 1, at.1 - after);
                    }
                    if column + w > width {
                        rows.push(String::new());
                        column = 0;
                    }
                }
                _ => {
                    rows.push(String::new());
                    column = 0;
                }
            }
            break_after = None;
        }
        if i == cursor {
            at = (rows.len() - 1, column);
        }
        if let Some(row) = rows.last_mut() {
            row.push(c);
            column += w;
            if c == ' ' {
                break_after = Some((row.len(), column));
            }
        }
    }
    if cursor >= text.len() {
        if column >= width {
            rows.push(String::new());
            column = 0;
        }
        at = (rows.len() - 1, column);
    }
    (rows, at)
}

/// How wide the queue is in a terminal `width` columns wide.
fn queue_width(width: u16) -> u16 {
    if width < 60 {
        (width * 2 / 5).max(16).min(width)
    } else {
        (width / 3).clamp(28, 40)
    }
}

/// Splits `area` into panes. Pure arithmetic: safe for any size, even 0×0.
pub fn layout(shape: &Shape<'_>, area: Rect) -> Areas {
    let header = Rect {
        height: area.height.min(1),
        ..area
    };
    let footer_height = u16::from(area.height >= 2);
    let footer = Rect {
        y: area.bottom().saturating_sub(footer_height),
        height: footer_height,
        ..area
    };
    let middle_top = header.bottom();
    let middle = Rect {
        y: middle_top,
        height: footer.y.saturating_sub(middle_top),
        ..area
    };

    let (queue, right) = match shape.mode {
        Mode::User => (None, middle),
        Mode::Agent => {
            let q = queue_width(middle.width);
            let queue = Rect { width: q, ..middle };
            // One column of separator between the queue and the conversation.
            let x = (middle.x + q + 1).min(middle.right());
            let right = Rect {
                x,
                width: middle.right().saturating_sub(x),
                ..middle
            };
            (Some(queue), right)
        }
    };

    let content_width = right
        .width
        .saturating_sub(shape.prompt.width_within(right.width));
    let input_rows = shape.input_rows(content_width).min(INPUT_ROWS_MAX);
    // A rule above the input, then its rows; never more than half the pane.
    let input_height = (input_rows + 1)
        .min(right.height / 2)
        .max(right.height.min(1));
    let input = Rect {
        y: right.bottom().saturating_sub(input_height),
        height: input_height,
        ..right
    };
    let title_height = u16::from(shape.mode == Mode::Agent && input.y > right.y);
    let title = (shape.mode == Mode::Agent).then_some(Rect {
        height: title_height,
        ..right
    });
    let messages = Rect {
        y: right.y + title_height,
        height: input.y.saturating_sub(right.y + title_height),
        ..right
    };
    Areas {
        header,
        queue,
        title,
        messages,
        input,
        footer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_by_columns_and_tracks_the_cursor() {
        assert_eq!(layout_text("", 0, 10), (vec![String::new()], (0, 0)));
        assert_eq!(layout_text("abc", 3, 10), (vec!["abc".into()], (0, 3)));
        assert_eq!(
            layout_text("abcdef", 1, 4),
            (vec!["abcd".into(), "ef".into()], (0, 1))
        );
        assert_eq!(
            layout_text("ab\ncd", 5, 10),
            (vec!["ab".into(), "cd".into()], (1, 2))
        );
        // A full last row puts the cursor at the start of the next one.
        assert_eq!(
            layout_text("abcd", 4, 4),
            (vec!["abcd".into(), String::new()], (1, 0))
        );
    }

    /// Rows break between words, the cursor following the word it is in;
    /// a word longer than a row is cut where it must be.
    #[test]
    fn text_wraps_between_words() {
        let rows = |text: &str, width| layout_text(text, text.len(), width).0;
        assert_eq!(rows("input box here", 10), ["input box ", "here"]);
        assert_eq!(rows("input box here", 7), ["input ", "box ", "here"]);
        assert_eq!(rows("the input box", 11), ["the input ", "box"]);
        assert_eq!(rows("abcdefghij kl", 4), ["abcd", "efgh", "ij ", "kl"]);
        // The cursor on the `b` of `box`, which moved to the next row.
        assert_eq!(layout_text("the input box", 10, 11).1, (1, 0));
        assert_eq!(layout_text("the input box", 11, 11).1, (1, 1));
        // Before the break, it stays.
        assert_eq!(layout_text("the input box", 4, 11).1, (0, 4));
    }
}
