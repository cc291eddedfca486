//! The view: draws an [`App`] and nothing else. Each pane is a small struct
//! borrowing the app, with `impl Widget for &Pane`; [`draw`] places them
//! using [`layout`], which `update` also uses to know how wide the
//! conversation is (for scrollback that does not jump).
//!
//! - `status`: the header line (server, name, connection, agent) and the footer
//!   (notice or key hints).
//! - `queue`: agent mode, the list of customers.
//! - `conversation`: the messages, pending and failed sends, the "new messages"
//!   marker.
//! - `input`: the prompt (`to ana ›`) and the text being typed.
//! - `help`: the overlay listing every key.

pub mod conversation;
pub mod help;
pub mod input;
pub mod queue;
pub mod status;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use switchboard_protocol::Priority;

use crate::app::{App, Mode};

/// The most rows the input grows to before it scrolls.
pub const INPUT_ROWS_MAX: u16 = 6;

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

/// How wide the queue is in a terminal `width` columns wide.
fn queue_width(width: u16) -> u16 {
    if width < 60 {
        (width * 2 / 5).max(16).min(width)
    } else {
        (width / 3).clamp(28, 40)
    }
}

/// Splits `area` into panes. Pure arithmetic: safe for any size, even 0×0.
pub fn layout(app: &App, area: Rect) -> Areas {
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

    let (queue, right) = match app.mode {
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

    let content_width = right.width.saturating_sub(input::prompt_width(app));
    let input_rows = input::rows(app, content_width).min(INPUT_ROWS_MAX);
    // A rule above the input, then its rows; never more than half the pane.
    let input_height = (input_rows + 1)
        .min(right.height / 2)
        .max(right.height.min(1));
    let input = Rect {
        y: right.bottom().saturating_sub(input_height),
        height: input_height,
        ..right
    };
    let title_height = u16::from(app.mode == Mode::Agent && input.y > right.y);
    let title = (app.mode == Mode::Agent).then_some(Rect {
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

/// Draws the whole screen and places the cursor in the input.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let areas = layout(app, area);
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
    } else if let Some(position) = input_pane.cursor(areas.input) {
        frame.set_cursor_position(position);
    }
}

pub fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
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
