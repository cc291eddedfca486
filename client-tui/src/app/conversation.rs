//! One customer's conversation as the client holds it: its messages in `id`
//! order, what waits for an answer, paging of its history and its scroll
//! position, and where it sorts in an agent's queue.

use switchboard_protocol::{Message, Name, Priority, Timestamp};

/// A line in a conversation for a change of its state (protocol version
/// 2): who took, released, resolved or transferred it. Drawn after the
/// message it came after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The newest message id the client had when it happened (0: none).
    pub after: u64,
    pub ts: Timestamp,
    pub text: String,
}

/// Agent mode: which conversations the queue lists. The default, `Open`,
/// is what an agent can work on: its own and the unassigned; counts
/// (`Queue (N)`, unread, the window title) always count only those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueView {
    #[default]
    Open,
    Mine,
    Unassigned,
    All,
}

impl QueueView {
    /// The view after this one, round.
    pub fn next(self) -> Self {
        match self {
            QueueView::Open => QueueView::Mine,
            QueueView::Mine => QueueView::Unassigned,
            QueueView::Unassigned => QueueView::All,
            QueueView::All => QueueView::Open,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            QueueView::Open => "mine + unassigned",
            QueueView::Mine => "mine",
            QueueView::Unassigned => "unassigned",
            QueueView::All => "all",
        }
    }

    /// Whether `c` is listed, for the agent `me`.
    pub fn shows(self, c: &Conversation, me: &Name) -> bool {
        let mine = c.holder.as_ref() == Some(me);
        match self {
            QueueView::Open => mine || c.holder.is_none(),
            QueueView::Mine => mine,
            QueueView::Unassigned => c.holder.is_none(),
            QueueView::All => true,
        }
    }
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
    /// Resolved, and nothing written since (the user's screen says so).
    pub resolved: bool,
    /// Lines for changes of holder and state, oldest first.
    pub changes: Vec<Change>,
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
            resolved: false,
            changes: Vec::new(),
            unread: 0,
            history: HistoryState::NotLoaded,
            scroll: Scroll::default(),
        }
    }

    /// Adds `message` in `id` order; `false` if it was already there.
    pub(super) fn insert(&mut self, message: Message) -> bool {
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
    pub(super) fn queue_key(&self) -> impl Ord + '_ {
        (
            self.waiting.is_empty(),
            std::cmp::Reverse(self.top_priority()),
            self.oldest_waiting(),
            &self.user,
        )
    }
}
