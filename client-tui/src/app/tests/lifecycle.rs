//! Agent mode's protocol version 2 keys and what the client makes of the
//! state events: claim, release and resolve asked first, the transfer
//! picker, note mode, the queue's views and counts, alerts, the lines in
//! the conversation, and what a customer is told.

use super::*;

fn assigned(user: &str, agent: &str, by: Option<&str>) -> ServerFrame {
    ServerFrame::Assigned {
        id: None,
        user: name(user),
        agent: name(agent),
        by: by.map(name),
    }
}

fn presence_agent(agent: &str) -> ServerFrame {
    ServerFrame::Presence {
        role: Role::Agent,
        name: name(agent),
        online: true,
    }
}

fn changes(app: &App, user: &str) -> Vec<String> {
    app.conversations[&name(user)]
        .changes
        .iter()
        .map(|c| c.text.clone())
        .collect()
}

#[test]
fn claim_is_sent_at_once_and_release_and_resolve_ask_first() {
    let mut app = connected(Mode::Agent, "alice");
    message(&mut app, user_msg(1, "ana", "hello", Priority::Normal));
    let effects = update(&mut app, Msg::Action(Action::Claim));
    assert!(matches!(
        sends(&effects)[..],
        [ClientFrame::Claim { user, .. }] if user == "ana"
    ));
    // Resolve asks; any answer but y keeps it.
    assert!(sends(&update(&mut app, Msg::Action(Action::Resolve))).is_empty());
    assert_eq!(app.question, Some(Question::Resolve(name("ana"))));
    assert!(sends(&update(&mut app, Msg::Action(Action::Cancel))).is_empty());
    assert_eq!(app.question, None);
    update(&mut app, Msg::Action(Action::Resolve));
    let effects = update(&mut app, Msg::Action(Action::Confirm));
    assert!(matches!(
        sends(&effects)[..],
        [ClientFrame::Resolve { user, .. }] if user == "ana"
    ));
    assert_eq!(app.question, None);
}

/// The picker's choice, by name.
fn chosen(app: &App) -> Option<String> {
    app.picker
        .as_ref()
        .and_then(|p| p.agent.as_ref())
        .map(|agent| agent.to_string())
}

/// Typed into the picker, key by key as the keymap sends them.
fn type_in(app: &mut App, text: &str) {
    for c in text.chars() {
        update(app, Msg::Action(Action::Insert(c)));
    }
}

/// Typing narrows the list to the names it begins (ignoring case), and
/// names an agent the client does not know (offline, holding nothing):
/// Enter hands the conversation to that name, the server saying
/// `unknown_agent` if there is none. With nobody known, the picker opens
/// all the same, to type into; an empty name is not sent.
#[test]
fn typing_in_the_picker_narrows_it_or_names_an_agent_not_listed() {
    let mut app = connected(Mode::Agent, "alice");
    message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
    for agent in ["bob", "bea", "carol"] {
        frame(&mut app, presence_agent(agent));
    }
    update(&mut app, Msg::Action(Action::Transfer));
    assert_eq!(chosen(&app), Some("bea".to_owned()));
    type_in(&mut app, "C");
    assert_eq!(chosen(&app), Some("carol".to_owned()), "ignoring case");
    let picker = app.picker.clone().expect("open");
    let names: Vec<String> = listed(&app, &picker)
        .iter()
        .map(|c| c.agent.to_string())
        .collect();
    assert_eq!(names, ["carol"]);
    update(&mut app, Msg::Action(Action::Backspace));
    type_in(&mut app, "dora");
    assert_eq!(chosen(&app), None, "nobody listed is dora");
    let effects = update(&mut app, Msg::Action(Action::Confirm));
    assert!(matches!(
        sends(&effects)[..],
        [ClientFrame::Transfer { user, to, .. }] if user == "ana" && to == "dora"
    ));
    assert_eq!(app.picker, None);
    assert_eq!(app.editor.text(), "", "nothing typed into the message");

    // Nobody known: the picker opens to type into; Enter on nothing sends
    // nothing and keeps it open.
    let mut alone = connected(Mode::Agent, "alice");
    message(&mut alone, user_msg(1, "ana", "hi", Priority::Normal));
    update(&mut alone, Msg::Action(Action::Transfer));
    assert!(alone.picker.is_some());
    let effects = update(&mut alone, Msg::Action(Action::Confirm));
    assert!(sends(&effects).is_empty());
    assert!(alone.picker.is_some(), "still open, to type a name");
}

