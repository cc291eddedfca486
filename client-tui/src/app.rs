//! The client's whole state ([`App`]) and the one function that changes it,
//! [`update`]: a [`Msg`] in (a key's [`Action`], a server frame, a tick), the
//! [`Effect`]s to perform out (frames to send, quit). No I/O, no clock, no
//! terminal: everything here is tested by calling `update` and looking at the
//! state.

use std::collections::{BTreeMap, HashMap};

use switchboard_protocol::{
    ClientFrame, ErrorCode, FrameError, Key, Message, Name, Priority, RequestId, Role, ServerFrame,
    Timestamp,
};

use crate::editor::Editor;
use crate::layout::{self, Prompt, Shape};
use crate::text;

mod resync;

pub use crate::mode::Mode;
pub use resync::{WaitingQueue, WaitingResync};

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
    /// Lost; the network task retries (attempt 1, 2, … with backoff).
    Reconnecting {
        attempt: u32,
        reason: String,
    },
    /// The network task gave up (the token was refused): only quitting helps.
    Failed(String),
}

/// What a key asks for; [`crate::keymap`] maps keys to these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Insert(char),
    Newline,
    Backspace,
    Delete,
    DeleteWordBack,
    KillToStart,
    KillToEnd,
    Left,
    Right,
    WordLeft,
    WordRight,
    Home,
    End,
    HistoryPrev,
    HistoryNext,
    Submit,
    SelectPrev,
    SelectNext,
    NextUnread,
    Release,
    ScrollUp,
    ScrollDown,
    ScrollBottom,
    WheelUp,
    WheelDown,
    ToggleHelp,
    Dismiss,
    Redraw,
    Quit,
}

/// What the network task reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// `hello` succeeded on a new connection (the first or a reconnect).
    Connected {
        agents_online: Option<u32>,
    },
    Frame(ServerFrame),
    /// A line from the server that is not a frame this client can read (too
    /// long, not JSON, an unknown shape). The connection goes on.
    Unreadable(FrameError),
    /// The connection dropped; attempt `attempt` follows after a backoff.
    Disconnected {
        attempt: u32,
        reason: String,
    },
    /// No point retrying (e.g. the token is no longer accepted).
    Fatal(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Action(Action),
    Net(NetEvent),
    /// The wall clock, for ages and "today"; sent every second.
    Tick(Timestamp),
    /// The terminal's size in columns and rows.
    Resize(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send(ClientFrame),
    /// Clear and repaint the whole terminal (Ctrl-L).
    Repaint,
    Quit,
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
}

/// A user message that no agent has answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub id: u64,
    pub priority: Priority,
    pub ts: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryState {
    NotLoaded,
    Loading,
    /// `complete`: the server had nothing older.
    Loaded {
        complete: bool,
    },
}

/// Scrollback position: lines above the newest one (0 follows new messages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scroll {
    pub offset: usize,
    /// Messages that arrived below while scrolled up.
    pub new_below: u32,
}

/// One customer's conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub user: Name,
    /// Ascending `id` (the same order as `ts`), no duplicates.
    pub messages: Vec<Message>,
    pub waiting: Vec<Waiting>,
    pub online: bool,
    pub holder: Option<Name>,
    pub unread: u32,
    pub history: HistoryState,
    pub scroll: Scroll,
}

impl Conversation {
    pub fn new(user: Name) -> Self {
        Self {
            user,
            messages: Vec::new(),
            waiting: Vec::new(),
            online: false,
            holder: None,
            unread: 0,
            history: HistoryState::NotLoaded,
            scroll: Scroll::default(),
        }
    }

    /// Adds `message` in `id` order; `false` if it was already there.
    fn insert(&mut self, message: Message) -> bool {
        match self.messages.binary_search_by_key(&message.id, |m| m.id) {
            Ok(_) => false,
            Err(at) => {
                self.messages.insert(at, message);
                true
            }
        }
    }

    /// The most urgent waiting priority.
    pub fn top_priority(&self) -> Option<Priority> {
        self.waiting.iter().map(|w| w.priority).max()
    }

    /// When the oldest waiting message was sent.
    pub fn oldest_waiting(&self) -> Option<Timestamp> {
        self.waiting.iter().map(|w| w.ts).min()
    }

    /// The queue's order: something waiting first, then most urgent, then
    /// waiting longest, then by name so the order is stable.
    fn queue_key(&self) -> impl Ord + '_ {
        (
            self.waiting.is_empty(),
            std::cmp::Reverse(self.top_priority()),
            self.oldest_waiting(),
            &self.user,
        )
    }
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
    pub server: String,
    pub connection: Connection,
    /// User mode: agents online, from `welcome` and `agents`.
    pub agents_online: Option<u32>,
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
    pub notice: Option<Notice>,
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

    /// Agent mode: conversations in queue order.
    pub fn queue(&self) -> Vec<&Conversation> {
        let mut rows: Vec<&Conversation> = self.conversations.values().collect();
        rows.sort_by(|a, b| a.queue_key().cmp(&b.queue_key()));
        rows
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
    }
    let idle = app.selected.is_none() || (app.follow_top && app.editor.is_empty());
    if app.mode == Mode::Agent
        && idle
        && let Some(first) = app.queue().first().map(|c| c.user.clone())
        && app.selected.as_ref() != Some(&first)
    {
        select(app, first, &mut effects);
    }
    effects
}

