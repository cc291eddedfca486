//! The conversation: messages oldest first with local time and sender, then
//! this client's pending and refused sends. Drawn from the bottom up, laying
//! out only as many messages as fill the pane (plus the scroll offset), so a
//! conversation of any length costs the same per frame.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use switchboard_protocol::{Message, Priority, Role};

use crate::app::{App, Change, Conversation, HistoryState, Mode};
use crate::text::{self, MESSAGE_INDENT};

/// Agent mode: the line naming the selected conversation and its state.
pub struct Title<'a> {
    pub app: &'a App,
}

impl Widget for &Title<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let app = self.app;
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let Some(c) = app.current() else {
            buf.set_line(
                area.x,
                area.y,
                &Line::styled(" no conversation", super::dim()),
                area.width,
            );
            return;
        };
        let mut spans = vec![Span::styled(format!(" {}", c.user), bold)];
        spans.push(if c.online {
            Span::styled(" ● online", Style::default().fg(Color::LightGreen))
        } else {
            Span::styled(" ○ offline", super::dim())
        });
        match &c.holder {
            Some(agent) if *agent == app.me => {
                spans.push(Span::styled(
                    " · yours",
                    Style::default().fg(Color::LightGreen),
                ));
            }
            Some(agent) => spans.push(Span::styled(
                format!(" · LOCKED: {agent} has it"),
                Style::default()
                    .fg(Color::LightRed)
                    .add_modifier(Modifier::BOLD),
            )),
            None => spans.push(Span::styled(" · unassigned", super::dim())),
        }
        if c.scroll.offset > 0 {
            spans.push(Span::styled(
                " · scrolled",
                Style::default().fg(Color::Yellow),
            ));
        }
        buf.set_style(area, Style::default().add_modifier(Modifier::UNDERLINED));
        super::set_line_cut(buf, area, &Line::from(spans));
    }
}

pub struct ConversationPane<'a> {
    pub app: &'a App,
}

impl Widget for &ConversationPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let app = self.app;
        let width = usize::from(area.width);
        let height = usize::from(area.height);
        let Some(c) = app.current() else {
            let note = "No customers yet: conversations appear on the left as they arrive.";
            draw_note(note, area, buf);
            return;
        };
        if c.messages.is_empty() && app.outgoing_for(&c.user).next().is_none() {
            let note = match (app.mode, c.history) {
                (_, HistoryState::Loading) => "loading…",
                (Mode::User, _) => {
                    "No messages yet. Type below and press Enter: an agent will answer here."
                }
                (Mode::Agent, _) => "No messages in this conversation yet.",
            };
            draw_note(note, area, buf);
            return;
        }

        // Scrolled up, the bottom row is the marker's: the messages keep
        // the rows above it, and the marker never covers one of them.
        let marked = c.scroll.offset > 0 && height > 1;
        let height = if marked { height - 1 } else { height };
        // Lines from the bottom up, until the pane and the offset are covered.
        let needed = height + c.scroll.offset;
        let mut lines: Vec<Line> = Vec::with_capacity(needed);
        let outgoing: Vec<_> = app.outgoing_for(&c.user).collect();
        for o in outgoing.iter().rev() {
            let mut block = vec![outgoing_header(app, o.error.as_deref())];
            block.extend(body_lines(&o.body, width, super::dim()));
            if let Some(error) = &o.error {
                for l in text::wrap(
                    &format!("✗ {error} (Esc dismisses)"),
                    width.saturating_sub(MESSAGE_INDENT),
                ) {
                    block.push(Line::styled(
                        format!("{}{l}", " ".repeat(MESSAGE_INDENT)),
                        Style::default().fg(Color::LightRed),
                    ));
                }
            }
            lines.extend(block.into_iter().rev());
        }
        // Changes of state go after the message they came after.
        let mut changes = c.changes.iter().rev().peekable();
        for message in c.messages.iter().rev() {
            while let Some(change) = changes.next_if(|change| change.after >= message.id) {
                lines.push(change_line(app, change, width));
            }
            if lines.len() >= needed {
                break;
            }
            let body_style = if message.note {
                super::note_style()
            } else {
                Style::default()
            };
            let mut block = vec![header(app, message)];
            block.extend(body_lines(message.body.as_str(), width, body_style));
            lines.extend(block.into_iter().rev());
        }
        if lines.len() < needed {
            lines.extend(changes.map(|change| change_line(app, change, width)));
        }
        if lines.len() < needed && c.history == HistoryState::Loading {
            lines.push(Line::styled("loading older messages…", super::dim()));
        }
        // `lines` is bottom-up; skip the offset, keep one screen, draw top-down.
        let visible: Vec<&Line> = lines.iter().skip(c.scroll.offset).take(height).collect();
        let bottom = area.y + u16::try_from(height).unwrap_or(area.height);
        let top = bottom - u16::try_from(visible.len()).unwrap_or(0);
        for (i, line) in visible.iter().rev().enumerate() {
            let y = top + u16::try_from(i).unwrap_or(0);
            buf.set_line(area.x, y, line, area.width);
        }
        if marked {
            new_messages_marker(c, area, buf);
        }
    }
}

