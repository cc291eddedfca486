//! Reconnecting: the resume with `since`, and an agent's re-sync of the
//! waiting queue.

use super::*;

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
            next: "127.0.0.1:7878".into(),
        }),
    );
    assert!(matches!(
        app.connection,
        Connection::Reconnecting { attempt: 1, .. }
    ));
    let notice = app.notice.as_ref().expect("the reason is shown");
    assert_eq!(notice.text, "connection lost: reset");
    let effects = update(
        &mut app,
        Msg::Net(NetEvent::Connected {
            node: "127.0.0.1:7878".into(),
            agents_online: Some(1),
        }),
    );
    assert!(matches!(
        sends(&effects)[..],
        [ClientFrame::Subscribe { since: Some(2), .. }]
    ));
    assert!(app.notice.is_none(), "back online: the reason is gone");
    // The server replays from 3, but a duplicate must not show twice.
    message(&mut app, agent_msg(2, "ana", "bob", "two"));
    message(&mut app, agent_msg(3, "ana", "bob", "three"));
    assert_eq!(ids(&app, "ana"), vec![1, 2, 3]);
}

/// Losing one node and landing on another is a reconnect like any other:
/// the header follows the node, the resume asks `since` the last id seen
/// on the old node, and a pending message goes again with its key.
#[test]
fn moving_to_another_node_resumes_and_resends_there() {
    let mut app = connected(Mode::User, "ana");
    message(&mut app, user_msg(4, "ana", "one", Priority::Normal));
    type_text(&mut app, "two");
    let effects = update(&mut app, Msg::Action(Action::Submit));
    let [ClientFrame::Send { key, .. }] = &sends(&effects)[..] else {
        panic!("one send expected: {effects:?}");
    };
    let key = key.clone();
    update(
        &mut app,
        Msg::Net(NetEvent::Disconnected {
            attempt: 1,
            reason: "the server closed the connection; trying b:7878 in 0.2 s".into(),
            next: "b:7878".into(),
        }),
    );
    assert_eq!(
        app.connection,
        Connection::Reconnecting {
            attempt: 1,
            reason: "the server closed the connection; trying b:7878 in 0.2 s".into(),
            next: "b:7878".into(),
        }
    );
    let effects = update(
        &mut app,
        Msg::Net(NetEvent::Connected {
            node: "b:7878".into(),
            agents_online: Some(2),
        }),
    );
    assert_eq!(app.server, "b:7878");
    match &sends(&effects)[..] {
        [
            ClientFrame::Subscribe { since: Some(4), .. },
            ClientFrame::Send { key: resent, .. },
        ] => assert_eq!(*resent, key, "the same key on the new node"),
        other => panic!("a resume since 4, then the resend: {other:?}"),
    }
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
/// resolves what came before it, a resolve everything, a new message
/// waits; the rebuilt queue says so, whatever the order of arrival.
#[test]
fn answers_resolves_and_messages_during_the_resync_count() {
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
        ServerFrame::Resolved {
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
        "resolved"
    );
    assert_eq!(app.conversations[&name("cy")].waiting.len(), 1, "new");
}
