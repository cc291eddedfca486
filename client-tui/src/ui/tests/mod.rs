//! What is on screen, read back from ratatui's `TestBackend` buffer.
//!
//! Every test draws the whole screen through the same `TestBackend`
//! helpers (here) and reads it back. The version 1 screens are in this
//! file; the help overlay in `help.rs`; small and odd window sizes in
//! `sizes.rs`; protocol version 2's (notes, changes of state, the picker,
//! the questions, the views) in `lifecycle.rs`.

mod help;
mod lifecycle;
mod sizes;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use switchboard_protocol::{
    ClientFrame, ErrorCode, Message, Priority, RequestId, Role, ServerFrame,
};

use crate::app::test_support::{go_online, message_from as msg, name, reconnect, ts, type_text};
use crate::app::{Action, App, Effect, Mode, Msg, NetEvent, update};
use crate::keymap;

fn frame(app: &mut App, frame: ServerFrame) {
    update(app, Msg::Net(NetEvent::Frame(frame)));
}

fn message(app: &mut App, m: Message) {
    frame(app, ServerFrame::Message { message: m });
}

fn online(mode: Mode, me: &str, size: (u16, u16)) -> App {
    let mut app = App::new(mode, name(me), "127.0.0.1:7878".into(), "k".into(), ts(600));
    update(&mut app, Msg::Resize(size.0, size.1));
    go_online(&mut app, Some(2));
    app
}

/// The screen as text, one string per row (trailing spaces trimmed).
fn screen(app: &App) -> Vec<String> {
    let (w, h) = app.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    terminal
        .draw(|f| super::draw(f, app))
        .expect("draws without error");
    let buffer = terminal.backend().buffer();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect()
}

fn contains(rows: &[String], needle: &str) -> bool {
    rows.iter().any(|r| r.contains(needle))
}

