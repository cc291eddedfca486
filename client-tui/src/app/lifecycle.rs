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
                format!("resolve {user}: done, nothing left waiting? y: yes · other key: no")
            }
        }
    }
}

/// The transfer picker: whom to hand `user` to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    pub user: Name,
    /// The agent chosen among those listed: by name, because the list
    /// re-sorts as agents come and go, and Enter must hand it to the one
    /// on screen. `None` when nobody listed matches what is typed.
    pub agent: Option<Name>,
    /// What the agent typed: narrows the list to the names it begins, and
    /// when nobody listed matches, is the name Enter hands it to. The
    /// protocol lists only agents online or holding a conversation, so an
    /// offline agent holding nothing is reached by typing its name.
    pub typed: String,
}

impl Picker {
    /// Whether `agent` is listed for what is typed (its name begins with
    /// it, ignoring case, as names are unique ignoring case).
    pub fn lists(&self, agent: &Name) -> bool {
        agent
            .as_str()
            .to_lowercase()
            .starts_with(&self.typed.to_lowercase())
    }
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
    /// The agents to transfer `user`'s conversation to: every agent this
    /// client knows of (online now, or holding a conversation), but its
    /// holder; itself only when another agent holds it (a supervisor takes
    /// a conversation over by transferring it to itself). Online first,
    /// then by name.
    pub fn transfer_choices(&self, user: &Name) -> Vec<Choice> {
        let holder = self.conversations.get(user).and_then(|c| c.holder.as_ref());
        let mut known: std::collections::BTreeSet<&Name> = self.agents.iter().collect();
        known.extend(
            self.conversations
                .values()
                .filter_map(|c| c.holder.as_ref()),
        );
        known.insert(&self.me);
        let mut choices: Vec<Choice> = known
            .into_iter()
            .filter(|agent| Some(*agent) != holder && (**agent != self.me || holder.is_some()))
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
        let to = match picker.agent.clone() {
            Some(agent) => agent,
            None => match Name::parse(picker.typed.trim()) {
                Ok(name) => name,
                Err(_) => {
                    app.notify(
                        "type an agent's name (letters, digits, _ . -), or Esc",
                        true,
                    );
                    app.picker = Some(picker);
                    return;
                }
            },
        };
        let id = Some(app.request_id());
        effects.push(Effect::Send(ClientFrame::Transfer {
            id,
            user: picker.user.to_string(),
            to: to.to_string(),
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

/// Opens the picker on the first agent listed; with nobody known yet, on
/// an empty list, to type a name into.
pub(super) fn open_picker(app: &mut App) {
    let Some(user) = acting_on(app, "transfer") else {
        return;
    };
    let first = app.transfer_choices(&user).into_iter().next();
    app.picker = Some(Picker {
        user,
        agent: first.map(|choice| choice.agent),
        typed: String::new(),
    });
}

/// The agents the open picker lists: [`App::transfer_choices`] whose
/// names begin with what is typed.
pub fn listed(app: &App, picker: &Picker) -> Vec<Choice> {
    app.transfer_choices(&picker.user)
        .into_iter()
        .filter(|choice| picker.lists(&choice.agent))
        .collect()
}

/// Moves the picker's choice by `step` rows, within the list as it is now.
pub(super) fn pick(app: &mut App, step: isize) {
    let Some(picker) = &app.picker else {
        return;
    };
    let choices = listed(app, picker);
    let here = choices
        .iter()
        .position(|c| Some(&c.agent) == picker.agent.as_ref())
        .unwrap_or(0);
    let there = here
        .saturating_add_signed(step)
        .min(choices.len().saturating_sub(1));
    if let (Some(choice), Some(picker)) = (choices.get(there), &mut app.picker) {
        picker.agent = Some(choice.agent.clone());
    }
}

/// A character typed into the picker (`None`: one taken back): the list
/// narrows to the names it begins, and the choice moves to the first of
/// them unless it is still listed.
pub(super) fn type_in_picker(app: &mut App, typed: Option<char>) {
    let Some(mut picker) = app.picker.take() else {
        return;
    };
    match typed {
        Some(c) if c.is_control() => {}
        Some(c) => picker.typed.push(c),
        None => {
            picker.typed.pop();
        }
    }
    let choices = listed(app, &picker);
    let still_listed = |agent: &Name| choices.iter().any(|c| &c.agent == agent);
    if !picker.agent.as_ref().is_some_and(still_listed) {
        picker.agent = choices.first().map(|c| c.agent.clone());
    }
    app.picker = Some(picker);
}

pub(super) fn toggle_note(app: &mut App) {
    if app.mode == Mode::Agent {
        app.note_mode = !app.note_mode;
    }
}
