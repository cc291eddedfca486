//! History paging: each `history` request settles only its own
//! conversation, whatever fails (an error, an unreadable line).

use super::*;

fn history_of(app: &App, user: &str) -> HistoryState {
    app.conversations[&name(user)].history
}

/// The `id` of the one `history` request among `effects`.
fn history_request(effects: &[Effect]) -> RequestId {
    match &sends(effects)[..] {
        [ClientFrame::History { id: Some(id), .. }] => id.clone(),
        other => panic!("one history request expected: {other:?}"),
    }
}

/// A page of `HISTORY_PAGE` messages: not the last one.
fn full_page(id: RequestId, user: &str) -> ServerFrame {
    ServerFrame::History {
        id: Some(id),
        user: name(user),
        messages: (1..=u64::from(HISTORY_PAGE))
            .map(|i| user_msg(i, user, "older", Priority::Normal))
            .collect(),
    }
}

/// The release's `not_assigned` is not about ana's history: her page is
/// still on its way, and more pages may follow it.
#[test]
fn an_unrelated_error_does_not_end_history_paging() {
    let mut app = connected(Mode::Agent, "alice");
    let effects = message(&mut app, user_msg(200, "ana", "hi", Priority::Normal));
    let page = history_request(&effects);
    update(&mut app, Msg::Action(Action::Release));
    let effects = update(&mut app, Msg::Action(Action::Confirm));
    let [ClientFrame::Release { id: release, .. }] = &sends(&effects)[..] else {
        panic!("one release expected: {effects:?}");
    };
    frame(
        &mut app,
        ServerFrame::Error {
            id: release.clone(),
            code: ErrorCode::NotAssigned,
            message: "nobody holds ana".into(),
        },
    );
    assert_eq!(history_of(&app, "ana"), HistoryState::Loading);
    let notice = app.notice.as_ref().expect("the error is shown");
    assert!(
        notice.error && notice.text.contains("not_assigned"),
        "{notice:?}"
    );
    frame(&mut app, full_page(page, "ana"));
    assert_eq!(
        history_of(&app, "ana"),
        HistoryState::Loaded { complete: false }
    );
}

/// Only the conversation whose request failed stops loading; a user who
/// does not exist has nothing more to load, any other failure is retried
/// when the agent scrolls up.
#[test]
fn a_failed_history_request_settles_only_its_own_conversation() {
    let mut app = connected(Mode::Agent, "alice");
    let ana_page = history_request(&message(
        &mut app,
        user_msg(1, "ana", "hi", Priority::Normal),
    ));
    message(&mut app, user_msg(2, "bo", "hello", Priority::Normal));
    let bo_page = history_request(&update(&mut app, Msg::Action(Action::SelectNext)));
    assert_eq!(app.selected, Some(name("bo")));
    frame(
        &mut app,
        ServerFrame::Error {
            id: Some(bo_page),
            code: ErrorCode::Internal,
            message: "the server failed".into(),
        },
    );
    assert_eq!(history_of(&app, "bo"), HistoryState::NotLoaded, "retryable");
    assert_eq!(history_of(&app, "ana"), HistoryState::Loading, "untouched");
    let retry = update(&mut app, Msg::Action(Action::ScrollUp));
    assert!(
        matches!(
            sends(&retry)[..],
            [ClientFrame::History { user: Some(u), .. }] if u == "bo"
        ),
        "{retry:?}"
    );
    frame(
        &mut app,
        ServerFrame::Error {
            id: Some(ana_page),
            code: ErrorCode::UnknownUser,
            message: "no user ana".into(),
        },
    );
    assert_eq!(
        history_of(&app, "ana"),
        HistoryState::Loaded { complete: true }
    );
    assert_eq!(history_of(&app, "bo"), HistoryState::Loading, "the retry");
}

/// A line the client could not read may have been the page a
/// conversation waits for: it is shown, and nothing stays "loading".
#[test]
fn an_unreadable_line_is_shown_and_leaves_nothing_loading() {
    let mut app = connected(Mode::Agent, "alice");
    message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
    assert_eq!(history_of(&app, "ana"), HistoryState::Loading);
    update(
        &mut app,
        Msg::Net(NetEvent::Unreadable(FrameError::LineTooLong {
            max: 33_554_432,
        })),
    );
    let notice = app.notice.as_ref().expect("a notice");
    assert!(
        notice.error && notice.text.contains("line longer than 33554432 bytes"),
        "{notice:?}"
    );
    assert_eq!(history_of(&app, "ana"), HistoryState::NotLoaded);
    let retry = update(&mut app, Msg::Action(Action::ScrollUp));
    assert!(
        matches!(sends(&retry)[..], [ClientFrame::History { .. }]),
        "{retry:?}"
    );
}

/// An unreadable line that names its request settles only that request.
#[test]
fn an_unreadable_reply_with_an_id_settles_only_its_request() {
    let mut app = connected(Mode::Agent, "alice");
    message(&mut app, user_msg(1, "ana", "hi", Priority::Normal));
    message(&mut app, user_msg(2, "bo", "hello", Priority::Normal));
    let bo_page = history_request(&update(&mut app, Msg::Action(Action::SelectNext)));
    update(
        &mut app,
        Msg::Net(NetEvent::Unreadable(FrameError::BadFrame {
            id: Some(bo_page),
            reason: "unknown variant `hist0ry`".into(),
        })),
    );
    assert_eq!(history_of(&app, "bo"), HistoryState::NotLoaded);
    assert_eq!(history_of(&app, "ana"), HistoryState::Loading);
}
