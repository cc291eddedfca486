//! The client's whole state ([`App`]) and the one function that changes it,
//! [`update`]: a [`Msg`] in (a key's [`Action`], a server frame, a tick), the
//! [`Effect`]s to perform out (frames to send, quit). No I/O, no clock, no
//! terminal: everything here is tested by calling `update` and looking at the
//! state.
//!
//! - [`msg`]: what goes in and out of `update`.
//! - [`conversation`]: one customer's conversation and the queue's order.
//! - `actions`: what a key does; `navigate`: selection and scrolling;
//!   `frames`: what the network task reports; `resync`: an agent's waiting
//!   queue rebuilt after a resume.
//! - `tests/`: `update`'s tests, one file per area; `test_support`: steps
//!   these and the view's tests share.
//!
//! Nothing here imports the view: the size of the message area comes from
//! [`crate::layout`], which the view uses too.

use std::collections::{BTreeMap, HashMap};

use switchboard_protocol::{Key, Message, Name, RequestId, Role, Timestamp};

use crate::editor::Editor;
use crate::layout::{self, Prompt, Shape};

mod actions;
pub mod conversation;
mod frames;
pub mod lifecycle;
pub mod msg;
mod navigate;
mod resync;

pub use crate::mode::Mode;
pub use conversation::{Change, Conversation, HistoryState, QueueView, Scroll, Waiting};
pub use lifecycle::{Choice, Picker, Question, listed};
pub use msg::{Action, Effect, Msg, NetEvent};
pub use navigate::lines_from_bottom;
pub use resync::{WaitingQueue, WaitingResync};

use actions::on_action;
use frames::on_net;
use navigate::select;

/// How many messages one `history` request asks for (selection, scrolling up).
pub const HISTORY_PAGE: u32 = 100;

/// Lines one mouse-wheel notch scrolls.
pub const WHEEL_LINES: usize = 3;

/// Where the connection is, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Signed in; `subscribe` sent, its backlog still arriving.
    Syncing,
    Online,
    /// Lost; the network task retries (attempt 1, 2, … with backoff),
    /// next on the node at `next`.
    Reconnecting {
        attempt: u32,
        reason: String,
        next: String,
    },
    /// The network task gave up (the token was refused): only quitting helps.
    Failed(String),
}

/// A message this client sent and the server has not confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub request: RequestId,
    pub key: Key,
    /// Whose conversation: the customer's name (in user mode, one's own).
    pub user: Name,
    pub body: String,
    /// `None` while pending; the server's error once refused.
    pub error: Option<String>,
    /// A private note for the agents (protocol version 2).
    pub note: bool,
}

/// A transient line under the input: what just happened, or what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    /// When it was shown: information fades after [`NOTICE_SECONDS`].
    pub since: Timestamp,
}

/// How long an informational notice stays before the key hints come back.
pub const NOTICE_SECONDS: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub mode: Mode,
    pub me: Name,
    /// The node (`host:port`) the client is on, or was on while it
    /// reconnects: one of `--server`, as the header shows it.
    pub server: String,
    pub connection: Connection,
    /// User mode: agents online, from `welcome` and `agents`.
    pub agents_online: Option<u32>,
    /// Agent mode: the agents online, itself included (protocol version 2,
    /// agents' `presence`).
    pub agents: std::collections::BTreeSet<Name>,
    pub conversations: BTreeMap<Name, Conversation>,
    /// Agent mode: whose conversation is shown and written to.
    pub selected: Option<Name>,
    /// Agent mode: the selection follows the top of the queue until the agent
    /// picks a row or starts typing, so it never moves under a draft.
    follow_top: bool,
    pub editor: Editor,
    /// Agent mode: unsent text per conversation, kept when switching.
    drafts: HashMap<Name, String>,
    pub outgoing: Vec<Outgoing>,
    /// The highest message id the subscription delivered: `since` on resume.
    pub last_id: Option<u64>,
    /// Agents, after a resume: the plain `subscribe` whose backlog (the
    /// current waiting queue) rebuilds which messages wait. A `since` resume
    /// replays messages, not releases made while offline.
    pub waiting_resync: Option<WaitingResync>,
    /// The `history` requests in flight and whose conversation each pages: a
    /// failure names only its request, and must settle only that one.
    history_requests: HashMap<RequestId, Name>,
    pub help_open: bool,
    /// Agent mode: which conversations the queue lists.
    pub view: QueueView,
    /// Agent mode: a release or resolve asked, waiting for `y`.
    pub question: Option<Question>,
    /// Agent mode: the transfer picker, open.
    pub picker: Option<Picker>,
    /// Agent mode: Enter writes a private note, not a message.
    pub note_mode: bool,
    /// Ring the bell and set the window title on news (`--no-alerts`
    /// turns it off).
    pub alerts: bool,
    /// The count the window title shows now.
    title_count: Option<usize>,
    pub notice: Option<Notice>,
    /// When Ctrl-C was pressed with messages still sending: a second one
    /// soon after quits anyway.
    pub quit_asked_at: Option<Timestamp>,
    pub now: Timestamp,
    /// Terminal columns and rows.
    pub size: (u16, u16),
    next_request: i64,
    /// Makes idempotency keys unique across runs (random, chosen by `main`).
    key_prefix: String,
}

