//! The header (who and where, connection state) and the footer (a notice, or
//! the keys that matter most).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::{App, Connection, Mode};
use crate::text;

pub struct Header<'a> {
    pub app: &'a App,
}

impl Widget for &Header<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let app = self.app;
        let bar = Style::default().bg(Color::Blue).fg(Color::White);
        buf.set_style(area, bar);
        // Full form when it fits; else without the server, with short words.
        let spans = [Fit::Full, Fit::NoServer, Fit::Short]
            .into_iter()
            .map(|fit| header_spans(app, bar, state(&app.connection, fit), fit))
            .find(|spans| Line::from(spans.clone()).width() <= usize::from(area.width))
            .unwrap_or_else(|| {
                header_spans(app, bar, state(&app.connection, Fit::Short), Fit::Short)
            });
        super::set_line_cut(buf, area, &Line::from(spans));
    }
}

/// How much of the header fits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    Full,
    NoServer,
    Short,
}

/// The connection's dot, words and colour. Reconnecting names the node
/// tried next (with several `--server` nodes it is another one) unless
/// space is short; the footer's notice says it too.
fn state(connection: &Connection, fit: Fit) -> (&'static str, String, Color) {
    match connection {
        Connection::Online => ("●", "online".to_owned(), Color::LightGreen),
        Connection::Syncing => ("◌", "syncing…".to_owned(), Color::LightYellow),
        Connection::Reconnecting { attempt, next, .. } if fit != Fit::Short => (
            "◌",
            format!("reconnecting to {next}… (try {attempt})"),
            Color::LightRed,
        ),
        Connection::Reconnecting { attempt, .. } => (
            "◌",
            format!("reconnecting… (try {attempt})"),
            Color::LightRed,
        ),
        Connection::Failed(_) => ("✗", "disconnected".to_owned(), Color::LightRed),
    }
}

fn header_spans<'a>(
    app: &App,
    bar: Style,
    (dot, state, state_colour): (&str, String, Color),
    fit: Fit,
) -> Vec<Span<'a>> {
    let compact = fit != Fit::Full;
    let mut spans = vec![];
    if compact {
        spans.push(Span::styled(" ", bar));
    } else {
        spans.push(Span::styled(
            " switchboard ",
            bar.add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(format!("{} · ", app.server), bar));
    }
    spans.push(Span::styled(
        app.me.to_string(),
        bar.add_modifier(Modifier::BOLD),
    ));
    if app.mode == Mode::Agent && !compact {
        spans.push(Span::styled(" (agent)", bar));
    }
    spans.push(Span::styled(" · ", bar));
    spans.push(Span::styled(
        format!("{dot} {state}"),
        bar.fg(state_colour).add_modifier(Modifier::BOLD),
    ));
    spans.push(Span::styled(" · ", bar));
    match app.mode {
        Mode::User => {
            let holder = app.current().and_then(|c| c.holder.clone());
            let resolved = app.current().is_some_and(|c| c.resolved);
            let text = match (holder, app.agents_online, fit) {
                (Some(agent), _, _) => format!("agent: {agent}"),
                (None, _, Fit::Short) if resolved => "resolved".to_owned(),
                (None, _, _) if resolved => "resolved · write again to reopen".to_owned(),
                (None, Some(n), Fit::Short) => format!("no agent yet, {n} online"),
                (None, Some(n), _) => format!("waiting for an agent ({n} online)"),
                (None, None, _) => "waiting for an agent".to_owned(),
            };
            spans.push(Span::styled(text, bar.add_modifier(Modifier::BOLD)));
        }
        Mode::Agent => {
            // Only what this agent can work on: its own and the unassigned.
            let waiting = app.waiting_count();
            let unread: u32 = app.open_conversations().map(|c| c.unread).sum();
            spans.push(Span::styled(format!("{waiting} waiting"), bar));
            if unread > 0 {
                spans.push(Span::styled(
                    format!(" · {unread} unread"),
                    bar.add_modifier(Modifier::BOLD),
                ));
            }
            if fit == Fit::Full {
                let others: Vec<&str> = app
                    .agents
                    .iter()
                    .filter(|name| **name != app.me)
                    .map(|name| name.as_str())
                    .collect();
                spans.push(Span::styled(format!(" · {}", agents_line(&others)), bar));
            }
        }
    }
    spans
}

/// Who else is online among agents, as the header says it: up to three
/// names, then how many more.
fn agents_line(others: &[&str]) -> String {
    match others {
        [] => "no other agent online".to_owned(),
        [_, _, _, rest @ ..] if !rest.is_empty() => {
            format!("agents: {}, +{}", others[..3].join(", "), rest.len())
        }
        names => format!("agents: {}", names.join(", ")),
    }
}

pub struct Footer<'a> {
    pub app: &'a App,
}

impl Widget for &Footer<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let app = self.app;
        let width = usize::from(area.width);
        let line = match (&app.question, &app.notice) {
            // A question waits for its answer: nothing covers it.
            (Some(question), _) => Line::styled(
                text::truncate(&format!(" {}", question.text()), width),
                Style::default()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ),
            (None, Some(notice)) => {
                let style = if notice.error {
                    Style::default()
                        .fg(Color::LightRed)
                        .add_modifier(Modifier::BOLD)
                } else {
                    Style::default().fg(Color::Yellow)
                };
                Line::styled(text::truncate(&format!(" {}", notice.text), width), style)
            }
            (None, None) => hints(app.mode, app.note_mode, width),
        };
        buf.set_line(area.x, area.y, &line, area.width);
    }
}

/// The most useful keys, as many as fit: `key` bold, what it does dim.
fn hints(mode: Mode, note_mode: bool, width: usize) -> Line<'static> {
    let keys: &[(&str, &str)] = match mode {
        Mode::Agent if note_mode => &[
            ("Enter", "write the note"),
            ("Alt-N", "back to messages"),
            ("?", "help"),
        ],
        Mode::User => &[
            ("Enter", "send"),
            ("?", "help"),
            ("^C", "quit"),
            ("Alt-Enter", "newline"),
            ("PgUp/PgDn", "scroll"),
        ],
        Mode::Agent => &[
            ("Enter", "send"),
            ("↑↓", "select"),
            ("?", "help"),
            ("^C", "quit"),
            ("Alt-A", "next unread"),
            ("Alt-C", "claim"),
            ("Alt-T", "transfer"),
            ("Alt-N", "note"),
            ("Alt-V", "view"),
            ("Alt-R", "release"),
            ("Alt-D", "resolve"),
            ("PgUp/PgDn", "scroll"),
        ],
    };
    let mut spans = vec![];
    let mut used = 0;
    for (key, what) in keys {
        let cost = text::width(key) + text::width(what) + 3;
        if used + cost > width {
            break;
        }
        used += cost;
        spans.push(Span::styled(
            format!(" {key}"),
            Style::default().add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::styled(format!(" {what} "), super::dim()));
    }
    Line::from(spans)
}