fn on_action(app: &mut App, action: Action, effects: &mut Vec<Effect>) {
    let editor = &mut app.editor;
    match action {
        Action::Insert(c) => editor.insert(c),
        Action::Newline => editor.insert('\n'),
        Action::Backspace => editor.backspace(),
        Action::Delete => editor.delete(),
        Action::DeleteWordBack => editor.delete_word_back(),
        Action::KillToStart => editor.kill_to_start(),
        Action::KillToEnd => editor.kill_to_end(),
        Action::Left => editor.left(),
        Action::Right => editor.right(),
        Action::WordLeft => editor.word_left(),
        Action::WordRight => editor.word_right(),
        Action::Home => editor.home(),
        Action::End => editor.end(),
        Action::HistoryPrev => editor.history_prev(),
        Action::HistoryNext => editor.history_next(),
        Action::Submit => submit(app, effects),
        Action::SelectPrev => {
            app.follow_top = false;
            move_selection(app, -1, effects);
        }
        Action::SelectNext => {
            app.follow_top = false;
            move_selection(app, 1, effects);
        }
        Action::NextUnread => {
            app.follow_top = false;
            next_unread(app, effects);
        }
        Action::Release => release(app, effects),
        Action::ScrollUp => {
            let page = app.message_area().1.saturating_sub(2).max(1);
            scroll_up(app, page, effects);
        }
        Action::ScrollDown => {
            let page = app.message_area().1.saturating_sub(2).max(1);
            scroll_down(app, page);
        }
        Action::WheelUp => scroll_up(app, WHEEL_LINES, effects),
        Action::WheelDown => scroll_down(app, WHEEL_LINES),
        Action::ScrollBottom => scroll_down(app, usize::MAX),
        Action::ToggleHelp => app.help_open = !app.help_open,
        Action::Dismiss => {
            app.notice = None;
            if let Some(name) = app.current_name().cloned() {
                app.outgoing.retain(|o| o.user != name || o.error.is_none());
            }
        }
        Action::Redraw => effects.push(Effect::Repaint),
        Action::Quit => effects.push(Effect::Quit),
    }
}

fn submit(app: &mut App, effects: &mut Vec<Effect>) {
    if app.editor.text().trim().is_empty() {
        return;
    }
    let Some(user) = app.current_name().cloned() else {
        app.notify(
            "no conversation selected: pick a customer with Up/Down",
            true,
        );
        return;
    };
    let body = app.editor.take();
    let request = app.request_id();
    let key_text = format!("{}-{}", app.key_prefix, app.next_request);
    let Some(key) = Key::new(key_text) else {
        app.notify("internal: idempotency key too long", true);
        return;
    };
    let outgoing = Outgoing {
        request,
        key,
        user: user.clone(),
        body,
        error: None,
    };
    if app.is_connected() {
        effects.push(Effect::Send(send_frame(app.mode, &outgoing)));
    }
    app.outgoing.push(outgoing);
    app.conversation(&user).scroll = Scroll::default();
}

fn send_frame(mode: Mode, outgoing: &Outgoing) -> ClientFrame {
    ClientFrame::Send {
        id: Some(outgoing.request.clone()),
        to: (mode == Mode::Agent).then(|| outgoing.user.to_string()),
        body: outgoing.body.clone(),
        key: Some(outgoing.key.clone()),
    }
}

fn release(app: &mut App, effects: &mut Vec<Effect>) {
    if app.mode != Mode::Agent {
        return;
    }
    let Some(user) = app.selected.clone() else {
        return;
    };
    // Unlike a message, a release is not kept and sent again on reconnect:
    // the network task would drop it, so say so instead of doing nothing.
    if !app.is_connected() {
        app.notify(
            format!("not connected: release {user} once reconnected"),
            true,
        );
        return;
    }
    let id = Some(app.request_id());
    effects.push(Effect::Send(ClientFrame::Release {
        id,
        user: user.to_string(),
    }));
}

fn move_selection(app: &mut App, step: isize, effects: &mut Vec<Effect>) {
    let queue: Vec<Name> = app.queue().iter().map(|c| c.user.clone()).collect();
    if queue.is_empty() {
        return;
    }
    let here = app
        .selected
        .as_ref()
        .and_then(|s| queue.iter().position(|n| n == s));
    let target = match here {
        None => 0,
        Some(i) => i.saturating_add_signed(step).min(queue.len() - 1),
    };
    select(app, queue[target].clone(), effects);
}

fn next_unread(app: &mut App, effects: &mut Vec<Effect>) {
    let target = app
        .queue()
        .into_iter()
        .find(|c| c.unread > 0 && Some(&c.user) != app.selected.as_ref())
        .map(|c| c.user.clone());
    match target {
        Some(user) => select(app, user, effects),
        None => app.notify("no unread conversations", false),
    }
}

/// Shows `user`'s conversation: swaps the draft, clears unread, fetches history.
fn select(app: &mut App, user: Name, effects: &mut Vec<Effect>) {
    if app.selected.as_ref() != Some(&user) {
        if let Some(old) = app.selected.take() {
            let draft = app.editor.text().to_owned();
            if draft.is_empty() {
                app.drafts.remove(&old);
            } else {
                app.drafts.insert(old, draft);
            }
        }
        let draft = app.drafts.remove(&user).unwrap_or_default();
        app.editor.set_text(draft);
        app.selected = Some(user.clone());
    }
    let online = app.is_connected();
    let id = app.request_id();
    let conversation = app.conversation(&user);
    conversation.unread = 0;
    if conversation.history == HistoryState::NotLoaded && online {
        conversation.history = HistoryState::Loading;
        app.history_requests.insert(id.clone(), user.clone());
        effects.push(Effect::Send(ClientFrame::History {
            id: Some(id),
            user: Some(user.to_string()),
            before: None,
            limit: Some(HISTORY_PAGE),
        }));
    }
}

fn scroll_up(app: &mut App, lines: usize, effects: &mut Vec<Effect>) {
    let (width, height) = app.message_area();
    let online = app.is_connected();
    let Some(name) = app.current_name().cloned() else {
        return;
    };
    let id = app.request_id();
    let mode = app.mode;
    let conversation = app.conversation(&name);
    let wanted = conversation.scroll.offset.saturating_add(lines);
    // Lines above the bottom of the view, counted only as far as needed.
    let total = lines_from_bottom(conversation, width, wanted.saturating_add(height));
    let max_offset = total.saturating_sub(height);
    conversation.scroll.offset = wanted.min(max_offset);
    let at_top = conversation.scroll.offset == max_offset;
    let more = conversation.history != HistoryState::Loaded { complete: true }
        && conversation.history != HistoryState::Loading;
    if at_top && more && online {
        conversation.history = HistoryState::Loading;
        let before = conversation.messages.first().map(|m| m.id);
        app.history_requests.insert(id.clone(), name.clone());
        effects.push(Effect::Send(ClientFrame::History {
            id: Some(id),
            user: (mode == Mode::Agent).then(|| name.to_string()),
            before,
            limit: Some(HISTORY_PAGE),
        }));
    }
}

