//! What the network task reports, applied to the app: a new connection
//! (resume, re-sync, resend), a lost one, server frames, errors matched to
//! the request they answer, and lines the client cannot read.

use switchboard_protocol::{
    ClientFrame, ErrorCode, FrameError, Message, Name, Priority, ReleaseReason, RequestId, Role,
    ServerFrame,
};

use super::actions::send_frame;
use super::navigate::select;
use super::{
    App, Change, Connection, Effect, HISTORY_PAGE, HistoryState, Mode, NetEvent, Waiting,
    WaitingQueue, WaitingResync,
};
use crate::text;

pub(super) fn on_net(app: &mut App, event: NetEvent, effects: &mut Vec<Effect>) {
    match event {
        NetEvent::Connected {
            node,
            agents_online,
        } => {
            app.connection = Connection::Syncing;
            // Any node of the help desk: the resume below is the same on
            // each (`since` and keys mean the same cluster-wide).
            app.server = node;
            // Whatever went wrong with the old connection is over.
            app.notice = None;
            if agents_online.is_some() {
                app.agents_online = agents_online;
            }
            // The subscription replays presence and assignments; start clean so
            // nothing that changed while offline lingers.
            app.agents.clear();
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
        NetEvent::Disconnected {
            attempt,
            reason,
            next,
        } => {
            // Why, where and when the next try goes: a silent server (no
            // greeting) must not look like a frozen screen. `Connected`
            // clears it.
            app.notify(format!("connection lost: {reason}"), true);
            app.connection = Connection::Reconnecting {
                attempt,
                reason,
                next,
            };
        }
        NetEvent::Fatal(reason) => {
            app.notify(format!("{reason} (Ctrl-C quits)"), true);
            app.connection = Connection::Failed(reason);
        }
        NetEvent::Frame(frame) => on_frame(app, frame, effects),
        NetEvent::Unreadable(error) => on_unreadable(app, &error),
    }
}

fn on_frame(app: &mut App, frame: ServerFrame, effects: &mut Vec<Effect>) {
    // A subscription's snapshot (before `subscribed`) is state, not news:
    // no notices, no lines in the conversation, no alerts. After a resume
    // an agent subscribes a second time to re-sync its waiting queue: that
    // snapshot restates the state too.
    let replayed = app.connection == Connection::Syncing || app.waiting_resync.is_some();
    match frame {
        ServerFrame::Message { message } => {
            let alert = !replayed && alerts_for(app, &message);
            // Only news alerts: a message the client has is not.
            if on_message(app, message, true) && alert {
                effects.push(Effect::Bell);
            }
        }
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
        ServerFrame::Assigned {
            user, agent, by, ..
        } => {
            // A claim of one's own conversation, or a transfer to its holder,
            // is answered and changes nothing: no line, just the answer.
            let unchanged = app
                .conversations
                .get(&user)
                .is_some_and(|c| c.holder.as_ref() == Some(&agent) && !c.resolved);
            if unchanged {
                if !replayed && app.mode == Mode::Agent {
                    let whose = if agent == app.me {
                        "yours".to_owned()
                    } else {
                        format!("{agent}'s")
                    };
                    app.notify(format!("{user} is already {whose}"), false);
                }
                return;
            }
            // A subscription's state (before `subscribed`) says who holds
            // what already: news to nobody, so no notice (first-hour
            // findings: "ben is now yours" on every start and reconnect).
            if !replayed {
                let line = match (app.mode, &by) {
                    (Mode::User, None) => format!("{agent} is handling your conversation"),
                    (Mode::User, Some(giver)) => {
                        format!("{giver} handed your conversation to {agent}")
                    }
                    (Mode::Agent, None) => format!("{agent} took the conversation"),
                    (Mode::Agent, Some(giver)) => format!("{giver} transferred {user} to {agent}"),
                };
                record_change(app, &user, line);
            }
            let text = match app.mode {
                _ if replayed => None,
                Mode::User => Some(format!("{agent} is now handling your conversation")),
                Mode::Agent if agent == app.me => Some(match &by {
                    Some(giver) => format!("{giver} transferred {user} to you"),
                    None => format!("{user} is now yours"),
                }),
                Mode::Agent if by.as_ref() == Some(&app.me) => {
                    Some(format!("transferred {user} to {agent}"))
                }
                Mode::Agent => None,
            };
            let mine = agent == app.me;
            let conversation = app.conversation(&user);
            // Another agent's conversation is not this one's unread news.
            if !mine {
                conversation.unread = 0;
            }
            conversation.holder = Some(agent);
            conversation.resolved = false;
            if let Some(text) = text {
                app.notify(text, false);
            }
        }
        // Back in the queue (protocol version 2): what the customer asked
        // still waits, for whoever takes it next.
        ServerFrame::Released {
            id,
            user,
            agent,
            by,
            reason,
        } => {
            app.conversation(&user).holder = None;
            let offline = reason == Some(ReleaseReason::AgentOffline);
            let line = match (app.mode, &by) {
                (Mode::User, _) if offline => format!("{agent} went offline"),
                (Mode::User, _) => format!("{agent} handed your conversation back"),
                (Mode::Agent, _) if offline => {
                    format!("{agent} was offline too long: back in the queue")
                }
                (Mode::Agent, Some(by)) => {
                    format!("{by} released it from {agent}: back in the queue")
                }
                (Mode::Agent, None) => format!("{agent} released it: back in the queue"),
            };
            record_change(app, &user, line);
            let text = match app.mode {
                _ if id.is_some() => Some(format!("released {user}: back in the queue")),
                Mode::User if offline => {
                    Some(format!("{agent} went offline: the next agent will answer"))
                }
                Mode::User => Some(format!(
                    "{agent} handed your conversation back: the next agent will answer"
                )),
                Mode::Agent if offline => Some(format!(
                    "{user} is back in the queue: {agent} was offline too long"
                )),
                Mode::Agent => None,
            };
            if let Some(text) = text {
                app.notify(text, false);
            }
        }
        ServerFrame::Resolved { id, user, agent } => {
            if let Some(resync) = &mut app.waiting_resync {
                resync.on_resolved(&user, app.last_id);
            }
            let conversation = app.conversation(&user);
            conversation.holder = None;
            conversation.waiting.clear();
            conversation.resolved = true;
            let line = match app.mode {
                Mode::User => format!("{agent} marked your conversation resolved"),
                Mode::Agent => format!("{agent} resolved it"),
            };
            record_change(app, &user, line);
            if id.is_some() {
                app.notify(format!("resolved {user}"), false);
            } else if app.mode == Mode::User {
                app.notify(format!("{agent} resolved your conversation"), false);
            }
        }
        ServerFrame::Presence { name, online, role } => match role {
            Role::User => app.conversation(&name).online = online,
            Role::Agent if online => {
                app.agents.insert(name);
            }
            Role::Agent => {
                app.agents.remove(&name);
            }
        },
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

/// A message from the subscription (`live`) or from `history`; whether
/// it was new to the client.
fn on_message(app: &mut App, message: Message, live: bool) -> bool {
    if live {
        app.last_id = app.last_id.max(Some(message.id));
    }
    let width = app.message_area().0;
    let own = app.is_own(&message);
    let shown = app.current_name() == Some(&message.user);
    let app_me = app.me.clone();
    let conversation = app.conversation(&message.user.clone());
    let newest = conversation
        .messages
        .last()
        .is_none_or(|m| m.id < message.id);
    let height = text::message_height(message.body.as_str(), width);
    let (id, from, priority, ts, note) = (
        message.id,
        message.from,
        message.priority,
        message.ts,
        message.note,
    );
    if live && let Some(resync) = &mut app.waiting_resync {
        resync.on_message(&message);
    }
    let conversation = app.conversation(&message.user.clone());
    if !conversation.insert(message) {
        return false;
    }
    if !live {
        return true;
    }
    match from {
        Role::User => {
            conversation.waiting.push(Waiting { id, priority, ts });
            conversation.resolved = false;
        }
        // A note answers nothing.
        Role::Agent if note => {}
        // An agent's answer resolves everything the user wrote before it.
        Role::Agent => conversation.waiting.retain(|w| w.id > id),
    }
    if own {
        return true;
    }
    // Another agent's conversation is never unread news for this one.
    let others = conversation.holder.as_ref().is_some_and(|h| *h != app_me);
    if !shown && !others {
        conversation.unread += 1;
    } else if shown && newest && conversation.scroll.offset > 0 {
        // Keep the lines on screen where they are while scrolled up.
        conversation.scroll.offset += height;
        conversation.scroll.new_below += 1;
    }
    true
}

/// A line in `user`'s conversation for a change of its state, after the
/// newest message the client has of it.
fn record_change(app: &mut App, user: &Name, text: String) {
    let ts = app.now;
    let conversation = app.conversation(user);
    let after = conversation.messages.last().map_or(0, |m| m.id);
    conversation.changes.push(Change { after, ts, text });
}

/// Whether a live `message` is news an agent is alerted to (bell, title):
/// a customer's conversation starts waiting, or an urgent message came;
/// never one another agent holds, and never with alerts off.
fn alerts_for(app: &App, message: &Message) -> bool {
    if !app.alerts || app.mode != Mode::Agent || message.from != Role::User {
        return false;
    }
    let conversation = app.conversations.get(&message.user);
    let held_by_other = conversation
        .and_then(|c| c.holder.as_ref())
        .is_some_and(|holder| *holder != app.me);
    let starts_waiting = conversation.is_none_or(|c| c.waiting.is_empty());
    !held_by_other && (starts_waiting || message.priority == Priority::Urgent)
}
