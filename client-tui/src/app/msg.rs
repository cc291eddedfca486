//! The messages of the Elm loop: what goes into [`update`](super::update)
//! ([`Msg`]: a key's [`Action`], a [`NetEvent`] from the network task, a
//! tick, a resize) and what comes out ([`Effect`]s for the event loop).

use switchboard_protocol::{ClientFrame, FrameError, ServerFrame, Timestamp};

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
    /// Agent: take the selected conversation (`claim`).
    Claim,
    /// Agent: put it back in the queue; asks first.
    Release,
    /// Agent: mark it done; asks first.
    Resolve,
    /// Agent: open the picker of agents to hand it to.
    Transfer,
    /// Agent: the next Enter writes a private note, or a message again.
    ToggleNote,
    /// Agent: the queue's next view (open, mine, unassigned, all).
    CycleView,
    /// Yes to the question asked (release, resolve), or the agent picked.
    Confirm,
    /// No: the question or the picker goes away.
    Cancel,
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
    /// `hello` succeeded on a new connection (the first or a reconnect),
    /// to the node at `node` (`host:port`, one of `--server`).
    Connected {
        node: String,
        agents_online: Option<u32>,
    },
    Frame(ServerFrame),
    /// A line from the server that is not a frame this client can read (too
    /// long, not JSON, an unknown shape). The connection goes on.
    Unreadable(FrameError),
    /// The connection dropped; attempt `attempt` follows, to the node at
    /// `next`, after the wait that `reason` ends with.
    Disconnected {
        attempt: u32,
        reason: String,
        next: String,
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
    /// The network task has ended, so nothing more can be sent (the event
    /// loop found its channel closed).
    NetworkStopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send(ClientFrame),
    /// Clear and repaint the whole terminal (Ctrl-L).
    Repaint,
    /// Ring the terminal's bell: a new conversation waits, or an urgent
    /// message came.
    Bell,
    /// The terminal window's title, e.g. `(3) switchboard`.
    Title(String),
    Quit,
}
