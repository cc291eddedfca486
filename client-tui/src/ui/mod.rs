//! The view: draws an [`App`] and nothing else. Each pane is a small struct
//! borrowing the app, with `impl Widget for &Pane`; [`draw`] places them
//! where [`crate::layout`] says, which `update` also asks to know how wide
//! the conversation is (for scrollback that does not jump).
//!
//! - `status`: the header line (server, name, connection, agent) and the footer
//!   (notice or key hints).
//! - `queue`: agent mode, the list of customers.
//! - `conversation`: the messages, pending and failed sends, the "new messages"
//!   marker.
//! - `input`: the prompt (`to ana ›`) and the text being typed.
//! - `help`: the overlay listing every key.
//! - `picker`: agent mode, the agents to transfer a conversation to.

pub mod conversation;
pub mod help;
pub mod input;
pub mod picker;
pub mod queue;
pub mod status;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use switchboard_protocol::Priority;

use crate::app::{App, Mode};
use crate::layout;

/// The smallest screen each mode is drawn on: below it the input cannot
/// show what is typed (agent mode also needs its queue beside the
/// conversation), so the screen says how large to make the window.
fn min_size(mode: Mode) -> (u16, u16) {
    match mode {
        Mode::User => (16, 6),
        Mode::Agent => (25, 6),
    }
}

/// Draws the whole screen and places the cursor in the input.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let (min_width, min_height) = min_size(app.mode);
    if area.width < min_width || area.height < min_height {
        use ratatui::widgets::{Paragraph, Widget, Wrap};
        Paragraph::new(format!(
            "window too small: make it at least {min_width}×{min_height} (what you type is kept)"
        ))
        .wrap(Wrap { trim: true })
        .render(area, frame.buffer_mut());
        return;
    }
    let areas = layout::layout(&app.shape(), area);
    let buf = frame.buffer_mut();
    use ratatui::widgets::Widget;
    status::Header { app }.render(areas.header, buf);
    if let Some(queue_area) = areas.queue {
        queue::QueuePane { app }.render(queue_area, buf);
        // The separator column.
        let x = queue_area.right();
        if x < area.right() {
            for y in queue_area.top()..queue_area.bottom() {
                buf[(x, y)].set_symbol("│").set_style(dim());
            }
        }
    }
    if let Some(title) = areas.title {
        conversation::Title { app }.render(title, buf);
    }
    conversation::ConversationPane { app }.render(areas.messages, buf);
    let input_pane = input::InputPane { app };
    input_pane.render(areas.input, buf);
    status::Footer { app }.render(areas.footer, buf);
    if app.help_open {
        help::HelpOverlay { mode: app.mode }.render(area, buf);
    } else if let Some(picker) = &app.picker {
        picker::PickerOverlay { app, picker }.render(area, buf);
    } else if let Some(position) = input_pane.cursor(areas.input) {
        frame.set_cursor_position(position);
    }
}

/// Writes `line` on the first row of `area`; one too long for it ends in
/// `…`, so that a cut reads as a cut (first-hour findings: `carl ○ offline
/// · unass`).
pub fn set_line_cut(buf: &mut Buffer, area: Rect, line: &Line) {
    buf.set_line(area.x, area.y, line, area.width);
    if area.width > 0 && line.width() > usize::from(area.width) {
        buf[(area.right() - 1, area.y)].set_symbol("…");
    }
}

pub fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

/// Private notes and the note prompt: yellow on a dark background, never
/// the colours of what the customer sees.
pub fn note_style() -> Style {
    Style::default().fg(Color::Yellow).bg(Color::Rgb(40, 40, 0))
}

/// The badge for a waiting priority: short label and colours.
pub fn priority_badge(priority: Priority) -> (&'static str, Style) {
    match priority {
        Priority::Urgent => (
            "URG",
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ),
        Priority::High => ("HIGH", Style::default().fg(Color::Black).bg(Color::Yellow)),
        Priority::Normal => ("NORM", Style::default().fg(Color::Blue)),
        Priority::Low => ("LOW", Style::default().fg(Color::DarkGray)),
    }
}

#[cfg(test)]
pub mod tests;
