//! The input: a rule, then the prompt (`to ana ›` for agents, so no one types
//! into the wrong conversation) and the text being typed, wrapped by
//! characters, growing up to a few rows and then following the cursor.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthChar;

use crate::app::{App, Mode};
use crate::text;

/// The longest name the prompt shows before cutting it.
const PROMPT_NAME_COLUMNS: usize = 12;

pub struct InputPane<'a> {
    pub app: &'a App,
}

/// The prompt text and its style: `› ` for users, `to ana › ` for agents.
fn prompt(app: &App) -> (String, Style) {
    match app.mode {
        Mode::User => ("› ".to_owned(), Style::default().fg(Color::LightCyan)),
        Mode::Agent => match app.current() {
            None => (
                "no one selected › ".to_owned(),
                Style::default().fg(Color::DarkGray),
            ),
            Some(c) => {
                let to = text::truncate(c.user.as_str(), PROMPT_NAME_COLUMNS);
                let locked = c.holder.as_ref().is_some_and(|h| *h != app.me);
                if locked {
                    (
                        format!("to {to} (locked) › "),
                        Style::default()
                            .fg(Color::LightRed)
                            .add_modifier(Modifier::BOLD),
                    )
                } else {
                    (
                        format!("to {to} › "),
                        Style::default()
                            .fg(Color::LightCyan)
                            .add_modifier(Modifier::BOLD),
                    )
                }
            }
        },
    }
}

pub fn prompt_width(app: &App) -> u16 {
    u16::try_from(text::width(&prompt(app).0)).unwrap_or(u16::MAX)
}

/// Rows the text takes at `width` columns (at least 1).
pub fn rows(app: &App, width: u16) -> u16 {
    let (rows, _) = layout_text(app.editor.text(), app.editor.cursor(), usize::from(width));
    u16::try_from(rows.len()).unwrap_or(u16::MAX)
}

/// The text cut into rows of at most `width` columns, and the cursor's
/// (row, column).
fn layout_text(text: &str, cursor: usize, width: usize) -> (Vec<String>, (usize, usize)) {
    let width = width.max(1);
    let mut rows = vec![String::new()];
    let mut column = 0;
    let mut at = (0, 0);
    for (i, c) in text.char_indices() {
        if i == cursor {
            at = (rows.len() - 1, column);
        }
        if c == '\n' {
            rows.push(String::new());
            column = 0;
            continue;
        }
        let (c, w) = match c {
            '\t' => (' ', 1),
            c => (c, c.width().unwrap_or(0)),
        };
        if column + w > width {
            rows.push(String::new());
            column = 0;
        }
        if let Some(row) = rows.last_mut() {
            row.push(c);
        }
        column += w;
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

impl InputPane<'_> {
    /// The first row shown, so that the cursor's row is visible.
    fn first_row(cursor_row: usize, visible: usize) -> usize {
        (cursor_row + 1).saturating_sub(visible)
    }

    /// Where the terminal cursor goes, if the pane has room for it.
    pub fn cursor(&self, area: Rect) -> Option<Position> {
        if area.height < 2 {
            return None;
        }
        let pw = prompt_width(self.app);
        let width = area.width.saturating_sub(pw);
        let (_, (row, column)) = layout_text(
            self.app.editor.text(),
            self.app.editor.cursor(),
            usize::from(width),
        );
        let visible = usize::from(area.height - 1);
        let row = row - Self::first_row(row, visible);
        let x = area.x + pw + u16::try_from(column).unwrap_or(0);
        let y = area.y + 1 + u16::try_from(row).unwrap_or(0);
        (x < area.right() && y < area.bottom()).then_some(Position { x, y })
    }
}

impl Widget for &InputPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let app = self.app;
        let rule = "─".repeat(usize::from(area.width));
        buf.set_line(
            area.x,
            area.y,
            &Line::styled(rule, super::dim()),
            area.width,
        );
        if area.height < 2 {
            return;
        }
        let (prompt, style) = prompt(app);
        let pw = prompt_width(app);
        let width = area.width.saturating_sub(pw);
        let (rows, (cursor_row, _)) =
            layout_text(app.editor.text(), app.editor.cursor(), usize::from(width));
        let visible = usize::from(area.height - 1);
        let first = InputPane::first_row(cursor_row, visible);
        buf.set_line(area.x, area.y + 1, &Line::styled(prompt, style), area.width);
        if app.editor.is_empty() {
            let hint = match app.mode {
                Mode::User => "type a message, Enter sends · ? help",
                Mode::Agent => "type an answer, Enter sends · ? help",
            };
            let hint = text::truncate(hint, usize::from(width));
            buf.set_line(
                area.x + pw.min(area.width),
                area.y + 1,
                &Line::styled(hint, super::dim()),
                width,
            );
            return;
        }
        for (i, row) in rows.iter().skip(first).take(visible).enumerate() {
            let y = area.y + 1 + u16::try_from(i).unwrap_or(0);
            let x = area.x + pw.min(area.width);
            buf.set_line(x, y, &Line::from(Span::raw(row.as_str())), width);
        }
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
}
