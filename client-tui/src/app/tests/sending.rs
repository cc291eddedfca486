//! Sending: pending messages, their confirmation or refusal, and resending
//! with the same key after a reconnect.

use super::*;

#[test]
fn pending_becomes_sent_and_is_resent_with_its_key_after_reconnect() {
    let mut app = connected(Mode::User, "ana");
    type_text(&mut app, "my card");
    let effects = update(&mut app, Msg::Action(Action::Submit));
    let [
        ClientFrame::Send {
            id, key, body, to, ..
        },
    ] = &sends(&effects)[..]
    else {
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
            id: None,
            user: name("ana"),
            agent: name("bob"),
            by: None,
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
            node: "127.0.0.1:7878".into(),
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

/// Ctrl-C with a message still sending warns first: the message lives only
/// in this client until the server has it. A second Ctrl-C quits anyway;
/// with nothing pending, the first does.
#[test]
fn quitting_with_a_message_still_sending_asks_first() {
    let quits = |effects: &[Effect]| effects.iter().any(|e| matches!(e, Effect::Quit));
    let mut app = connected(Mode::User, "ana");
    type_text(&mut app, "pending then quit");
    update(&mut app, Msg::Action(Action::Submit));
    let effects = update(&mut app, Msg::Action(Action::Quit));
    assert!(!quits(&effects), "not at the first Ctrl-C");
    let notice = app.notice.as_ref().expect("a warning");
    assert!(notice.error);
    assert_eq!(
        notice.text,
        "1 message is not sent yet and will be lost: Ctrl-C again to quit anyway"
    );
    assert!(quits(&update(&mut app, Msg::Action(Action::Quit))));

    let mut app = connected(Mode::User, "ana");
    assert!(quits(&update(&mut app, Msg::Action(Action::Quit))));
}