fn scroll_down(app: &mut App, lines: usize) {
    let Some(name) = app.current_name().cloned() else {
        return;
    };
    let scroll = &mut app.conversation(&name).scroll;
    scroll.offset = scroll.offset.saturating_sub(lines);
    if scroll.offset == 0 {
        scroll.new_below = 0;
    }
}

/// How many lines the newest messages take, stopping once past `limit`.
pub fn lines_from_bottom(conversation: &Conversation, width: usize, limit: usize) -> usize {
    let mut total = 0;
    for message in conversation.messages.iter().rev() {
        total += text::message_height(message.body.as_str(), width);
        if total >= limit {
            break;
        }
    }
    total
}

fn on_net(app: &mut App, event: NetEvent, effects: &mut Vec<Effect>) {
    match event {
        NetEvent::Connected { agents_online } => {
            app.connection = Connection::Syncing;
            // Whatever went wrong with the old connection is over.
            app.notice = None;
            if agents_online.is_some() {
                app.agents_online = agents_online;
            }
            // The subscription replays presence and assignments; start clean so
            // nothing that changed while offline lingers.
            for conversation in app.conversations.values_mut() {
                conversation.online = false;
                conversation.holder = None;
                if conversation.history == HistoryState::Loading {
                    conversation.history = HistoryState::NotLoaded;
                }
            }
            // Their replies went with the old connection.
            app.history_requests.clear();
            app.waiting_resync = None;
            let resume = app.request_id();
            effects.push(Effect::Send(ClientFrame::Subscribe {
                id: Some(resume.clone()),
                since: app.last_id,
                limit: None,
            }));
            // An agent also asks for the waiting queue as it is now: a
            // conversation released while it was offline waits no more. The
            // queue on screen stays until that backlog replaces it.
            if app.mode == Mode::Agent && app.last_id.is_some() {
                let resync = app.request_id();
                app.waiting_resync = Some(WaitingResync::new(resume, resync.clone()));
                effects.push(Effect::Send(ClientFrame::Subscribe {
                    id: Some(resync),
                    since: None,
                    limit: None,
                }));
            }
            // Same key as before: if the first try was stored, the server
            // answers with the original message instead of storing it twice.
            for outgoing in app.outgoing.iter().filter(|o| o.error.is_none()) {
                effects.push(Effect::Send(send_frame(app.mode, outgoing)));
            }
            if let Some(user) = app.selected.clone() {
                select(app, user, effects);
            }
        }
        NetEvent::Disconnected { attempt, reason } => {
            app.connection = Connection::Reconnecting { attempt, reason };
        }
        NetEvent::Fatal(reason) => {
            app.notify(format!("{reason} (Ctrl-C quits)"), true);
            app.connection = Connection::Failed(reason);
        }
        NetEvent::Frame(frame) => on_frame(app, frame),
        NetEvent::Unreadable(error) => on_unreadable(app, &error),
    }
}

fn on_frame(app: &mut App, frame: ServerFrame) {
    match frame {
        ServerFrame::Message { message } => on_message(app, message, true),
        ServerFrame::Sent { id, message } => {
            app.outgoing.retain(|o| Some(&o.request) != id.as_ref());
            on_message(app, message, true);
        }
        ServerFrame::History { id, user, messages } => {
            if let Some(id) = &id {
                app.history_requests.remove(id);
            }
            let complete = messages.len() < HISTORY_PAGE as usize;
            for message in messages {
                on_message(app, message, false);
            }
            app.conversation(&user).history = HistoryState::Loaded { complete };
        }
        ServerFrame::Subscribed { id, truncated, .. } => {
            let rebuilt = app
                .waiting_resync
                .as_mut()
                .and_then(|resync| resync.on_subscribed(id.as_ref()));
            if let Some(queue) = rebuilt {
                app.waiting_resync = None;
                replace_waiting(app, queue);
                // Subscribed either way, even if the resume before it failed.
                app.connection = Connection::Online;
                return;
            }
            app.connection = Connection::Online;
            if truncated {
                app.notify(
                    "many messages while offline: the oldest are in the history (PgUp)",
                    false,
                );
            }
        }
        ServerFrame::Assigned { user, agent } => {
            let text = match app.mode {
                Mode::User => Some(format!("{agent} is now handling your conversation")),
                Mode::Agent if agent == app.me => Some(format!("{user} is now yours")),
                Mode::Agent => None,
            };
            app.conversation(&user).holder = Some(agent);
            if let Some(text) = text {
                app.notify(text, false);
            }
        }
        ServerFrame::Released { id, user, agent } => {
            if let Some(resync) = &mut app.waiting_resync {
                resync.on_released(&user, app.last_id);
            }
            let conversation = app.conversation(&user);
            conversation.holder = None;
            conversation.waiting.clear();
            if id.is_some() {
                app.notify(format!("released {user}"), false);
            } else if app.mode == Mode::User {
                app.notify(format!("{agent} closed the conversation"), false);
            }
        }
        ServerFrame::Presence { name, online, role } => {
            if role == Role::User {
                app.conversation(&name).online = online;
            }
        }
        ServerFrame::Agents { online } => app.agents_online = Some(online),
        ServerFrame::Error { id, code, message } => on_error(app, id, code, message),
        ServerFrame::Bye { reason } => {
            let reason = reason.unwrap_or_else(|| "closing".to_owned());
            app.notify(format!("server: {reason}"), true);
        }
        ServerFrame::Greeting { .. } | ServerFrame::Welcome { .. } | ServerFrame::Pong { .. } => {}
    }
}

/// The queue on screen becomes exactly what the re-sync brought.
fn replace_waiting(app: &mut App, queue: WaitingQueue) {
    for conversation in app.conversations.values_mut() {
        conversation.waiting.clear();
    }
    for (user, mut waiting) in queue {
        waiting.sort_by_key(|w| w.id);
        app.conversation(&user).waiting = waiting;
    }
}

