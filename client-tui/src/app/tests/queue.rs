//! The agent's queue and the selection: order, unread counts, following
//! the top row, drafts per conversation, holders and presence.

use super::*;

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

#[test]
fn assignment_release_and_resolve_update_holder_and_waiting() {
    let mut app = connected(Mode::Agent, "alice");
    message(&mut app, user_msg(1, "ana", "hi", Priority::High));
    frame(
        &mut app,
        ServerFrame::Assigned {
            id: None,
            user: name("ana"),
            agent: name("alice"),
            by: None,
        },
    );
    assert_eq!(app.conversations[&name("ana")].holder, Some(name("alice")));
    // A release asks first: nothing is sent until `y`.
    let asked = update(&mut app, Msg::Action(Action::Release));
    assert!(sends(&asked).is_empty());
    assert_eq!(app.question, Some(Question::Release(name("ana"))));
    let effects = update(&mut app, Msg::Action(Action::Confirm));
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
            by: None,
            reason: None,
        },
    );
    let ana = &app.conversations[&name("ana")];
    assert_eq!(ana.holder, None);
    assert_eq!(ana.waiting.len(), 1, "back in the queue, still waiting");
    frame(
        &mut app,
        ServerFrame::Resolved {
            id: None,
            user: name("ana"),
            agent: name("bob"),
        },
    );
    let ana = &app.conversations[&name("ana")];
    assert_eq!(ana.holder, None);
    assert!(ana.waiting.is_empty(), "resolved: nothing waits");
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
            next: "127.0.0.1:7878".into(),
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

/// "X is now yours" is news once: the `assigned` state a subscription
/// replays on a start or a reconnect says nothing new (first-hour
/// findings), while a live one does.
#[test]
fn is_now_yours_is_said_once_not_on_every_reconnect() {
    let mut app = connected(Mode::Agent, "alice");
    let assigned = || ServerFrame::Assigned {
        id: None,
        user: name("ana"),
        agent: name("alice"),
        by: None,
    };
    frame(&mut app, assigned());
    let notice = app.notice.as_ref().map(|n| n.text.clone());
    assert_eq!(notice.as_deref(), Some("ana is now yours"));
    app.notice = None;
    reconnect(&mut app);
    // The resume's state, before `subscribed`.
    frame(&mut app, assigned());
    assert_eq!(app.conversations[&name("ana")].holder, Some(name("alice")));
    assert!(
        app.notice.is_none(),
        "replayed state is no news: {:?}",
        app.notice
    );
}

#[test]
fn an_auto_release_says_the_holder_was_offline() {
    let offline = ServerFrame::Released {
        id: None,
        user: name("ana"),
        agent: name("alice"),
        by: None,
        reason: Some(switchboard_protocol::ReleaseReason::AgentOffline),
    };
    let mut agent = connected(Mode::Agent, "bob");
    frame(&mut agent, offline.clone());
    let notice = agent.notice.as_ref().expect("a notice");
    assert_eq!(
        notice.text,
        "ana is back in the queue: alice was offline too long"
    );
    let mut user = connected(Mode::User, "ana");
    frame(&mut user, offline);
    let notice = user.notice.as_ref().expect("a notice");
    assert_eq!(
        notice.text,
        "alice went offline: the next agent will answer"
    );
}
