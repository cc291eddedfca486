//! The input: a rule, then the prompt (`to ana ›` for agents, so no one types
//! into the wrong conversation) and the text being typed, wrapped by
//! characters, growing up to a few rows and then following the cursor.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::{App, Mode};
use crate::layout::{Prompt, layout_text};
use crate::text;

pub struct InputPane<'a> {
    pub app: &'a App,
}

/// The prompt text and its style on an input `columns` wide: `› ` for
/// users, `to ana › ` for agents (shorter on a narrow input).
fn prompt(app: &App, columns: u16) -> (String, Style) {
    let prompt = app.prompt();
    let style = match prompt {
        Prompt::User => Style::default().fg(Color::LightCyan),
        Prompt::NoOneSelected => Style::default().fg(Color::DarkGray),
        Prompt::To { locked: true, .. } => Style::default()
            .fg(Color::LightRed)
            .add_modifier(Modifier::BOLD),
        Prompt::To { locked: false, .. } => Style::default()
            .fg(Color::LightCyan)
            .add_modifier(Modifier::BOLD),
        // The notes' colour: what is typed here the customer never sees.
        Prompt::Note { .. } => super::note_style().add_modifier(Modifier::BOLD),
    };
    (prompt.text_within(columns), style)
}

fn prompt_width(app: &App, columns: u16) -> u16 {
    app.prompt().width_within(columns)
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
        let pw = prompt_width(self.app, area.width);
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
        let (prompt, style) = prompt(app, area.width);
        let pw = prompt_width(app, area.width);
        let width = area.width.saturating_sub(pw);
        let (rows, (cursor_row, _)) =
            layout_text(app.editor.text(), app.editor.cursor(), usize::from(width));
        let visible = usize::from(area.height - 1);
        let first = InputPane::first_row(cursor_row, visible);
        buf.set_line(area.x, area.y + 1, &Line::styled(prompt, style), area.width);
        if app.editor.is_empty() {
            let hint = match app.mode {
                Mode::User => "type a message, Enter sends · ? help",
                Mode::Agent if app.note_mode => {
                    "a note only agents see, Enter writes it · Alt-N back to answering"
                }
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