fn draw_note(note: &str, area: Rect, buf: &mut Buffer) {
    for (i, line) in text::wrap(note, usize::from(area.width).saturating_sub(2))
        .into_iter()
        .take(usize::from(area.height))
        .enumerate()
    {
        let y = area.y + u16::try_from(i).unwrap_or(0);
        buf.set_line(
            area.x,
            y,
            &Line::styled(format!(" {line}"), super::dim()),
            area.width,
        );
    }
}

/// The bottom line while scrolled up: how many arrived below, how to get there.
fn new_messages_marker(c: &Conversation, area: Rect, buf: &mut Buffer) {
    let text = if c.scroll.new_below > 0 {
        let n = c.scroll.new_below;
        let plural = if n == 1 { "" } else { "s" };
        format!(" ↓ {n} new message{plural} · Ctrl-End ")
    } else {
        " ↓ more below · Ctrl-End ".to_owned()
    };
    let style = Style::default().fg(Color::Black).bg(Color::Yellow);
    let y = area.bottom() - 1;
    buf.set_style(
        Rect {
            y,
            height: 1,
            ..area
        },
        style,
    );
    let line = Line::styled(text::truncate(&text, usize::from(area.width)), style);
    buf.set_line(area.x, y, &line, area.width);
}

/// A change of the conversation's state, as a line of its own: dim, in
/// the time column, never like a message.
fn change_line<'a>(app: &App, change: &Change, width: usize) -> Line<'a> {
    let time = text::clock(change.ts, app.now);
    let text = text::truncate(&format!("{time} — {} —", change.text), width);
    Line::styled(
        text,
        Style::default()
            .fg(Color::Gray)
            .add_modifier(Modifier::ITALIC),
    )
}

fn header<'a>(app: &App, m: &Message) -> Line<'a> {
    let time = text::clock(m.ts, app.now);
    let (who, style) = match (m.from, &m.agent) {
        (Role::Agent, Some(agent)) => (
            agent.to_string(),
            Style::default()
                .fg(Color::LightMagenta)
                .add_modifier(Modifier::BOLD),
        ),
        _ => (
            m.user.to_string(),
            Style::default()
                .fg(Color::LightCyan)
                .add_modifier(Modifier::BOLD),
        ),
    };
    let mut spans = vec![
        Span::styled(format!("{time} "), super::dim()),
        Span::styled(who, style),
    ];
    if m.note {
        // Never like something the customer saw: its own label and colour.
        let own = if app.is_own(m) { ", you" } else { "" };
        spans.push(Span::styled(
            format!(" ✎ private note{own}: agents only"),
            super::note_style().add_modifier(Modifier::BOLD),
        ));
    } else if app.is_own(m) {
        spans.push(Span::styled(" (you)", super::dim()));
    } else if m.from == Role::Agent {
        spans.push(Span::styled(" (agent)", super::dim()));
    }
    if app.mode == Mode::Agent && m.from == Role::User && m.priority != Priority::Normal {
        let (label, style) = super::priority_badge(m.priority);
        spans.push(Span::raw(" "));
        spans.push(Span::styled(label, style));
    }
    Line::from(spans)
}

fn outgoing_header<'a>(app: &App, error: Option<&str>) -> Line<'a> {
    let state = match error {
        None => Span::styled(" sending…", Style::default().fg(Color::Yellow)),
        Some(_) => Span::styled(
            " not sent",
            Style::default()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD),
        ),
    };
    Line::from(vec![
        Span::styled("--:-- ", super::dim()),
        Span::styled(
            app.me.to_string(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(" (you)", super::dim()),
        state,
    ])
}

fn body_lines<'a>(body: &str, width: usize, style: Style) -> impl Iterator<Item = Line<'a>> {
    let indent = " ".repeat(MESSAGE_INDENT);
    text::wrap(body, width.saturating_sub(MESSAGE_INDENT))
        .into_iter()
        .map(move |l| Line::styled(format!("{indent}{l}"), style))
}