fn row_of(rows: &[String], needle: &str) -> usize {
    rows.iter()
        .position(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", rows.join("\n")))
}

#[test]
fn user_mode_shows_header_conversation_and_input() {
    let mut app = online(Mode::User, "ana", (80, 16));
    message(
        &mut app,
        msg(1, "ana", None, "My card was charged twice", Priority::High),
    );
    frame(
        &mut app,
        ServerFrame::Assigned {
            id: None,
            user: name("ana"),
            agent: name("alice"),
            by: None,
        },
    );
    message(
        &mut app,
        msg(2, "ana", Some("alice"), "Looking into it", Priority::Normal),
    );
    let rows = screen(&app);
    assert!(rows[15].contains("alice is now handling your conversation"));
    update(&mut app, Msg::Tick(ts(660)));
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(
        rows[0].contains("ana") && rows[0].contains("online"),
        "{text}"
    );
    assert!(rows[0].contains("agent: alice"), "{text}");
    // Oldest first, each body under its sender.
    let first = row_of(&rows, "My card was charged twice");
    let second = row_of(&rows, "Looking into it");
    assert!(first < second, "{text}");
    assert!(rows[first - 1].contains("ana (you)"), "{text}");
    assert!(rows[second - 1].contains("alice (agent)"), "{text}");
    assert!(rows[14].starts_with("› "), "input prompt: {text}");
    assert!(
        rows[15].contains("Enter send") && rows[15].contains("? help"),
        "{text}"
    );
}

#[test]
fn user_mode_waiting_for_an_agent_and_pending_then_error() {
    let mut app = online(Mode::User, "ana", (60, 14));
    assert!(screen(&app)[0].contains("waiting for an agent (2 online)"));
    type_text(&mut app, "hello?");
    update(&mut app, Msg::Action(Action::Submit));
    let rows = screen(&app);
    assert!(contains(&rows, "sending…"), "{}", rows.join("\n"));
    assert!(contains(&rows, "  hello?"));
    frame(
        &mut app,
        ServerFrame::Error {
            id: Some(RequestId::Int(2)),
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
        },
    );
    let rows = screen(&app);
    assert!(contains(&rows, "not sent"), "{}", rows.join("\n"));
    assert!(contains(&rows, "slow down (rate_limited)"));
}

#[test]
fn agent_mode_shows_the_queue_in_order_with_badges_and_the_prompt() {
    let mut app = online(Mode::Agent, "alice", (100, 20));
    message(
        &mut app,
        msg(1, "calm", None, "a question", Priority::Normal),
    );
    message(
        &mut app,
        msg(2, "ben", None, "I was hacked", Priority::Urgent),
    );
    message(
        &mut app,
        msg(3, "cara", None, "refund please", Priority::High),
    );
    frame(
        &mut app,
        ServerFrame::Presence {
            role: Role::User,
            name: name("ben"),
            online: true,
        },
    );
    frame(
        &mut app,
        ServerFrame::Assigned {
            id: None,
            user: name("cara"),
            agent: name("bob"),
            by: None,
        },
    );
    // The default view lists what alice can work on: bob's cara is not
    // there, nor in any count.
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(!contains(&rows, "cara"), "{text}");
    assert!(contains(&rows, " Queue (2)"), "{text}");
    assert!(contains(&rows, "· 2 waiting"), "{text}");
    // All of them, with Alt-V: mine + unassigned → mine → unassigned → all.
    for _ in 0..3 {
        update(&mut app, Msg::Action(Action::CycleView));
    }
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(contains(&rows, " Queue (2) · all"), "{text}");
    let (ben, cara, calm) = (
        row_of(&rows, "● ben"),
        row_of(&rows, "○ cara"),
        row_of(&rows, "○ calm"),
    );
    assert!(ben < cara && cara < calm, "urgent, high, normal:\n{text}");
    assert!(
        rows[ben].contains("URG") && rows[cara].contains("HIGH"),
        "{text}"
    );
    assert!(rows[cara].contains("bob"), "holder shown:\n{text}");
    // The top row is selected; cara's message counts as nobody's unread
    // news for alice: bob has it.
    assert!(contains(&rows, "to ben ›"), "{text}");
    assert!(rows[ben].starts_with("›● ben "), "selected marker:\n{text}");
    assert!(!rows[cara].contains("cara (1)"), "no unread count:\n{text}");

    update(&mut app, Msg::Action(Action::SelectNext));
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(contains(&rows, "to cara (locked) ›"), "{text}");
    assert!(contains(&rows, "LOCKED: bob has it"), "{text}");
    assert!(contains(&rows, "refund please"), "{text}");
}

/// Ana wrote while alice was offline, and was released before alice came
/// back: once the re-sync after the resume is in, only bo waits.
#[test]
fn after_a_resume_the_queue_shows_only_what_still_waits() {
    let mut app = online(Mode::Agent, "alice", (100, 12));
    message(
        &mut app,
        msg(1, "bo", None, "still waiting", Priority::Normal),
    );
    let subscribes: Vec<RequestId> = reconnect(&mut app)
        .into_iter()
        .filter_map(|effect| match effect {
            Effect::Send(ClientFrame::Subscribe { id, .. }) => id,
            _ => None,
        })
        .collect();
    let [resume, resync] = &subscribes[..] else {
        panic!("a resume and a re-sync: {subscribes:?}");
    };
    let subscribed = |app: &mut App, id: &RequestId| {
        frame(
            app,
            ServerFrame::Subscribed {
                id: Some(id.clone()),
                backlog: 1,
                truncated: false,
            },
        );
    };
    message(
        &mut app,
        msg(2, "ana", None, "refund please", Priority::High),
    );
    subscribed(&mut app, resume);
    message(
        &mut app,
        msg(1, "bo", None, "still waiting", Priority::Normal),
    );
    subscribed(&mut app, resync);
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(rows[0].contains("1 waiting"), "{text}");
    assert!(contains(&rows, "Queue (1)"), "{text}");
    let (ana, bo) = (row_of(&rows, "○ ana"), row_of(&rows, "○ bo"));
    assert!(bo < ana, "bo first:\n{text}");
    assert!(
        !rows[ana].contains("HIGH") && !rows[ana].contains('×'),
        "{text}"
    );
    assert!(rows[bo].contains("×1"), "{text}");
}

#[test]
fn scrolled_up_shows_a_new_messages_marker() {
    let mut app = online(Mode::User, "ana", (40, 10));
    for id in 1..=20 {
        message(
            &mut app,
            msg(
                id,
                "ana",
                Some("alice"),
                &format!("line {id}"),
                Priority::Normal,
            ),
        );
    }
    update(&mut app, Msg::Action(Action::ScrollUp));
    let before = screen(&app);
    message(
        &mut app,
        msg(21, "ana", Some("alice"), "fresh", Priority::Normal),
    );
    let after = screen(&app);
    let text = after.join("\n");
    assert!(contains(&after, "↓ 1 new message · Ctrl-End"), "{text}");
    assert!(!contains(&after, "fresh"), "the view did not jump:\n{text}");
    // Everything above the marker line is where it was.
    assert_eq!(before[1..5], after[1..5]);
    message(
        &mut app,
        msg(22, "ana", Some("alice"), "fresher", Priority::Normal),
    );
    assert!(contains(&screen(&app), "↓ 2 new messages"));
}

/// The header names the node the client is on and, while it reconnects,
/// the one it tries next; the footer says why and when.
#[test]
fn the_header_names_the_node_and_the_next_one_while_reconnecting() {
    let mut app = online(Mode::User, "ana", (100, 12));
    assert!(screen(&app)[0].contains("switchboard 127.0.0.1:7878 · ana · ● online"));
    update(
        &mut app,
        Msg::Net(NetEvent::Disconnected {
            attempt: 2,
            reason: "the server closed the connection; trying 127.0.0.1:7879 now".into(),
            next: "127.0.0.1:7879".into(),
        }),
    );
    let rows = screen(&app);
    assert!(
        rows[0].contains("reconnecting to 127.0.0.1:7879… (try 2)"),
        "{}",
        rows.join("\n")
    );
    assert!(
        rows[11].contains(
            "connection lost: the server closed the connection; trying 127.0.0.1:7879 now"
        ),
        "{}",
        rows.join("\n")
    );
    // Too narrow for the address: the short form, the footer still says.
    update(&mut app, Msg::Resize(40, 12));
    assert!(screen(&app)[0].contains("reconnecting… (try 2)"));
    update(&mut app, Msg::Resize(100, 12));
    update(
        &mut app,
        Msg::Net(NetEvent::Connected {
            node: "127.0.0.1:7879".into(),
            agents_online: Some(1),
        }),
    );
    let rows = screen(&app);
    assert!(
        rows[0].contains("switchboard 127.0.0.1:7879 · ana · ◌ syncing…"),
        "{}",
        rows.join("\n")
    );
}

/// Protocol version 2, agent presence: the header says who else is online
/// among agents, and follows them coming and going.
#[test]
fn the_agent_header_says_which_other_agents_are_online() {
    let mut app = online(Mode::Agent, "alice", (140, 12));
    let presence = |name_: &str, online| ServerFrame::Presence {
        role: Role::Agent,
        name: name(name_),
        online,
    };
    assert!(contains(&screen(&app), "no other agent online"));
    for agent in ["alice", "bob", "carol"] {
        frame(&mut app, presence(agent, true));
    }
    let rows = screen(&app);
    assert!(rows[0].contains("agents: bob, carol"), "{}", rows[0]);
    frame(&mut app, presence("bob", false));
    assert!(screen(&app)[0].contains("agents: carol"));
    for agent in ["dee", "eve", "fay"] {
        frame(&mut app, presence(agent, true));
    }
    assert!(screen(&app)[0].contains("agents: carol, dee, eve, +1"));
}

/// The marker has a row of its own (first-hour findings: drawn over the
/// last visible line, it left the rest of a long line showing after it).
#[test]
fn the_new_messages_marker_covers_no_message() {
    let mut app = online(Mode::User, "ana", (40, 10));
    let long = "a line long enough to fill the whole width of the pane";
    for id in 1..=20 {
        message(
            &mut app,
            msg(id, "ana", Some("alice"), long, Priority::Normal),
        );
    }
    update(&mut app, Msg::Action(Action::ScrollUp));
    message(
        &mut app,
        msg(21, "ana", Some("alice"), "fresh", Priority::Normal),
    );
    let rows = screen(&app);
    let marker = row_of(&rows, "↓ 1 new message");
    assert_eq!(
        rows[marker].trim(),
        "↓ 1 new message · Ctrl-End",
        "{rows:#?}"
    );
}