fn on_error(app: &mut App, id: Option<RequestId>, code: ErrorCode, message: String) {
    let text = format!("{message} ({})", code.as_str());
    let failed = app
        .outgoing
        .iter_mut()
        .find(|o| id.as_ref() == Some(&o.request));
    if let Some(outgoing) = failed {
        // Shown inline, under the message it refused.
        outgoing.error = Some(text);
        return;
    }
    let history = id.as_ref().and_then(|id| app.history_requests.remove(id));
    if let Some(user) = history {
        // Only `unknown_user` says there is nothing to load.
        let retry = code != ErrorCode::UnknownUser;
        history_failed(app, &user, retry);
        app.notify(format!("could not load {user}'s history: {text}"), true);
        return;
    }
    if let Some(resync) = app.waiting_resync.as_mut()
        && id.as_ref() == Some(resync.resume())
    {
        resync.resume_failed();
        app.notify(format!("could not resume: {text}"), true);
        return;
    }
    if id.is_some() && id.as_ref() == app.waiting_resync.as_ref().map(|r| r.request()) {
        // The queue on screen is kept as it is; the next reconnect tries again.
        app.waiting_resync = None;
        app.notify(format!("could not refresh the waiting queue: {text}"), true);
        return;
    }
    app.notify(text, true);
}

/// A `history` request will get no page. If `retry`, the conversation may
/// ask again (when selected or scrolled to the top); else it has no more.
fn history_failed(app: &mut App, user: &Name, retry: bool) {
    let conversation = app.conversation(user);
    if conversation.history == HistoryState::Loading {
        conversation.history = if retry {
            HistoryState::NotLoaded
        } else {
            HistoryState::Loaded { complete: true }
        };
    }
}

/// A line the client could not read (see `net`). It may have been the page
/// a conversation waits for: the request it names, or, without a readable
/// id, every page in flight, stops loading and can be asked for again.
fn on_unreadable(app: &mut App, error: &FrameError) {
    let failed: Vec<Name> = match error.request_id() {
        Some(id) => app.history_requests.remove(id).into_iter().collect(),
        None => app.history_requests.drain().map(|(_, user)| user).collect(),
    };
    for user in &failed {
        history_failed(app, user, true);
    }
    app.notify(
        format!("the server sent a line this client cannot read: {error}"),
        true,
    );
}

