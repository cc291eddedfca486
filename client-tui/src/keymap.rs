//! Keys → [`Action`]s: the one table of what every key does, per mode.
//!
//! The help overlay ([`help`]) is generated from the same place, so the screen
//! never lists a key that does something else. Add a key here, in [`action`]
//! and in [`help`], and a row in the table test.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

use crate::app::{Action, Mode, Msg};

/// What the keymap needs to know besides the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyContext {
    pub mode: Mode,
    pub help_open: bool,
    /// `?` opens the help only when there is nothing typed (else it is text).
    pub input_empty: bool,
    /// A release or resolve asks for `y`: any other key says no.
    pub asking: bool,
    /// The transfer picker is open: arrows choose, typing narrows the list
    /// (or names an agent not listed), Enter hands over.
    pub picking: bool,
}

/// A terminal event as messages for `update`: a key as its action, the
/// mouse wheel as a scroll of a few lines, a paste as the keys typed (line
/// ends made `\n`, other control characters dropped), a resize as the new
/// size.
pub fn terminal_msgs(ctx: KeyContext, event: Event) -> Vec<Msg> {
    match event {
        Event::Key(key) => action(ctx, key)
            .map(|a| vec![Msg::Action(a)])
            .unwrap_or_default(),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => vec![Msg::Action(Action::WheelUp)],
            MouseEventKind::ScrollDown => vec![Msg::Action(Action::WheelDown)],
            _ => vec![],
        },
        Event::Paste(text) => text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
            .map(|c| Msg::Action(Action::Insert(c)))
            .collect(),
        Event::Resize(columns, rows) => vec![Msg::Resize(columns, rows)],
        _ => vec![],
    }
}

/// The action for `key`, or `None` for a key that does nothing.
pub fn action(ctx: KeyContext, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let agent = ctx.mode == Mode::Agent;

    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if ctx.help_open {
        // Any of the help keys, Esc or q closes it; other keys are ignored so
        // nothing is typed behind the overlay.
        return match key.code {
            KeyCode::Esc | KeyCode::F(1) | KeyCode::Char('?') | KeyCode::Char('q') => {
                Some(Action::ToggleHelp)
            }
            _ => None,
        };
    }

    if ctx.asking {
        return Some(match key.code {
            KeyCode::Char('y' | 'Y') => Action::Confirm,
            _ => Action::Cancel,
        });
    }
    if ctx.picking {
        return match key.code {
            KeyCode::Up => Some(Action::SelectPrev),
            KeyCode::Down => Some(Action::SelectNext),
            KeyCode::Enter => Some(Action::Confirm),
            KeyCode::Esc => Some(Action::Cancel),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char(c) if !ctrl && !alt => Some(Action::Insert(c)),
            _ => None,
        };
    }

    let action = match (key.code, ctrl, alt) {
        (KeyCode::F(1), _, _) => Action::ToggleHelp,
        (KeyCode::Char('?'), false, false) if ctx.input_empty => Action::ToggleHelp,
        (KeyCode::Enter, _, true) => Action::Newline,
        (KeyCode::Enter, false, false) => Action::Submit,
        (KeyCode::Esc, _, _) => Action::Dismiss,

        // Agent: the queue.
        (KeyCode::Up, false, false) if agent => Action::SelectPrev,
        (KeyCode::Down, false, false) if agent => Action::SelectNext,
        (KeyCode::Char('p'), true, false) if agent => Action::SelectPrev,
        (KeyCode::Char('n'), true, false) if agent => Action::SelectNext,
        (KeyCode::Char('a'), false, true) if agent => Action::NextUnread,
        (KeyCode::Char('r'), true, false) if agent => Action::Release,
        (KeyCode::Char('c'), false, true) if agent => Action::Claim,
        (KeyCode::Char('r'), false, true) if agent => Action::Release,
        (KeyCode::Char('d'), false, true) if agent => Action::Resolve,
        (KeyCode::Char('t'), false, true) if agent => Action::Transfer,
        (KeyCode::Char('n'), false, true) if agent => Action::ToggleNote,
        (KeyCode::Char('v'), false, true) if agent => Action::CycleView,

        // Sent-line history: plain Up/Down for users, Alt for everyone.
        (KeyCode::Up, false, false) => Action::HistoryPrev,
        (KeyCode::Down, false, false) => Action::HistoryNext,
        (KeyCode::Up, false, true) => Action::HistoryPrev,
        (KeyCode::Down, false, true) => Action::HistoryNext,

        // Scrollback.
        (KeyCode::PageUp, _, _) => Action::ScrollUp,
        (KeyCode::PageDown, _, _) => Action::ScrollDown,
        (KeyCode::End, true, _) => Action::ScrollBottom,

        // Line editing.
        (KeyCode::Left, true, _) | (KeyCode::Char('b'), false, true) => Action::WordLeft,
        (KeyCode::Right, true, _) | (KeyCode::Char('f'), false, true) => Action::WordRight,
        (KeyCode::Left, false, _) | (KeyCode::Char('b'), true, false) => Action::Left,
        (KeyCode::Right, false, _) | (KeyCode::Char('f'), true, false) => Action::Right,
        (KeyCode::Home, _, _) | (KeyCode::Char('a'), true, false) => Action::Home,
        (KeyCode::End, false, _) | (KeyCode::Char('e'), true, false) => Action::End,
        (KeyCode::Backspace, _, true) | (KeyCode::Char('w'), true, false) => Action::DeleteWordBack,
        (KeyCode::Backspace, _, _) | (KeyCode::Char('h'), true, false) => Action::Backspace,
        (KeyCode::Delete, _, _) | (KeyCode::Char('d'), true, false) => Action::Delete,
        (KeyCode::Char('u'), true, false) => Action::KillToStart,
        (KeyCode::Char('k'), true, false) => Action::KillToEnd,
        (KeyCode::Char('l'), true, false) => Action::Redraw,
        (KeyCode::Tab, false, false) => Action::Insert('\t'),
        (KeyCode::Char(c), false, false) => Action::Insert(c),
        // Shift is reported with the shifted character; AltGr as Ctrl+Alt.
        (KeyCode::Char(c), true, true) => Action::Insert(c),
        _ => return None,
    };
    Some(action)
}

