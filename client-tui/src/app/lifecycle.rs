//! Agent mode's keys for a conversation's state (protocol version 2):
//! claim, release and resolve (both asked first: a stray key must not
//! empty a queue), transfer through a picker of agents, and the note mode
//! whose Enter writes a private note instead of a message.

use switchboard_protocol::{ClientFrame, Name};

use super::{App, Effect, Mode};

/// A change that waits for `y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    Release(Name),
    Resolve(Name),
}

impl Question {
    /// What the footer asks.
    pub fn text(&self) -> String {
        match self {
            Question::Release(user) => format!(
                "release {user} to the queue, questions still waiting? y: yes · other key: no"
            ),
            Question::Resolve(user) => {
                format!("resolve {user}, its questions answered? y: yes · other key: no")
            }
        }
    }
}

/// The transfer picker: whom to hand `user` to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    pub user: Name,
    /// The row chosen, in [`App::transfer_choices`] order.
    pub choice: usize,
}

/// An agent the picker offers: online ones first, then by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub agent: Name,
    pub online: bool,
    /// Conversations it holds, as far as this client knows.
    pub holds: usize,
}

impl App {
    /// The agents to transfer to: every agent this client knows of (online
    /// now, or holding a conversation), itself left out; online first,
    /// then by name.
    pub fn transfer_choices(&self) -> Vec<Choice> {
        let mut known: std::collections::BTreeSet<&Name> = self.agents.iter().collect();
        known.extend(
            self.conversations
                .values()
                .filter_map(|c| c.holder.as_ref()),
        );
        let mut choices: Vec<Choice> = known
            .into_iter()
            .filter(|agent| **agent != self.me)
            .map(|agent| Choice {
                agent: agent.clone(),
                online: self.agents.contains(agent),
                holds: self
                    .conversations
                    .values()
                    .filter(|c| c.holder.as_ref() == Some(agent))
                    .count(),
            })
            .collect();
        choices.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.agent.cmp(&b.agent)));
        choices
    }
}

/// The selected conversation, if the agent may act on it now; says why
/// not otherwise.
fn acting_on(app: &mut App, what: &str) -> Option<Name> {
    if app.mode != Mode::Agent {
        return None;
    }
    let user = app.selected.clone()?;
    // Unlike a message, a change is not kept and sent again on reconnect:
    // the network task would drop it, so say so instead of doing nothing.
    if !app.is_connected() {
        app.notify(
            format!("not connected: {what} {user} once reconnected"),
            true,
        );
        return None;
    }
    Some(user)
}

pub(super) fn claim(app: &mut App, effects: &mut Vec<Effect>) {
    let Some(user) = acting_on(app, "claim") else {
        return;
    };
    let id = Some(app.request_id());
    effects.push(Effect::Send(ClientFrame::Claim {
        id,
        user: user.to_string(),
    }));
}

/// Release or resolve (`what`): asked first.
pub(super) fn ask(app: &mut App, what: &str, question: fn(Name) -> Question) {
    if let Some(user) = acting_on(app, what) {
        app.question = Some(question(user));
    }
}

pub(super) fn confirm(app: &mut App, effects: &mut Vec<Effect>) {
    if let Some(picker) = app.picker.take() {
        let Some(choice) = app.transfer_choices().into_iter().nth(picker.choice) else {
            app.notify("no agent to transfer to: none is known yet", true);
            return;
        };
        let id = Some(app.request_id());
        effects.push(Effect::Send(ClientFrame::Transfer {
            id,
            user: picker.user.to_string(),
            to: choice.agent.to_string(),
        }));
        return;
    }
    let Some(question) = app.question.take() else {
        return;
    };
    let id = Some(app.request_id());
    effects.push(Effect::Send(match question {
        Question::Release(user) => ClientFrame::Release {
            id,
            user: user.to_string(),
        },
        Question::Resolve(user) => ClientFrame::Resolve {
            id,
            user: user.to_string(),
        },
    }));
}

pub(super) fn cancel(app: &mut App) {
    app.question = None;
    app.picker = None;
}

pub(super) fn open_picker(app: &mut App) {
    let Some(user) = acting_on(app, "transfer") else {
        return;
    };
    if app.transfer_choices().is_empty() {
        app.notify(
            "no other agent is known yet: agents appear here once online or holding a customer",
            true,
        );
        return;
    }
    app.picker = Some(Picker { user, choice: 0 });
}

/// Moves the picker's choice by `step`, within the list.
pub(super) fn pick(app: &mut App, step: isize) {
    let last = app.transfer_choices().len().saturating_sub(1);
    if let Some(picker) = &mut app.picker {
        picker.choice = picker.choice.saturating_add_signed(step).min(last);
    }
}

pub(super) fn toggle_note(app: &mut App) {
    if app.mode == Mode::Agent {
        app.note_mode = !app.note_mode;
    }
}
