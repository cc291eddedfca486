//! Agent mode, left: one row per customer, in queue order (most urgent, then
//! waiting longest). A row: online dot, name, unread count, priority badge,
//! waiting count and age of the oldest waiting message, who holds it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::app::{App, Conversation};
use crate::text;

/// Columns the name keeps before the holder column is dropped.
const NAME_MIN_COLUMNS: usize = 5;

pub struct QueuePane<'a> {
    pub app: &'a App,
}

impl Widget for &QueuePane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let app = self.app;
        let rows = app.queue();
        // The count is of what this agent can work on, whatever the view.
        let title = match app.view {
            crate::app::QueueView::Open => format!(" Queue ({})", app.waiting_count()),
            view => format!(" Queue ({}) · {}", app.waiting_count(), view.label()),
        };
        buf.set_line(
            area.x,
            area.y,
            &Line::styled(title, Style::default().add_modifier(Modifier::BOLD)),
            area.width,
        );
        let list = Rect {
            y: area.y + 1,
            height: area.height.saturating_sub(1),
            ..area
        };
        if list.is_empty() {
            return;
        }
        if rows.is_empty() {
            // On two rows, so that the key fits beside a narrow queue.
            let empty = match app.view {
                crate::app::QueueView::Open if app.conversations.is_empty() => {
                    vec![" no customers yet".to_owned()]
                }
                view => vec![
                    format!(" none in {}", view.label()),
                    " Alt-V: the other views".to_owned(),
                ],
            };
            for (y, note) in (list.y..list.bottom()).zip(empty) {
                let note = text::truncate(&note, usize::from(list.width));
                buf.set_line(list.x, y, &Line::styled(note, super::dim()), list.width);
            }
            return;
        }
        let selected = app
            .selected
            .as_ref()
            .and_then(|s| rows.iter().position(|c| &c.user == s));
        // Scroll so that the selected row is always visible.
        let height = usize::from(list.height);
        let first = selected.map_or(0, |s| (s + 1).saturating_sub(height));
        for (i, conversation) in rows.iter().enumerate().skip(first).take(height) {
            let y = list.y + u16::try_from(i - first).unwrap_or(u16::MAX);
            let is_selected = Some(i) == selected;
            let line = row(app, conversation, usize::from(list.width), is_selected);
            if is_selected {
                buf.set_style(
                    Rect {
                        y,
                        height: 1,
                        ..list
                    },
                    Style::default().bg(Color::DarkGray),
                );
            }
            buf.set_line(list.x, y, &line, list.width);
        }
    }
}

fn row<'a>(app: &App, c: &'a Conversation, width: usize, selected: bool) -> Line<'a> {
    let (dot, dot_style) = if c.online {
        ("●", Style::default().fg(Color::LightGreen))
    } else {
        ("○", super::dim())
    };
    // Right-hand columns, most important first; dropped from the end when narrow.
    let mut right: Vec<Span> = vec![];
    if let Some(priority) = c.top_priority() {
        let (label, style) = super::priority_badge(priority);
        right.push(Span::styled(format!("{label:^4}"), style));
        let age = c
            .oldest_waiting()
            .map(|ts| text::age(ts, app.now))
            .unwrap_or_default();
        right.push(Span::raw(format!(" ×{:<2}{age:>4}", c.waiting.len())));
    }
    let holder = match &c.holder {
        Some(agent) if *agent == app.me => {
            Span::styled(" me", Style::default().fg(Color::LightGreen))
        }
        Some(agent) => Span::styled(
            format!(" {}", text::truncate(agent.as_str(), 8)),
            Style::default().fg(Color::LightRed),
        ),
        None => Span::styled(" -", super::dim()),
    };
    right.push(holder);
    let unread = (c.unread > 0).then(|| format!(" ({})", c.unread));
    let fixed = 2 + unread.as_deref().map_or(0, text::width) + 1;
    while right.len() > 1
        && fixed + NAME_MIN_COLUMNS + right.iter().map(|s| s.width()).sum::<usize>() > width
    {
        right.pop();
    }
    let right_width: usize = right.iter().map(|s| s.width()).sum();
    let name_width = width.saturating_sub(fixed + right_width);
    let name = text::truncate(c.user.as_str(), name_width);
    let pad = name_width.saturating_sub(text::width(&name));
    let name_style = if selected {
        Style::default().add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    };
    // A visible marker too, for terminals without colours.
    let mut spans = vec![
        Span::styled(
            if selected { "›" } else { " " },
            Style::default()
                .fg(Color::LightCyan)
                .add_modifier(Modifier::BOLD),
        ),
        Span::styled(dot, dot_style),
        Span::styled(format!(" {name}"), name_style),
    ];
    if let Some(unread) = unread {
        spans.push(Span::styled(
            unread,
            Style::default()
                .fg(Color::LightCyan)
                .add_modifier(Modifier::BOLD),
        ));
    }
    spans.push(Span::raw(" ".repeat(pad)));
    spans.extend(right);
    Line::from(spans)
}