impl App {
    pub fn new(mode: Mode, me: Name, server: String, key_prefix: String, now: Timestamp) -> Self {
        let mut conversations = BTreeMap::new();
        if mode == Mode::User {
            conversations.insert(me.clone(), Conversation::new(me.clone()));
        }
        Self {
            mode,
            me,
            server,
            connection: Connection::Syncing,
            agents_online: None,
            quit_asked_at: None,
            agents: std::collections::BTreeSet::new(),
            conversations,
            selected: None,
            follow_top: true,
            editor: Editor::default(),
            drafts: HashMap::new(),
            outgoing: Vec::new(),
            last_id: None,
            waiting_resync: None,
            history_requests: HashMap::new(),
            help_open: false,
            view: QueueView::default(),
            question: None,
            picker: None,
            note_mode: false,
            alerts: true,
            title_count: None,
            notice: None,
            now,
            size: (80, 24),
            next_request: 0,
            key_prefix,
        }
    }

    /// The conversation on screen: one's own (user) or the selected (agent).
    pub fn current(&self) -> Option<&Conversation> {
        self.current_name().and_then(|n| self.conversations.get(n))
    }

    pub fn current_name(&self) -> Option<&Name> {
        match self.mode {
            Mode::User => Some(&self.me),
            Mode::Agent => self.selected.as_ref(),
        }
    }

    /// Agent mode: the conversations the view lists, in queue order.
    pub fn queue(&self) -> Vec<&Conversation> {
        let mut rows: Vec<&Conversation> = self
            .conversations
            .values()
            .filter(|c| self.view.shows(c, &self.me))
            .collect();
        rows.sort_by(|a, b| a.queue_key().cmp(&b.queue_key()));
        rows
    }

    /// Agent mode: the conversations it can work on (its own and the
    /// unassigned), whatever the view: what every count counts. Another
    /// agent's conversation never makes a number go up.
    pub fn open_conversations(&self) -> impl Iterator<Item = &Conversation> {
        self.conversations
            .values()
            .filter(|c| QueueView::Open.shows(c, &self.me))
    }

    /// Agent mode: open conversations with something waiting.
    pub fn waiting_count(&self) -> usize {
        self.open_conversations()
            .filter(|c| !c.waiting.is_empty())
            .count()
    }

    /// Messages of `user` this client sent that are pending or failed.
    pub fn outgoing_for<'a>(&'a self, user: &'a Name) -> impl Iterator<Item = &'a Outgoing> + 'a {
        self.outgoing.iter().filter(move |o| &o.user == user)
    }

    /// Whether a message was written by whoever runs this client.
    pub fn is_own(&self, message: &Message) -> bool {
        match self.mode {
            Mode::User => message.from == Role::User,
            Mode::Agent => message.agent.as_ref() == Some(&self.me),
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId::Int(self.next_request)
    }

    fn conversation(&mut self, user: &Name) -> &mut Conversation {
        self.conversations
            .entry(user.clone())
            .or_insert_with(|| Conversation::new(user.clone()))
    }

    /// Signed in, so a frame sent now reaches the server (while `Syncing`
    /// too: the server answers in order behind the resume).
    fn is_connected(&self) -> bool {
        matches!(self.connection, Connection::Online | Connection::Syncing)
    }

    fn notify(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
            since: self.now,
        });
    }

    /// Whom the input writes to, as its prompt says.
    pub fn prompt(&self) -> Prompt<'_> {
        match self.mode {
            Mode::User => Prompt::User,
            Mode::Agent => match self.current() {
                None => Prompt::NoOneSelected,
                Some(c) if self.note_mode => Prompt::Note {
                    user: c.user.as_str(),
                },
                Some(c) => Prompt::To {
                    user: c.user.as_str(),
                    locked: c.holder.as_ref().is_some_and(|h| *h != self.me),
                },
            },
        }
    }

    /// What [`layout`] needs to place the panes.
    pub fn shape(&self) -> Shape<'_> {
        Shape {
            mode: self.mode,
            prompt: self.prompt(),
            draft: self.editor.text(),
            cursor: self.editor.cursor(),
        }
    }

    /// Columns and rows of the conversation's message area.
    fn message_area(&self) -> (usize, usize) {
        let screen = ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1);
        let area = layout::layout(&self.shape(), screen);
        (
            usize::from(area.messages.width),
            usize::from(area.messages.height),
        )
    }
}

/// Applies `msg` to `app` and says what to do outside.
pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    let mut effects = Vec::new();
    match msg {
        Msg::Action(action) => on_action(app, action, &mut effects),
        Msg::Net(event) => on_net(app, event, &mut effects),
        Msg::Tick(now) => {
            app.now = now;
            let fade = now.as_micros() - NOTICE_SECONDS * 1_000_000;
            if app
                .notice
                .as_ref()
                .is_some_and(|n| !n.error && n.since.as_micros() < fade)
            {
                app.notice = None;
            }
        }
        Msg::Resize(columns, rows) => app.size = (columns, rows),
        Msg::NetworkStopped => {
            // It says why first (`Fatal`) when it gives up; otherwise, say it here.
            if !matches!(app.connection, Connection::Failed(_)) {
                app.notify(
                    "the connection task has stopped: nothing more can be sent (Ctrl-C quits)",
                    true,
                );
            }
        }
    }
    let idle = app.selected.is_none() || (app.follow_top && app.editor.is_empty());
    if app.mode == Mode::Agent
        && idle
        && let Some(first) = app.queue().first().map(|c| c.user.clone())
        && app.selected.as_ref() != Some(&first)
    {
        select(app, first, &mut effects);
    }
    if app.mode == Mode::Agent && app.alerts {
        let count = app.waiting_count();
        if app.title_count != Some(count) {
            app.title_count = Some(count);
            effects.push(Effect::Title(window_title(count)));
        }
    }
    effects
}

/// The window's title: how many of the agent's conversations (its own and
/// the unassigned) wait, e.g. `(3) switchboard`.
pub fn window_title(waiting: usize) -> String {
    if waiting == 0 {
        "switchboard".to_owned()
    } else {
        format!("({waiting}) switchboard")
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod test_support;
