//! What a key's [`Action`] does to the app: editing goes to the editor,
//! sending and releasing become frames; moving the selection and scrolling
//! are in `navigate`.

use switchboard_protocol::{ClientFrame, Key};

use super::lifecycle::{self, Question};
use super::navigate::{move_selection, next_unread, scroll_down, scroll_up};
use super::{Action, App, Effect, Mode, Outgoing, Scroll, WHEEL_LINES};

pub(super) fn on_action(app: &mut App, action: Action, effects: &mut Vec<Effect>) {
    let editor = &mut app.editor;
    match action {
        Action::Insert(c) if app.picker.is_some() => lifecycle::type_in_picker(app, Some(c)),
        Action::Backspace if app.picker.is_some() => lifecycle::type_in_picker(app, None),
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
        Action::SelectPrev if app.picker.is_some() => lifecycle::pick(app, -1),
        Action::SelectNext if app.picker.is_some() => lifecycle::pick(app, 1),
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
        Action::Claim => lifecycle::claim(app, effects),
        Action::Release => lifecycle::ask(app, "release", Question::Release),
        Action::Resolve => lifecycle::ask(app, "resolve", Question::Resolve),
        Action::Transfer => lifecycle::open_picker(app),
        Action::ToggleNote => lifecycle::toggle_note(app),
        Action::CycleView => {
            app.view = app.view.next();
            app.follow_top = true;
            app.notify(format!("showing {}", app.view.label()), false);
        }
        Action::Confirm => lifecycle::confirm(app, effects),
        Action::Cancel => lifecycle::cancel(app),
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
        Action::Quit => quit(app, effects),
    }
}

/// How long a first Ctrl-C, warned of unsent messages, waits for the
/// second.
const QUIT_AGAIN_WITHIN_MICROS: i64 = 5_000_000;

/// Quits, unless messages are still `sending…`: they live only in this
/// client until the server has them, so the first Ctrl-C says so and a
/// second one (within a few seconds) quits anyway (first-hour findings:
/// the message was lost without a word).
fn quit(app: &mut App, effects: &mut Vec<Effect>) {
    let pending = app.outgoing.iter().filter(|o| o.error.is_none()).count();
    let asked_recently = app.quit_asked_at.is_some_and(|at| {
        app.now.as_micros().saturating_sub(at.as_micros()) <= QUIT_AGAIN_WITHIN_MICROS
    });
    if pending == 0 || asked_recently {
        effects.push(Effect::Quit);
        return;
    }
    app.quit_asked_at = Some(app.now);
    let what = if pending == 1 {
        "1 message is".to_owned()
    } else {
        format!("{pending} messages are")
    };
    app.notify(
        format!("{what} not sent yet and will be lost: Ctrl-C again to quit anyway"),
        true,
    );
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
        note: app.note_mode,
    };
    if app.is_connected() {
        effects.push(Effect::Send(send_frame(app.mode, &outgoing)));
    }
    app.outgoing.push(outgoing);
    app.conversation(&user).scroll = Scroll::default();
}

pub(super) fn send_frame(mode: Mode, outgoing: &Outgoing) -> ClientFrame {
    ClientFrame::Send {
        id: Some(outgoing.request.clone()),
        to: (mode == Mode::Agent).then(|| outgoing.user.to_string()),
        body: outgoing.body.clone(),
        key: Some(outgoing.key.clone()),
        note: outgoing.note,
    }
}
