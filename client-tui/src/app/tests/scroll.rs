//! Scrollback: the view stays put while scrolled up, the wheel, and asking
//! for older history at the top.

use super::*;

/// Ana's 30 lines from bob on a 40×12 screen: more than fits.
fn long_conversation() -> App {
    let mut app = connected(Mode::User, "ana");
    update(&mut app, Msg::Resize(40, 12));
    for id in 1..=30 {
        message(&mut app, agent_msg(id, "ana", "bob", "line"));
    }
    app
}

#[test]
fn scrolled_up_view_stays_put_and_counts_new_messages() {
    let mut app = long_conversation();
    update(&mut app, Msg::Action(Action::ScrollUp));
    let offset = app.conversations[&name("ana")].scroll.offset;
    assert!(offset > 0);
    message(&mut app, agent_msg(31, "ana", "bob", "new"));
    let scroll = app.conversations[&name("ana")].scroll;
    assert_eq!(scroll.offset, offset + 2, "header line + one body line");
    assert_eq!(scroll.new_below, 1);
    update(&mut app, Msg::Action(Action::ScrollBottom));
    assert_eq!(app.conversations[&name("ana")].scroll, Scroll::default());
}

#[test]
fn the_wheel_scrolls_a_few_lines_at_a_time() {
    let mut app = long_conversation();
    let offset = |app: &App| app.conversations[&name("ana")].scroll.offset;
    update(&mut app, Msg::Action(Action::WheelUp));
    assert_eq!(offset(&app), WHEEL_LINES);
    update(&mut app, Msg::Action(Action::WheelUp));
    assert_eq!(offset(&app), 2 * WHEEL_LINES);
    update(&mut app, Msg::Action(Action::WheelDown));
    assert_eq!(offset(&app), WHEEL_LINES);
    update(&mut app, Msg::Action(Action::WheelDown));
    update(&mut app, Msg::Action(Action::WheelDown));
    assert_eq!(offset(&app), 0, "not below the newest line");
}

#[test]
fn scrolling_to_the_top_asks_for_older_history_once() {
    let mut app = connected(Mode::User, "ana");
    update(&mut app, Msg::Resize(40, 12));
    for id in 50..=60 {
        message(&mut app, agent_msg(id, "ana", "bob", "line"));
    }
    let effects = update(&mut app, Msg::Action(Action::ScrollUp));
    let effects = [effects, update(&mut app, Msg::Action(Action::ScrollUp))].concat();
    let asked: Vec<_> = sends(&effects)
        .into_iter()
        .filter(|f| matches!(f, ClientFrame::History { .. }))
        .collect();
    assert!(
        matches!(
            asked[..],
            [ClientFrame::History {
                user: None,
                before: Some(50),
                ..
            }]
        ),
        "{asked:?}"
    );
    frame(
        &mut app,
        ServerFrame::History {
            id: None,
            user: name("ana"),
            messages: vec![user_msg(10, "ana", "old", Priority::Normal)],
        },
    );
    assert_eq!(ids(&app, "ana")[0], 10);
    assert_eq!(
        app.conversations[&name("ana")].history,
        HistoryState::Loaded { complete: true }
    );
    let effects = update(&mut app, Msg::Action(Action::ScrollUp));
    assert!(sends(&effects).is_empty(), "nothing older to ask for");
}