/// A message from the subscription (`live`) or from `history`.
fn on_message(app: &mut App, message: Message, live: bool) {
    if live {
        app.last_id = app.last_id.max(Some(message.id));
    }
    let width = app.message_area().0;
    let own = app.is_own(&message);
    let shown = app.current_name() == Some(&message.user);
    let conversation = app.conversation(&message.user.clone());
    let newest = conversation
        .messages
        .last()
        .is_none_or(|m| m.id < message.id);
    let height = text::message_height(message.body.as_str(), width);
    let (id, from, priority, ts) = (message.id, message.from, message.priority, message.ts);
    if live && let Some(resync) = &mut app.waiting_resync {
        resync.on_message(&message);
    }
    let conversation = app.conversation(&message.user.clone());
    if !conversation.insert(message) {
        return;
    }
    if !live {
        return;
    }
    match from {
        Role::User => conversation.waiting.push(Waiting { id, priority, ts }),
        // An agent's answer resolves everything the user wrote before it.
        Role::Agent => conversation.waiting.retain(|w| w.id > id),
    }
    if own {
        return;
    }
    if !shown {
        conversation.unread += 1;
    } else if newest && conversation.scroll.offset > 0 {
        // Keep the lines on screen where they are while scrolled up.
        conversation.scroll.offset += height;
        conversation.scroll.new_below += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{go_online, message_from, name, reconnect, ts, type_text};
    use super::*;

    fn user_msg(id: u64, user: &str, body: &str, priority: Priority) -> Message {
        message_from(id, user, None, body, priority)
    }

    fn agent_msg(id: u64, user: &str, agent: &str, body: &str) -> Message {
        message_from(id, user, Some(agent), body, Priority::Normal)
    }

    fn frame(app: &mut App, frame: ServerFrame) -> Vec<Effect> {
        update(app, Msg::Net(NetEvent::Frame(frame)))
    }

    fn message(app: &mut App, m: Message) -> Vec<Effect> {
        frame(app, ServerFrame::Message { message: m })
    }

    fn connected(mode: Mode, me: &str) -> App {
        let mut app = App::new(mode, name(me), "test:1".into(), "k".into(), ts(1000));
        go_online(&mut app, None);
        app
    }

    fn sends(effects: &[Effect]) -> Vec<&ClientFrame> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    fn ids(app: &App, user: &str) -> Vec<u64> {
        app.conversations[&name(user)]
            .messages
            .iter()
            .map(|m| m.id)
            .collect()
    }

    #[test]
    fn user_conversation_is_in_ascending_order_whatever_the_arrival() {
        let mut app = connected(Mode::User, "ana");
        message(&mut app, user_msg(5, "ana", "five", Priority::Normal));
        message(&mut app, user_msg(7, "ana", "seven", Priority::Normal));
        frame(
            &mut app,
            ServerFrame::History {
                id: None,
                user: name("ana"),
                messages: vec![
                    user_msg(2, "ana", "two", Priority::Normal),
                    agent_msg(3, "ana", "bob", "three"),
                ],
            },
        );
        assert_eq!(ids(&app, "ana"), vec![2, 3, 5, 7]);
        assert_eq!(
            app.last_id,
            Some(7),
            "history does not move the resume point"
        );
    }

    #[test]
    fn agent_queue_orders_by_priority_then_oldest_waiting() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "old_normal", "hi", Priority::Normal));
        message(&mut app, user_msg(2, "new_normal", "hi", Priority::Normal));
        message(&mut app, user_msg(3, "high", "refund", Priority::High));
        message(&mut app, user_msg(4, "urgent", "fraud", Priority::Urgent));
        message(&mut app, user_msg(5, "answered", "hi", Priority::Urgent));
        message(&mut app, agent_msg(6, "answered", "bob", "done"));
        // An urgent message moves a customer up; among the urgent ones, who
        // has waited longest (since their first unanswered message) comes first.
        message(
            &mut app,
            user_msg(7, "new_normal", "hacked", Priority::Urgent),
        );
        let order: Vec<&str> = app.queue().iter().map(|c| c.user.as_str()).collect();
        assert_eq!(
            order,
            vec!["new_normal", "urgent", "high", "old_normal", "answered"]
        );
        let row = &app.conversations[&name("new_normal")];
        assert_eq!(row.waiting.len(), 2);
        assert_eq!(row.top_priority(), Some(Priority::Urgent));
        assert_eq!(row.oldest_waiting(), Some(ts(2)));
    }

    #[test]
    fn first_row_is_selected_and_its_history_fetched() {
        let mut app = connected(Mode::Agent, "alice");
        let effects = message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
        assert_eq!(app.selected, Some(name("ana")));
        assert!(matches!(
            sends(&effects)[..],
            [ClientFrame::History { user: Some(u), before: None, .. }] if u == "ana"
        ));
    }

    #[test]
    fn reconnect_resumes_since_last_id_and_dedups() {
        let mut app = connected(Mode::User, "ana");
        message(&mut app, user_msg(1, "ana", "one", Priority::Normal));
        message(&mut app, agent_msg(2, "ana", "bob", "two"));
        update(
            &mut app,
            Msg::Net(NetEvent::Disconnected {
                attempt: 1,
                reason: "reset".into(),
            }),
        );
        assert!(matches!(
            app.connection,
            Connection::Reconnecting { attempt: 1, .. }
        ));
        let effects = update(
            &mut app,
            Msg::Net(NetEvent::Connected {
                agents_online: Some(1),
            }),
        );
        assert!(matches!(
            sends(&effects)[..],
            [ClientFrame::Subscribe { since: Some(2), .. }]
        ));
        // The server replays from 3, but a duplicate must not show twice.
        message(&mut app, agent_msg(2, "ana", "bob", "two"));
        message(&mut app, agent_msg(3, "ana", "bob", "three"));
        assert_eq!(ids(&app, "ana"), vec![1, 2, 3]);
    }

    /// An agent with ana and bo waiting reconnects: the resume (since the
    /// last message) and the plain subscribe for the queue, by request id.
    fn agent_reconnects_with_two_waiting() -> (App, Option<RequestId>, Option<RequestId>) {
        let mut app = connected(Mode::Agent, "alice");
        message(
            &mut app,
            user_msg(1, "ana", "answered while away", Priority::High),
        );
        message(
            &mut app,
            user_msg(2, "bo", "still waiting", Priority::Normal),
        );
        let effects = reconnect(&mut app);
        let frames = sends(&effects);
        let ClientFrame::Subscribe {
            id: resume,
            since: Some(2),
            ..
        } = frames[0].clone()
        else {
            panic!("a resume since the last message: {frames:?}");
        };
        let ClientFrame::Subscribe {
            id: resync,
            since: None,
            ..
        } = frames[1].clone()
        else {
            panic!("a plain subscribe for the waiting queue: {frames:?}");
        };
        (app, resume, resync)
    }

    /// The re-sync's backlog: only bo's message still waits.
    fn resync_brings_only_bo(app: &mut App, resync: Option<RequestId>) {
        message(app, user_msg(2, "bo", "still waiting", Priority::Normal));
        frame(
            app,
            ServerFrame::Subscribed {
                id: resync,
                backlog: 1,
                truncated: false,
            },
        );
        assert!(app.conversation(&name("ana")).waiting.is_empty());
        assert_eq!(app.conversation(&name("bo")).waiting.len(), 1);
    }

    /// A conversation released while the agent was offline stops waiting
    /// after the resume; one still waiting keeps its place in the queue.
    #[test]
    fn an_agent_resume_rebuilds_the_waiting_queue() {
        let (mut app, resume, resync) = agent_reconnects_with_two_waiting();
        // The resume: nothing new. Then the waiting queue.
        frame(
            &mut app,
            ServerFrame::Subscribed {
                id: resume,
                backlog: 0,
                truncated: false,
            },
        );
        resync_brings_only_bo(&mut app, resync);
        assert_eq!(app.waiting_resync, None);
        assert_eq!(ids(&app, "bo"), vec![2], "shown once");
    }

    /// A refused resume (say `internal`) must not wipe the queue: the plain
    /// subscribe behind it still rebuilds it, and brings the app online.
    #[test]
    fn a_failed_resume_still_rebuilds_the_waiting_queue_and_goes_online() {
        let (mut app, resume, resync) = agent_reconnects_with_two_waiting();
        frame(
            &mut app,
            ServerFrame::error(resume, ErrorCode::Internal, "the server failed"),
        );
        resync_brings_only_bo(&mut app, resync);
        assert_eq!(app.connection, Connection::Online);
    }

    #[test]
    fn pending_becomes_sent_and_is_resent_with_its_key_after_reconnect() {
        let mut app = connected(Mode::User, "ana");
        type_text(&mut app, "my card");
        let effects = update(&mut app, Msg::Action(Action::Submit));
        let [ClientFrame::Send { id, key, body, to }] = &sends(&effects)[..] else {
            panic!("one send expected: {effects:?}");
        };
        assert_eq!((body.as_str(), to), ("my card", &None));
        assert_eq!(app.outgoing.len(), 1, "pending until the server says sent");
        assert!(app.editor.is_empty());
        let (id, key) = (id.clone(), key.clone());

        let effects = reconnect(&mut app);
        let frames = sends(&effects);
        assert!(matches!(frames[0], ClientFrame::Subscribe { .. }));
        assert!(
            matches!(frames[1], ClientFrame::Send { key: k, .. } if *k == key),
            "resent with the same key"
        );
        frame(
            &mut app,
            ServerFrame::Sent {
                id,
                message: user_msg(9, "ana", "my card", Priority::Normal),
            },
        );
        assert!(app.outgoing.is_empty());
        assert_eq!(ids(&app, "ana"), vec![9]);
        assert_eq!(app.last_id, Some(9));
    }

    #[test]
    fn a_refused_message_shows_the_servers_error_and_is_not_resent() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
        frame(
            &mut app,
            ServerFrame::Assigned {
                user: name("ana"),
                agent: name("bob"),
            },
        );
        assert_eq!(
            app.conversations[&name("ana")].holder,
            Some(name("bob")),
            "locked: held by another agent"
        );
        type_text(&mut app, "hello");
        let effects = update(&mut app, Msg::Action(Action::Submit));
        let [ClientFrame::Send { id, to, .. }] = &sends(&effects)[..] else {
            panic!("one send expected");
        };
        assert_eq!(to.as_deref(), Some("ana"));
        frame(
            &mut app,
            ServerFrame::Error {
                id: id.clone(),
                code: ErrorCode::AssignedToOther,
                message: "ana is assigned to bob".into(),
            },
        );
        let failed = &app.outgoing[0];
        assert_eq!(
            failed.error.as_deref(),
            Some("ana is assigned to bob (assigned_to_other)")
        );
        let effects = update(
            &mut app,
            Msg::Net(NetEvent::Connected {
                agents_online: None,
            }),
        );
        assert!(
            !sends(&effects)
                .iter()
                .any(|f| matches!(f, ClientFrame::Send { .. })),
            "a refused message is not resent"
        );
        update(&mut app, Msg::Action(Action::Dismiss));
        assert!(app.outgoing.is_empty());
    }

    #[test]
    fn assignment_and_release_update_holder_and_waiting() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "ana", "hi", Priority::High));
        frame(
            &mut app,
            ServerFrame::Assigned {
                user: name("ana"),
                agent: name("alice"),
            },
        );
        assert_eq!(app.conversations[&name("ana")].holder, Some(name("alice")));
        let effects = update(&mut app, Msg::Action(Action::Release));
        assert!(matches!(
            sends(&effects)[..],
            [ClientFrame::Release { user, .. }] if user == "ana"
        ));
        frame(
            &mut app,
            ServerFrame::Released {
                id: Some(RequestId::Int(1)),
                user: name("ana"),
                agent: name("alice"),
            },
        );
        let ana = &app.conversations[&name("ana")];
        assert_eq!(ana.holder, None);
        assert!(ana.waiting.is_empty());
    }

    #[test]
    fn a_release_while_reconnecting_is_refused_with_a_notice() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "ana", "hi", Priority::High));
        update(
            &mut app,
            Msg::Net(NetEvent::Disconnected {
                attempt: 1,
                reason: "gone".into(),
            }),
        );
        let effects = update(&mut app, Msg::Action(Action::Release));
        assert!(sends(&effects).is_empty(), "nothing the network would drop");
        let notice = app.notice.as_ref().expect("a notice");
        assert!(
            notice.error && notice.text.contains("release ana"),
            "{notice:?}"
        );
    }

    #[test]
    fn unread_counts_and_alt_a_goes_to_the_most_urgent() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "first", "hi", Priority::Normal));
        assert_eq!(app.selected, Some(name("first")));
        // An explicit choice: the selection no longer follows the top row.
        update(&mut app, Msg::Action(Action::SelectNext));
        message(&mut app, user_msg(2, "calm", "hi", Priority::Low));
        message(&mut app, user_msg(3, "panic", "fraud", Priority::Urgent));
        message(&mut app, user_msg(4, "first", "again", Priority::Normal));
        assert_eq!(app.conversations[&name("first")].unread, 0, "selected");
        assert_eq!(app.conversations[&name("panic")].unread, 1);
        update(&mut app, Msg::Action(Action::NextUnread));
        assert_eq!(app.selected, Some(name("panic")));
        assert_eq!(app.conversations[&name("panic")].unread, 0);
        update(&mut app, Msg::Action(Action::NextUnread));
        assert_eq!(app.selected, Some(name("calm")));
    }

    #[test]
    fn selection_follows_the_top_row_only_while_idle() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "ana", "hi", Priority::Low));
        assert_eq!(app.selected, Some(name("ana")));
        message(&mut app, user_msg(2, "ben", "hi", Priority::Normal));
        assert_eq!(app.selected, Some(name("ben")), "idle: follows the top");
        type_text(&mut app, "Hello Ben");
        message(&mut app, user_msg(3, "cara", "fraud", Priority::Urgent));
        assert_eq!(app.selected, Some(name("ben")), "never moves under a draft");
        update(&mut app, Msg::Action(Action::KillToStart));
        assert_eq!(
            app.selected,
            Some(name("cara")),
            "moves once the draft is gone"
        );
        update(&mut app, Msg::Action(Action::SelectNext));
        assert_eq!(app.selected, Some(name("ben")));
        message(&mut app, user_msg(4, "dan", "emergency", Priority::Urgent));
        assert_eq!(app.selected, Some(name("ben")), "a chosen row stays chosen");
    }

    #[test]
    fn selection_keeps_a_draft_per_conversation() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "ana", "hi", Priority::Urgent));
        message(&mut app, user_msg(2, "ben", "hi", Priority::Normal));
        type_text(&mut app, "for ana");
        update(&mut app, Msg::Action(Action::SelectNext));
        assert_eq!(app.selected, Some(name("ben")));
        assert!(app.editor.is_empty());
        update(&mut app, Msg::Action(Action::SelectPrev));
        assert_eq!(app.editor.text(), "for ana");
    }

    /// Ana's 30 lines from bob on a 40×12 screen: more than fits.
    fn long_conversation() -> App {
        let mut app = connected(Mode::User, "ana");
        update(&mut app, Msg::Resize(40, 12));
        for id in 1..=30 {
            message(&mut app, agent_msg(id, "ana", "bob", "line"));
        }
        app
    }

    #[test]
    fn scrolled_up_view_stays_put_and_counts_new_messages() {
        let mut app = long_conversation();
        update(&mut app, Msg::Action(Action::ScrollUp));
        let offset = app.conversations[&name("ana")].scroll.offset;
        assert!(offset > 0);
        message(&mut app, agent_msg(31, "ana", "bob", "new"));
        let scroll = app.conversations[&name("ana")].scroll;
        assert_eq!(scroll.offset, offset + 2, "header line + one body line");
        assert_eq!(scroll.new_below, 1);
        update(&mut app, Msg::Action(Action::ScrollBottom));
        assert_eq!(app.conversations[&name("ana")].scroll, Scroll::default());
    }

    #[test]
    fn the_wheel_scrolls_a_few_lines_at_a_time() {
        let mut app = long_conversation();
        let offset = |app: &App| app.conversations[&name("ana")].scroll.offset;
        update(&mut app, Msg::Action(Action::WheelUp));
        assert_eq!(offset(&app), WHEEL_LINES);
        update(&mut app, Msg::Action(Action::WheelUp));
        assert_eq!(offset(&app), 2 * WHEEL_LINES);
        update(&mut app, Msg::Action(Action::WheelDown));
        assert_eq!(offset(&app), WHEEL_LINES);
        update(&mut app, Msg::Action(Action::WheelDown));
        update(&mut app, Msg::Action(Action::WheelDown));
        assert_eq!(offset(&app), 0, "not below the newest line");
    }

    #[test]
    fn scrolling_to_the_top_asks_for_older_history_once() {
        let mut app = connected(Mode::User, "ana");
        update(&mut app, Msg::Resize(40, 12));
        for id in 50..=60 {
            message(&mut app, agent_msg(id, "ana", "bob", "line"));
        }
        let effects = update(&mut app, Msg::Action(Action::ScrollUp));
        let effects = [effects, update(&mut app, Msg::Action(Action::ScrollUp))].concat();
        let asked: Vec<_> = sends(&effects)
            .into_iter()
            .filter(|f| matches!(f, ClientFrame::History { .. }))
            .collect();
        assert!(
            matches!(
                asked[..],
                [ClientFrame::History {
                    user: None,
                    before: Some(50),
                    ..
                }]
            ),
            "{asked:?}"
        );
        frame(
            &mut app,
            ServerFrame::History {
                id: None,
                user: name("ana"),
                messages: vec![user_msg(10, "ana", "old", Priority::Normal)],
            },
        );
        assert_eq!(ids(&app, "ana")[0], 10);
        assert_eq!(
            app.conversations[&name("ana")].history,
            HistoryState::Loaded { complete: true }
        );
        let effects = update(&mut app, Msg::Action(Action::ScrollUp));
        assert!(sends(&effects).is_empty(), "nothing older to ask for");
    }

    fn history_of(app: &App, user: &str) -> HistoryState {
        app.conversations[&name(user)].history
    }

    /// The `id` of the one `history` request among `effects`.
    fn history_request(effects: &[Effect]) -> RequestId {
        match &sends(effects)[..] {
            [ClientFrame::History { id: Some(id), .. }] => id.clone(),
            other => panic!("one history request expected: {other:?}"),
        }
    }

    /// A page of `HISTORY_PAGE` messages: not the last one.
    fn full_page(id: RequestId, user: &str) -> ServerFrame {
        ServerFrame::History {
            id: Some(id),
            user: name(user),
            messages: (1..=u64::from(HISTORY_PAGE))
                .map(|i| user_msg(i, user, "older", Priority::Normal))
                .collect(),
        }
    }

    /// The release's `not_assigned` is not about ana's history: her page is
    /// still on its way, and more pages may follow it.
    #[test]
    fn an_unrelated_error_does_not_end_history_paging() {
        let mut app = connected(Mode::Agent, "alice");
        let effects = message(&mut app, user_msg(200, "ana", "hi", Priority::Normal));
        let page = history_request(&effects);
        let effects = update(&mut app, Msg::Action(Action::Release));
        let [ClientFrame::Release { id: release, .. }] = &sends(&effects)[..] else {
            panic!("one release expected: {effects:?}");
        };
        frame(
            &mut app,
            ServerFrame::Error {
                id: release.clone(),
                code: ErrorCode::NotAssigned,
                message: "nobody holds ana".into(),
            },
        );
        assert_eq!(history_of(&app, "ana"), HistoryState::Loading);
        let notice = app.notice.as_ref().expect("the error is shown");
        assert!(
            notice.error && notice.text.contains("not_assigned"),
            "{notice:?}"
        );
        frame(&mut app, full_page(page, "ana"));
        assert_eq!(
            history_of(&app, "ana"),
            HistoryState::Loaded { complete: false }
        );
    }

    /// Only the conversation whose request failed stops loading; a user who
    /// does not exist has nothing more to load, any other failure is retried
    /// when the agent scrolls up.
    #[test]
    fn a_failed_history_request_settles_only_its_own_conversation() {
        let mut app = connected(Mode::Agent, "alice");
        let ana_page = history_request(&message(
            &mut app,
            user_msg(1, "ana", "hi", Priority::Normal),
        ));
        message(&mut app, user_msg(2, "bo", "hello", Priority::Normal));
        let bo_page = history_request(&update(&mut app, Msg::Action(Action::SelectNext)));
        assert_eq!(app.selected, Some(name("bo")));
        frame(
            &mut app,
            ServerFrame::Error {
                id: Some(bo_page),
                code: ErrorCode::Internal,
                message: "the server failed".into(),
            },
        );
        assert_eq!(history_of(&app, "bo"), HistoryState::NotLoaded, "retryable");
        assert_eq!(history_of(&app, "ana"), HistoryState::Loading, "untouched");
        let retry = update(&mut app, Msg::Action(Action::ScrollUp));
        assert!(
            matches!(
                sends(&retry)[..],
                [ClientFrame::History { user: Some(u), .. }] if u == "bo"
            ),
            "{retry:?}"
        );
        frame(
            &mut app,
            ServerFrame::Error {
                id: Some(ana_page),
                code: ErrorCode::UnknownUser,
                message: "no user ana".into(),
            },
        );
        assert_eq!(
            history_of(&app, "ana"),
            HistoryState::Loaded { complete: true }
        );
        assert_eq!(history_of(&app, "bo"), HistoryState::Loading, "the retry");
    }

    /// A line the client could not read may have been the page a
    /// conversation waits for: it is shown, and nothing stays "loading".
    #[test]
    fn an_unreadable_line_is_shown_and_leaves_nothing_loading() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
        assert_eq!(history_of(&app, "ana"), HistoryState::Loading);
        update(
            &mut app,
            Msg::Net(NetEvent::Unreadable(FrameError::LineTooLong {
                max: 33_554_432,
            })),
        );
        let notice = app.notice.as_ref().expect("a notice");
        assert!(
            notice.error && notice.text.contains("line longer than 33554432 bytes"),
            "{notice:?}"
        );
        assert_eq!(history_of(&app, "ana"), HistoryState::NotLoaded);
        let retry = update(&mut app, Msg::Action(Action::ScrollUp));
        assert!(
            matches!(sends(&retry)[..], [ClientFrame::History { .. }]),
            "{retry:?}"
        );
    }

    /// An unreadable line that names its request settles only that request.
    #[test]
    fn an_unreadable_reply_with_an_id_settles_only_its_request() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
        message(&mut app, user_msg(2, "bo", "hello", Priority::Normal));
        let bo_page = history_request(&update(&mut app, Msg::Action(Action::SelectNext)));
        update(
            &mut app,
            Msg::Net(NetEvent::Unreadable(FrameError::BadFrame {
                id: Some(bo_page),
                reason: "unknown variant `hist0ry`".into(),
            })),
        );
        assert_eq!(history_of(&app, "bo"), HistoryState::NotLoaded);
        assert_eq!(history_of(&app, "ana"), HistoryState::Loading);
    }

    /// After a reconnect: the resume's `subscribe` and the re-sync's.
    fn resume_and_resync(effects: &[Effect]) -> (RequestId, RequestId) {
        match &sends(effects)[..] {
            [
                ClientFrame::Subscribe {
                    id: Some(resume),
                    since: Some(_),
                    ..
                },
                ClientFrame::Subscribe {
                    id: Some(resync),
                    since: None,
                    ..
                },
                ..,
            ] => (resume.clone(), resync.clone()),
            other => panic!("a resume, then a plain subscribe: {other:?}"),
        }
    }

    fn subscribed(app: &mut App, id: RequestId, backlog: u32) {
        frame(
            app,
            ServerFrame::Subscribed {
                id: Some(id),
                backlog,
                truncated: false,
            },
        );
    }

    /// Ana wrote while alice was offline and bob released her before alice
    /// came back. The resume replays ana's message (first seen there); the
    /// re-sync's backlog, the waiting queue as it is now, does not have it.
    #[test]
    fn a_message_first_seen_in_the_resume_stops_waiting_if_the_resync_lacks_it() {
        let mut app = connected(Mode::Agent, "alice");
        message(
            &mut app,
            user_msg(1, "bo", "still waiting", Priority::Normal),
        );
        let (resume, resync) = resume_and_resync(&reconnect(&mut app));
        message(&mut app, user_msg(2, "ana", "refund?", Priority::High));
        message(&mut app, user_msg(3, "cy", "hello", Priority::Normal));
        subscribed(&mut app, resume, 2);
        message(
            &mut app,
            user_msg(1, "bo", "still waiting", Priority::Normal),
        );
        message(&mut app, user_msg(3, "cy", "hello", Priority::Normal));
        subscribed(&mut app, resync, 2);
        assert_eq!(app.waiting_resync, None);
        assert!(app.conversations[&name("ana")].waiting.is_empty());
        assert_eq!(app.conversations[&name("bo")].waiting.len(), 1);
        assert_eq!(app.conversations[&name("cy")].waiting.len(), 1);
        assert_eq!(ids(&app, "ana"), vec![2], "the message itself stays");
        assert_eq!(ids(&app, "cy"), vec![3], "shown once");
    }

    /// While the re-sync's backlog arrives, live events go on: an answer
    /// resolves what came before it, a release everything, a new message
    /// waits; the rebuilt queue says so, whatever the order of arrival.
    #[test]
    fn answers_releases_and_messages_during_the_resync_count() {
        let mut app = connected(Mode::Agent, "alice");
        message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
        message(&mut app, user_msg(2, "bo", "hi", Priority::Normal));
        let (resume, resync) = resume_and_resync(&reconnect(&mut app));
        subscribed(&mut app, resume, 0);
        message(&mut app, agent_msg(3, "ana", "bob", "answered"));
        message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
        message(&mut app, user_msg(2, "bo", "hi", Priority::Normal));
        frame(
            &mut app,
            ServerFrame::Released {
                id: None,
                user: name("bo"),
                agent: name("bob"),
            },
        );
        message(&mut app, user_msg(4, "cy", "fraud", Priority::Urgent));
        subscribed(&mut app, resync, 2);
        assert!(
            app.conversations[&name("ana")].waiting.is_empty(),
            "answered"
        );
        assert!(
            app.conversations[&name("bo")].waiting.is_empty(),
            "released"
        );
        assert_eq!(app.conversations[&name("cy")].waiting.len(), 1, "new");
    }

    #[test]
    fn presence_sets_online_dots() {
        let mut app = connected(Mode::Agent, "alice");
        frame(
            &mut app,
            ServerFrame::Presence {
                role: Role::User,
                name: name("ana"),
                online: true,
            },
        );
        assert!(app.conversations[&name("ana")].online);
        frame(
            &mut app,
            ServerFrame::Presence {
                role: Role::User,
                name: name("ana"),
                online: false,
            },
        );
        assert!(!app.conversations[&name("ana")].online);
    }
}