#[test]
fn the_transfer_picker_lists_agents_online_first_with_what_they_hold() {
    let mut app = connected(Mode::Agent, "alice");
    for (id, user) in [(1, "ana"), (2, "ben"), (3, "cy")] {
        message(&mut app, user_msg(id, user, "hi", Priority::Normal));
    }
    // zed holds two but is offline; bob is online and holds one.
    frame(&mut app, assigned("ben", "zed", None));
    frame(&mut app, assigned("cy", "zed", None));
    frame(&mut app, assigned("ana", "alice", None));
    frame(&mut app, presence_agent("bob"));
    frame(&mut app, presence_agent("alice"));
    let listed = |app: &App, user: &str| -> Vec<(String, bool, usize)> {
        app.transfer_choices(&name(user))
            .iter()
            .map(|c| (c.agent.to_string(), c.online, c.holds))
            .collect()
    };
    assert_eq!(
        listed(&app, "ana"),
        [("bob".into(), true, 0), ("zed".into(), false, 2)],
        "not its holder, alice"
    );
    // zed's conversation: alice may take it over (a supervisor may).
    assert_eq!(
        listed(&app, "ben"),
        [("alice".into(), true, 1), ("bob".into(), true, 0)]
    );
    update(&mut app, Msg::Action(Action::Transfer));
    assert_eq!(
        app.picker,
        Some(Picker {
            user: name("ana"),
            agent: Some(name("bob")),
            typed: String::new(),
        })
    );
    update(&mut app, Msg::Action(Action::SelectNext));
    update(&mut app, Msg::Action(Action::SelectNext)); // stays on the last
    // carol comes online and sorts first: the choice stays zed.
    frame(&mut app, presence_agent("carol"));
    assert_eq!(chosen(&app), Some("zed".to_owned()));
    let effects = update(&mut app, Msg::Action(Action::Confirm));
    assert!(matches!(
        sends(&effects)[..],
        [ClientFrame::Transfer { user, to, .. }] if user == "ana" && to == "zed"
    ));
    assert_eq!(app.picker, None);
    // The selection did not move while picking.
    assert_eq!(app.selected, Some(name("ana")));
}

#[test]
fn note_mode_sends_notes_and_a_note_answers_nothing() {
    let mut app = connected(Mode::Agent, "alice");
    message(&mut app, user_msg(1, "ana", "hello", Priority::Normal));
    update(&mut app, Msg::Action(Action::ToggleNote));
    assert_eq!(app.prompt().text(), "note ana › ");
    type_text(&mut app, "VIP customer");
    let effects = update(&mut app, Msg::Action(Action::Submit));
    assert!(matches!(
        sends(&effects)[..],
        [ClientFrame::Send { to: Some(to), note: true, body, .. }]
            if to == "ana" && body == "VIP customer"
    ));
    // A colleague's note arrives: ana still waits.
    let note = Message {
        note: true,
        ..agent_msg(2, "ana", "bob", "she called too")
    };
    message(&mut app, note);
    assert_eq!(app.conversations[&name("ana")].waiting.len(), 1);
    update(&mut app, Msg::Action(Action::ToggleNote));
    assert_eq!(app.prompt().text(), "to ana › ");
}

#[test]
fn the_default_view_and_every_count_leave_out_other_agents_conversations() {
    let mut app = connected(Mode::Agent, "alice");
    // bob's customer is the most urgent, but not alice's to work on.
    message(&mut app, user_msg(1, "zoe", "fraud!", Priority::Urgent));
    frame(&mut app, assigned("zoe", "bob", None));
    message(&mut app, user_msg(2, "ana", "hi", Priority::Normal));
    message(&mut app, user_msg(3, "zoe", "hello??", Priority::Urgent));
    let listed: Vec<&str> = app.queue().iter().map(|c| c.user.as_str()).collect();
    assert_eq!(listed, ["ana"]);
    assert_eq!(app.selected, Some(name("ana")), "a fresh client picks ana");
    assert_eq!(app.waiting_count(), 1);
    assert_eq!(app.conversations[&name("zoe")].unread, 0);
    for (view, expected) in [
        (QueueView::Mine, vec![]),
        (QueueView::Unassigned, vec!["ana"]),
        (QueueView::All, vec!["zoe", "ana"]),
        (QueueView::Open, vec!["ana"]),
    ] {
        update(&mut app, Msg::Action(Action::CycleView));
        assert_eq!(app.view, view);
        let listed: Vec<&str> = app.queue().iter().map(|c| c.user.as_str()).collect();
        assert_eq!(listed, expected, "{view:?}");
    }
}

#[test]
fn alerts_ring_for_a_new_waiting_conversation_or_an_urgent_message_only() {
    let mut app = connected(Mode::Agent, "alice");
    let bells = |effects: &[Effect]| effects.iter().filter(|e| **e == Effect::Bell).count();
    let effects = message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
    assert_eq!(bells(&effects), 1, "ana starts waiting");
    assert!(effects.contains(&Effect::Title("(1) switchboard".into())));
    let effects = message(
        &mut app,
        user_msg(2, "ana", "still there?", Priority::Normal),
    );
    assert_eq!(bells(&effects), 0, "ana was waiting already");
    let effects = message(&mut app, user_msg(3, "ana", "fraud!", Priority::Urgent));
    assert_eq!(bells(&effects), 1, "urgent");
    frame(&mut app, assigned("ana", "bob", None));
    let effects = message(
        &mut app,
        user_msg(4, "ana", "fraud again", Priority::Urgent),
    );
    assert_eq!(bells(&effects), 0, "bob's conversation");
    // With --no-alerts: nothing.
    let mut quiet = connected(Mode::Agent, "alice");
    quiet.alerts = false;
    let effects = message(&mut quiet, user_msg(1, "ana", "hi", Priority::Urgent));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Bell | Effect::Title(_)))
    );
}

