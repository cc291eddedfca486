//! The help overlay: every key of the mode, from [`crate::keymap::help`].

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Widget};

use crate::app::Mode;
use crate::keymap;
use crate::text;

/// The widest the overlay gets, in columns.
const HELP_COLUMNS_MAX: u16 = 78;

pub struct HelpOverlay {
    pub mode: Mode,
}

impl Widget for &HelpOverlay {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let rows = keymap::help(self.mode);
        let keys_width = rows.iter().map(|(k, _)| text::width(k)).max().unwrap_or(0);
        let width = area.width.min(HELP_COLUMNS_MAX);
        let height = area
            .height
            .min(u16::try_from(rows.len() + 2).unwrap_or(u16::MAX));
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
        let keys_width = keys_width.min(usize::from(inner.width) / 2);
        for (i, (keys, what)) in rows.iter().take(usize::from(inner.height)).enumerate() {
            let y = inner.y + u16::try_from(i).unwrap_or(0);
            let keys = text::truncate(keys, keys_width);
            let pad = keys_width - text::width(&keys);
            let line = Line::from(vec![
                Span::styled(
                    format!(" {keys}{} ", " ".repeat(pad)),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ]);
            buf.set_line(inner.x, y, &line, inner.width);
        }
    }
}