/// Every key, as the help overlay lists it: (keys, what they do).
pub fn help(mode: Mode) -> Vec<(&'static str, &'static str)> {
    let mut rows = vec![];
    if mode == Mode::Agent {
        rows.extend([
            (
                "Up / Down, Ctrl-P / Ctrl-N",
                "select the previous / next customer",
            ),
            ("Alt-A", "next unread conversation, most urgent first"),
            ("Enter", "send to the customer the prompt names"),
            ("Alt-C", "claim: take the selected conversation"),
            ("Alt-R, Ctrl-R", "release: back to the queue (asks first)"),
            ("Alt-D", "resolve: done, nothing waits (asks first)"),
            ("Alt-T", "transfer: pick an agent, or type a name"),
            ("Alt-N", "note mode: a private note, agents only"),
            ("Alt-V", "view: mine + unassigned, mine, unassigned, all"),
            ("Alt-Up / Alt-Down", "previous / next sent line"),
        ]);
    } else {
        rows.extend([
            ("Enter", "send"),
            ("Up / Down, Alt-Up / Alt-Down", "previous / next sent line"),
        ]);
    }
    rows.extend([
        ("Alt-Enter", "new line in the message"),
        (
            "Left / Right, Home / End",
            "move the cursor (Ctrl-B/F/A/E too)",
        ),
        ("Ctrl-Left / Ctrl-Right", "move by word (Alt-B / Alt-F too)"),
        ("Backspace / Delete", "delete a character"),
        (
            "Ctrl-W, Ctrl-U, Ctrl-K",
            "delete word / to line start / to line end",
        ),
        ("PgUp / PgDn, wheel", "scroll the conversation"),
        ("Ctrl-End", "back to the newest message"),
        ("Esc", "clear the notice and failed messages"),
        ("Ctrl-L", "redraw the screen"),
        ("? (empty input), F1", "this help; Esc closes it"),
        (
            "Ctrl-C",
            "quit (while messages are sending, press it twice)",
        ),
    ]);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    const NONE: KeyModifiers = KeyModifiers::NONE;
    const CTRL: KeyModifiers = KeyModifiers::CONTROL;
    const ALT: KeyModifiers = KeyModifiers::ALT;
    const SHIFT: KeyModifiers = KeyModifiers::SHIFT;

    fn ctx(mode: Mode) -> KeyContext {
        KeyContext {
            mode,
            help_open: false,
            input_empty: true,
            asking: false,
            picking: false,
        }
    }

    fn mouse(kind: MouseEventKind) -> Event {
        Event::Mouse(crossterm::event::MouseEvent {
            kind,
            column: 3,
            row: 4,
            modifiers: NONE,
        })
    }

    /// What `terminal_msgs` makes of an event, as the actions it carries.
    fn actions(event: Event) -> Vec<Action> {
        terminal_msgs(ctx(Mode::Agent), event)
            .into_iter()
            .map(|msg| match msg {
                Msg::Action(action) => action,
                other => panic!("not an action: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_mouse_wheel_scrolls_and_other_mouse_events_do_nothing() {
        assert_eq!(actions(mouse(MouseEventKind::ScrollUp)), [Action::WheelUp]);
        assert_eq!(
            actions(mouse(MouseEventKind::ScrollDown)),
            [Action::WheelDown]
        );
        for kind in [
            MouseEventKind::Down(crossterm::event::MouseButton::Left),
            MouseEventKind::Moved,
            MouseEventKind::ScrollLeft,
        ] {
            assert!(actions(mouse(kind)).is_empty(), "{kind:?}");
        }
    }

    #[test]
    fn a_paste_is_typed_with_its_line_ends_and_without_control_characters() {
        let typed = actions(Event::Paste("a\r\nb\rc\td\u{1b}[31m\u{7}".into()));
        let text: String = typed
            .iter()
            .map(|action| match action {
                Action::Insert(c) => *c,
                other => panic!("not typing: {other:?}"),
            })
            .collect();
        assert_eq!(text, "a\nb\nc\td[31m");
    }

    #[test]
    fn keys_become_actions_releases_nothing_and_a_resize_its_size() {
        assert_eq!(
            actions(Event::Key(key(KeyCode::Char('c'), CTRL))),
            [Action::Quit]
        );
        let mut released = key(KeyCode::Char('c'), CTRL);
        released.kind = KeyEventKind::Release;
        assert!(actions(Event::Key(released)).is_empty());
        assert!(matches!(
            terminal_msgs(ctx(Mode::User), Event::Resize(80, 24))[..],
            [Msg::Resize(80, 24)]
        ));
        assert!(terminal_msgs(ctx(Mode::User), Event::FocusGained).is_empty());
    }

    #[test]
    fn the_table() {
        use Action::*;
        use Mode::{Agent, User};
        let typing = |mode| KeyContext {
            input_empty: false,
            ..ctx(mode)
        };
        let asking = |mode| KeyContext {
            asking: true,
            ..ctx(mode)
        };
        let picking = |mode| KeyContext {
            picking: true,
            ..ctx(mode)
        };
        let rows: Vec<(KeyContext, KeyEvent, Option<Action>)> = vec![
            (ctx(User), key(KeyCode::Char('c'), CTRL), Some(Quit)),
            (ctx(Agent), key(KeyCode::Char('c'), CTRL), Some(Quit)),
            (ctx(User), key(KeyCode::Enter, NONE), Some(Submit)),
            (ctx(User), key(KeyCode::Enter, ALT), Some(Newline)),
            (ctx(Agent), key(KeyCode::Enter, ALT), Some(Newline)),
            (ctx(User), key(KeyCode::Char('x'), NONE), Some(Insert('x'))),
            (ctx(User), key(KeyCode::Char('X'), SHIFT), Some(Insert('X'))),
            (ctx(User), key(KeyCode::Char('?'), NONE), Some(ToggleHelp)),
            (
                typing(User),
                key(KeyCode::Char('?'), NONE),
                Some(Insert('?')),
            ),
            (typing(Agent), key(KeyCode::F(1), NONE), Some(ToggleHelp)),
            (ctx(User), key(KeyCode::Up, NONE), Some(HistoryPrev)),
            (ctx(User), key(KeyCode::Down, NONE), Some(HistoryNext)),
            (ctx(Agent), key(KeyCode::Up, NONE), Some(SelectPrev)),
            (ctx(Agent), key(KeyCode::Down, NONE), Some(SelectNext)),
            (ctx(Agent), key(KeyCode::Char('p'), CTRL), Some(SelectPrev)),
            (ctx(Agent), key(KeyCode::Char('n'), CTRL), Some(SelectNext)),
            (ctx(Agent), key(KeyCode::Up, ALT), Some(HistoryPrev)),
            (ctx(Agent), key(KeyCode::Char('a'), ALT), Some(NextUnread)),
            (ctx(User), key(KeyCode::Char('a'), ALT), None),
            (ctx(Agent), key(KeyCode::Char('r'), CTRL), Some(Release)),
            (ctx(User), key(KeyCode::Char('r'), CTRL), None),
            (ctx(Agent), key(KeyCode::Char('c'), ALT), Some(Claim)),
            (ctx(Agent), key(KeyCode::Char('r'), ALT), Some(Release)),
            (ctx(Agent), key(KeyCode::Char('d'), ALT), Some(Resolve)),
            (ctx(Agent), key(KeyCode::Char('t'), ALT), Some(Transfer)),
            (ctx(Agent), key(KeyCode::Char('n'), ALT), Some(ToggleNote)),
            (ctx(Agent), key(KeyCode::Char('v'), ALT), Some(CycleView)),
            (ctx(User), key(KeyCode::Char('d'), ALT), None),
            (ctx(User), key(KeyCode::Char('n'), ALT), None),
            (asking(Agent), key(KeyCode::Char('y'), NONE), Some(Confirm)),
            (asking(Agent), key(KeyCode::Char('n'), NONE), Some(Cancel)),
            (asking(Agent), key(KeyCode::Enter, NONE), Some(Cancel)),
            (asking(Agent), key(KeyCode::Char('c'), CTRL), Some(Quit)),
            (picking(Agent), key(KeyCode::Down, NONE), Some(SelectNext)),
            (picking(Agent), key(KeyCode::Enter, NONE), Some(Confirm)),
            (picking(Agent), key(KeyCode::Esc, NONE), Some(Cancel)),
            (
                picking(Agent),
                key(KeyCode::Char('x'), NONE),
                Some(Insert('x')),
            ),
            (
                picking(Agent),
                key(KeyCode::Char('?'), NONE),
                Some(Insert('?')),
            ),
            (
                picking(Agent),
                key(KeyCode::Backspace, NONE),
                Some(Backspace),
            ),
            (picking(Agent), key(KeyCode::Char('x'), ALT), None),
            (ctx(User), key(KeyCode::PageUp, NONE), Some(ScrollUp)),
            (ctx(User), key(KeyCode::PageDown, NONE), Some(ScrollDown)),
            (ctx(User), key(KeyCode::End, CTRL), Some(ScrollBottom)),
            (ctx(User), key(KeyCode::Left, NONE), Some(Left)),
            (ctx(User), key(KeyCode::Left, CTRL), Some(WordLeft)),
            (ctx(User), key(KeyCode::Home, NONE), Some(Home)),
            (ctx(User), key(KeyCode::Char('a'), CTRL), Some(Home)),
            (ctx(User), key(KeyCode::End, NONE), Some(End)),
            (ctx(User), key(KeyCode::Backspace, NONE), Some(Backspace)),
            (
                ctx(User),
                key(KeyCode::Char('w'), CTRL),
                Some(DeleteWordBack),
            ),
            (ctx(User), key(KeyCode::Char('u'), CTRL), Some(KillToStart)),
            (ctx(User), key(KeyCode::Char('k'), CTRL), Some(KillToEnd)),
            (ctx(User), key(KeyCode::Esc, NONE), Some(Dismiss)),
            (ctx(User), key(KeyCode::F(5), NONE), None),
        ];
        for (ctx, key, expected) in rows {
            assert_eq!(action(ctx, key), expected, "{ctx:?} {key:?}");
        }
    }

    #[test]
    fn help_open_swallows_typing() {
        let open = KeyContext {
            help_open: true,
            ..ctx(Mode::User)
        };
        assert_eq!(action(open, key(KeyCode::Char('x'), NONE)), None);
        assert_eq!(action(open, key(KeyCode::Enter, NONE)), None);
        assert_eq!(
            action(open, key(KeyCode::Esc, NONE)),
            Some(Action::ToggleHelp)
        );
        assert_eq!(
            action(open, key(KeyCode::Char('c'), CTRL)),
            Some(Action::Quit)
        );
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut release = key(KeyCode::Char('x'), NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(action(ctx(Mode::User), release), None);
    }
}