/// Steps the tests of the app and of its views share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// The connection comes up and the subscription completes.
    pub fn go_online(app: &mut App, agents_online: Option<u32>) {
        update(app, Msg::Net(NetEvent::Connected { agents_online }));
        update(
            app,
            Msg::Net(NetEvent::Frame(ServerFrame::Subscribed {
                id: None,
                backlog: 0,
                truncated: false,
            })),
        );
    }

    /// The connection drops and comes back; returns what the app sends.
    pub fn reconnect(app: &mut App) -> Vec<Effect> {
        update(
            app,
            Msg::Net(NetEvent::Disconnected {
                attempt: 1,
                reason: "reset".into(),
            }),
        );
        update(
            app,
            Msg::Net(NetEvent::Connected {
                agents_online: None,
            }),
        )
    }

    pub fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            update(app, Msg::Action(Action::Insert(c)));
        }
    }

    pub fn name(text: &str) -> Name {
        Name::parse(text).expect("valid name")
    }

    /// A time stamp `seconds` into a fixed day.
    pub fn ts(seconds: i64) -> Timestamp {
        Timestamp::from_micros(1_800_000_000_000_000 + seconds * 1_000_000)
    }

    /// A stored message: the user's when `agent` is `None`.
    pub fn message_from(
        id: u64,
        user: &str,
        agent: Option<&str>,
        body: &str,
        priority: Priority,
    ) -> Message {
        Message {
            id,
            ts: ts(id as i64),
            user: name(user),
            from: if agent.is_some() {
                Role::Agent
            } else {
                Role::User
            },
            agent: agent.map(name),
            body: switchboard_protocol::Body::parse(body, usize::MAX).expect("valid body"),
            priority,
        }
    }
}
