//! The help overlay: every key of the mode, from [`crate::keymap::help`].

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Widget};

use crate::app::Mode;
use crate::keymap;
use crate::text;

/// Blank columns between the keys and what they do: two, so that the
/// longest keys do not read on into their description.
const GAP: &str = "  ";
/// Blank columns inside the border: one before the keys, the gap, one
/// after what they do.
const PADDING: usize = 1 + GAP.len() + 1;
/// Columns the border takes, left and right (and rows, top and bottom).
const BORDER: usize = 2;

pub struct HelpOverlay {
    pub mode: Mode,
}

impl Widget for &HelpOverlay {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let rows = keymap::help(self.mode);
        // As wide as the longest row when the terminal allows it, so that
        // nothing wraps; narrower terminals wrap (see `lines`).
        let keys_width = rows.iter().map(|(k, _)| text::width(k)).max().unwrap_or(0);
        let what_width = rows.iter().map(|(_, w)| text::width(w)).max().unwrap_or(0);
        let natural = keys_width + what_width + PADDING + BORDER;
        let width = area.width.min(u16::try_from(natural).unwrap_or(u16::MAX));
        let columns = Columns::fitting(keys_width, usize::from(width).saturating_sub(BORDER));
        let lines = lines(&rows, columns);
        let height = area
            .height
            .min(u16::try_from(lines.len() + BORDER).unwrap_or(u16::MAX));
        let popup = Rect {
            x: area.x + (area.width - width) / 2,
            y: area.y + (area.height - height) / 2,
            width,
            height,
        };
        Clear.render(popup, buf);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(Style::default().fg(Color::LightCyan))
            .title(" keys · Esc closes ");
        let inner = block.inner(popup);
        block.render(popup, buf);
        for (y, (keys, what)) in (inner.top()..inner.bottom()).zip(&lines) {
            let pad = columns.keys.saturating_sub(text::width(keys));
            let line = Line::from(vec![
                Span::styled(
                    format!(" {keys}{}{GAP}", " ".repeat(pad)),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(what.as_str()),
            ]);
            buf.set_line(inner.x, y, &line, inner.width);
        }
    }
}

/// How wide the two columns inside the border are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    keys: usize,
    what: usize,
}

impl Columns {
    /// Columns for keys at most `keys_width` wide in an overlay `inside`
    /// columns wide: the keys get what they need up to half, and what they
    /// do the rest.
    fn fitting(keys_width: usize, inside: usize) -> Self {
        let keys = keys_width.min(inside / 2);
        Self {
            keys,
            what: inside.saturating_sub(keys + PADDING),
        }
    }
}

/// The overlay's lines, keys and what they do side by side. Each is wrapped
/// in its own column rather than cut at the border (a cut word reads as a
/// different one), so a row takes as many lines as its longer side.
fn lines(rows: &[(&str, &str)], columns: Columns) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for (keys, what) in rows {
        let keys = text::wrap(keys, columns.keys);
        let what = text::wrap(what, columns.what);
        let height = keys.len().max(what.len());
        let mut keys = keys.into_iter();
        let mut what = what.into_iter();
        for _ in 0..height {
            lines.push((
                keys.next().unwrap_or_default(),
                what.next().unwrap_or_default(),
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_description_wraps_under_itself_and_keys_wrap_in_their_column() {
        let columns = Columns { keys: 6, what: 10 };
        let rows = [("Ctrl-C", "quit"), ("Up / Down", "select the next one")];
        assert_eq!(
            lines(&rows, columns),
            [
                ("Ctrl-C".into(), "quit".into()),
                ("Up /".into(), "select the".into()),
                ("Down".into(), "next one".into()),
            ]
        );
    }

    #[test]
    fn keys_get_at_most_half_the_overlay() {
        assert_eq!(Columns::fitting(8, 40), Columns { keys: 8, what: 28 });
        assert_eq!(Columns::fitting(30, 40), Columns { keys: 20, what: 16 });
        assert_eq!(Columns::fitting(30, 2), Columns { keys: 1, what: 0 });
    }
}