#[test]
fn each_change_of_state_is_a_line_in_the_conversation_but_not_when_replayed() {
    let mut app = connected(Mode::Agent, "carol");
    message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
    frame(&mut app, assigned("ana", "alice", None));
    frame(&mut app, assigned("ana", "bob", Some("alice")));
    frame(
        &mut app,
        ServerFrame::Released {
            id: None,
            user: name("ana"),
            agent: name("bob"),
            by: None,
            reason: None,
        },
    );
    frame(
        &mut app,
        ServerFrame::Resolved {
            id: None,
            user: name("ana"),
            agent: name("carol"),
        },
    );
    assert_eq!(
        changes(&app, "ana"),
        [
            "alice took the conversation",
            "alice transferred ana to bob",
            "bob released it: back in the queue",
            "carol resolved it",
        ]
    );
    assert!(
        app.conversations[&name("ana")]
            .changes
            .iter()
            .all(|c| c.after == 1)
    );
    // A resume's snapshot restates who holds what: no new lines.
    reconnect(&mut app);
    frame(&mut app, assigned("ana", "bob", None));
    assert_eq!(changes(&app, "ana").len(), 4);
}

/// A claim of one's own conversation or a transfer to its holder changes
/// nothing: the reply says so, and the conversation gets no line.
#[test]
fn a_claim_or_transfer_that_changes_nothing_adds_no_line() {
    let mut app = connected(Mode::Agent, "alice");
    message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
    frame(&mut app, assigned("ana", "alice", None));
    let reply = |by: Option<&str>| ServerFrame::Assigned {
        id: Some(RequestId::Int(1)),
        user: name("ana"),
        agent: name("alice"),
        by: by.map(name),
    };
    frame(&mut app, reply(None));
    frame(&mut app, reply(Some("alice")));
    assert_eq!(changes(&app, "ana"), ["alice took the conversation"]);
    assert_eq!(
        app.notice.as_ref().map(|n| n.text.as_str()),
        Some("ana is already yours")
    );
}

#[test]
fn a_customer_sees_who_holds_the_conversation_and_that_it_was_resolved() {
    let mut app = connected(Mode::User, "ana");
    frame(&mut app, assigned("ana", "alice", None));
    frame(&mut app, assigned("ana", "bob", Some("alice")));
    frame(
        &mut app,
        ServerFrame::Resolved {
            id: None,
            user: name("ana"),
            agent: name("bob"),
        },
    );
    let ana = &app.conversations[&name("ana")];
    assert!(ana.resolved && ana.holder.is_none());
    assert_eq!(
        changes(&app, "ana"),
        [
            "alice is handling your conversation",
            "alice handed your conversation to bob",
            "bob marked your conversation resolved",
        ]
    );
    // Writing again reopens it.
    message(
        &mut app,
        user_msg(5, "ana", "one more thing", Priority::Normal),
    );
    assert!(!app.conversations[&name("ana")].resolved);
}

#[test]
fn the_resync_after_a_resume_is_no_news_either() {
    let mut app = connected(Mode::Agent, "carol");
    message(&mut app, user_msg(1, "ana", "hi", Priority::Urgent));
    frame(&mut app, assigned("ana", "carol", None));
    let lines = changes(&app, "ana").len();
    // The resume, then the second subscribe that re-syncs the queue.
    let effects = reconnect(&mut app);
    let subscribes: Vec<Option<RequestId>> = sends(&effects)
        .into_iter()
        .filter_map(|f| match f {
            ClientFrame::Subscribe { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    let [resume, resync] = &subscribes[..] else {
        panic!("a resume and a re-sync: {subscribes:?}");
    };
    frame(
        &mut app,
        ServerFrame::Subscribed {
            id: resume.clone(),
            backlog: 0,
            truncated: false,
        },
    );
    // The re-sync's snapshot: the waiting message and the holder again.
    let effects = message(&mut app, user_msg(1, "ana", "hi", Priority::Urgent));
    assert!(!effects.contains(&Effect::Bell), "{effects:?}");
    frame(&mut app, assigned("ana", "carol", None));
    frame(
        &mut app,
        ServerFrame::Subscribed {
            id: resync.clone(),
            backlog: 1,
            truncated: false,
        },
    );
    assert_eq!(changes(&app, "ana").len(), lines, "no line for old news");
    assert!(
        app.notice
            .as_ref()
            .is_none_or(|n| !n.text.contains("is now yours")),
        "{:?}",
        app.notice
    );
}
