//! Agent mode's selection (moving it, the next unread, swapping drafts) and
//! scrolling a conversation, which asks for older history at the top.

use switchboard_protocol::{ClientFrame, Name};

use super::{App, Conversation, Effect, HISTORY_PAGE, HistoryState, Mode};
use crate::text;

pub(super) fn move_selection(app: &mut App, step: isize, effects: &mut Vec<Effect>) {
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

pub(super) fn next_unread(app: &mut App, effects: &mut Vec<Effect>) {
    // Another agent's conversation is never "unread" news for this one.
    let target = app
        .queue()
        .into_iter()
        .filter(|c| super::QueueView::Open.shows(c, &app.me))
        .find(|c| c.unread > 0 && Some(&c.user) != app.selected.as_ref())
        .map(|c| c.user.clone());
    match target {
        Some(user) => select(app, user, effects),
        None => app.notify("no unread conversations", false),
    }
}

/// Shows `user`'s conversation: swaps the draft, clears unread, fetches history.
pub(super) fn select(app: &mut App, user: Name, effects: &mut Vec<Effect>) {
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

pub(super) fn scroll_up(app: &mut App, lines: usize, effects: &mut Vec<Effect>) {
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

pub(super) fn scroll_down(app: &mut App, lines: usize) {
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
    // A change of state is one line; counted all at once, as an upper bound.
    let mut total = conversation.changes.len();
    for message in conversation.messages.iter().rev() {
        total += text::message_height(message.body.as_str(), width);
        if total >= limit {
            break;
        }
    }
    total
}
