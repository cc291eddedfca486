//! The transfer picker (protocol version 2): the agents to hand the
//! selected conversation to, online first, each with how many
//! conversations it holds; Up/Down choose, typing narrows the list or
//! names an agent not listed (its last row), Enter hands over, Esc
//! cancels.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Widget};

use crate::app::{App, Picker, listed};
use crate::text;

/// Columns the picker wants: a name, its state and count, the border.
const WIDTH: u16 = 44;

pub struct PickerOverlay<'a> {
    pub app: &'a App,
    pub picker: &'a Picker,
}

impl Widget for &PickerOverlay<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let choices = listed(self.app, self.picker);
        let chosen_row = choices
            .iter()
            .position(|c| Some(&c.agent) == self.picker.agent.as_ref());
        let width = area.width.min(WIDTH);
        // The agents, then the row of what is typed.
        let rows = u16::try_from(choices.len() + 1).unwrap_or(u16::MAX);
        let height = area.height.min(rows.saturating_add(2));
        if width < 4 || height < 3 {
            return;
        }
        let popup = Rect {
            x: area.x + (area.width - width) / 2,
            y: area.y + (area.height - height) / 2,
            width,
            height,
        };
        Clear.render(popup, buf);
        let title = format!(" transfer {} to · Enter · Esc ", self.picker.user);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(Style::default().fg(Color::LightCyan))
            .title(text::truncate(&title, usize::from(width.saturating_sub(2))));
        let inner = block.inner(popup);
        block.render(popup, buf);
        let typed_row = Rect {
            y: inner.bottom().saturating_sub(1),
            height: 1,
            ..inner
        };
        let list = Rect {
            height: inner.height.saturating_sub(1),
            ..inner
        };
        buf.set_line(
            typed_row.x,
            typed_row.y,
            &typed_line(self.picker, chosen_row.is_none()),
            typed_row.width,
        );
        if chosen_row.is_none() {
            buf.set_style(typed_row, Style::default().bg(Color::DarkGray));
        }
        // Keep the choice in sight when the list is longer than the box.
        let visible = usize::from(list.height);
        let first = (chosen_row.unwrap_or(0) + 1).saturating_sub(visible);
        for (row, (index, choice)) in
            (list.top()..list.bottom()).zip(choices.iter().enumerate().skip(first))
        {
            let chosen = Some(index) == chosen_row;
            let (dot, dot_style) = if choice.online {
                ("●", Style::default().fg(Color::LightGreen))
            } else {
                ("○", super::dim())
            };
            let holds = match choice.holds {
                _ if choice.agent == self.app.me => "you: take it over".to_owned(),
                1 => "1 conversation".to_owned(),
                n => format!("{n} conversations"),
            };
            let name_style = if chosen {
                Style::default().add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            let line = Line::from(vec![
                Span::raw(if chosen { "›" } else { " " }),
                Span::styled(dot, dot_style),
                Span::styled(format!(" {} ", choice.agent), name_style),
                Span::styled(holds, super::dim()),
            ]);
            if chosen {
                buf.set_style(
                    Rect {
                        y: row,
                        height: 1,
                        ..list
                    },
                    Style::default().bg(Color::DarkGray),
                );
            }
            buf.set_line(list.x, row, &line, list.width);
        }
    }
}

/// The last row: what is typed, and what Enter does with it when nobody
/// listed matches (`chosen`: it is the choice).
fn typed_line(picker: &Picker, chosen: bool) -> Line<'static> {
    if picker.typed.is_empty() {
        let hint = if chosen {
            "type the agent's name"
        } else {
            "type to narrow, or any agent's name"
        };
        return Line::from(vec![
            Span::raw(if chosen { "›" } else { " " }),
            Span::styled(format!(" {hint}"), super::dim()),
        ]);
    }
    let mut spans = vec![
        Span::raw(if chosen { "›" } else { " " }),
        Span::styled(
            format!(" {}", picker.typed),
            Style::default().add_modifier(Modifier::BOLD),
        ),
    ];
    if chosen {
        spans.push(Span::styled(
            " not listed: Enter hands it over",
            super::dim(),
        ));
    }
    Line::from(spans)
}
