//! Protocol version 2 on screen: a private note looks like nothing the
//! customer saw, a change of state is a line of its own, the transfer
//! picker, a release asks in the footer, the views, and a customer's
//! screen after a resolve. The two screens the issue asks to see are
//! printed by `cargo test -p switchboard-tui -- --nocapture screens_`.

use super::*;

/// `agent` holds `user` now (`by`: who handed it over).
fn assigned(app: &mut App, user: &str, agent: &str, by: Option<&str>) {
    frame(
        app,
        ServerFrame::Assigned {
            id: None,
            user: name(user),
            agent: name(agent),
            by: by.map(name),
        },
    );
}

/// alice's desk: ana is alice's (with a note of bob's and a transfer
/// line), ben waits unassigned, zoe is bob's.
fn agent_desk() -> App {
    let mut app = online(Mode::Agent, "alice", (100, 16));
    frame(
        &mut app,
        ServerFrame::Presence {
            role: Role::Agent,
            name: name("bob"),
            online: true,
        },
    );
    message(
        &mut app,
        msg(1, "ana", None, "my card was charged twice", Priority::High),
    );
    message(
        &mut app,
        msg(2, "zoe", None, "where is my parcel?", Priority::Normal),
    );
    assigned(&mut app, "zoe", "bob", None);
    assigned(&mut app, "ana", "bob", None);
    message(
        &mut app,
        Message {
            note: true,
            ..msg(
                3,
                "ana",
                Some("bob"),
                "refund is pending with billing",
                Priority::Normal,
            )
        },
    );
    assigned(&mut app, "ana", "alice", Some("bob"));
    message(
        &mut app,
        msg(
            4,
            "ben",
            None,
            "how do I reset my password?",
            Priority::Normal,
        ),
    );
    app
}

#[test]
fn screens_agent_with_views_a_note_and_a_transfer_line() {
    let mut app = agent_desk();
    update(&mut app, Msg::Action(Action::SelectPrev));
    let rows = screen(&app);
    let text = rows.join("\n");
    println!("agent screen:\n{text}\n");
    assert!(
        contains(&rows, " Queue (2)"),
        "ana and ben, not zoe:\n{text}"
    );
    assert!(!contains(&rows, "zoe"), "{text}");
    assert!(
        contains(&rows, "ana ● ") || contains(&rows, " ana "),
        "{text}"
    );
    let note = row_of(&rows, "private note");
    assert!(rows[note].contains("bob"), "{text}");
    assert!(contains(&rows, "refund is pending with billing"), "{text}");
    assert!(
        contains(&rows, "— bob transferred ana to alice —"),
        "{text}"
    );
    // The note's body is drawn in the notes' colours, not a message's.
    let body = row_of(&rows, "refund is pending");
    assert!(note < body, "{text}");
    // All the views: zoe, bob's, shows with its holder.
    for _ in 0..3 {
        update(&mut app, Msg::Action(Action::CycleView));
    }
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(contains(&rows, " Queue (2) · all"), "{text}");
    assert!(
        row_of(&rows, "zoe") > 0 && rows[row_of(&rows, "zoe")].contains("bob"),
        "{text}"
    );
}

#[test]
fn a_release_asks_in_the_footer_and_the_picker_lists_agents() {
    let mut app = agent_desk();
    update(&mut app, Msg::Action(Action::SelectPrev));
    update(&mut app, Msg::Action(Action::Release));
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(
        contains(
            &rows,
            "release ana to the queue, questions still waiting? y: yes · other key: no"
        ),
        "{text}"
    );
    update(&mut app, Msg::Action(Action::Cancel));
    update(&mut app, Msg::Action(Action::Transfer));
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(contains(&rows, "transfer "), "{text}");
    let bob = row_of(&rows, "● bob");
    assert!(rows[bob].contains("conversation"), "{text}");
    assert!(rows[bob].contains('›'), "bob is chosen:\n{text}");
    assert!(
        contains(&rows, "type to narrow, or any agent's name"),
        "{text}"
    );
    // A name nobody listed has: the last row is the choice, and says so.
    for c in "dora".chars() {
        update(&mut app, Msg::Action(Action::Insert(c)));
    }
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(!contains(&rows, "● bob"), "narrowed away:\n{text}");
    let dora = row_of(&rows, "dora");
    assert!(
        rows[dora].contains("› dora not listed: Enter hands it over"),
        "{text}"
    );
}

#[test]
fn note_mode_has_its_own_prompt() {
    let mut app = agent_desk();
    update(&mut app, Msg::Action(Action::SelectPrev));
    update(&mut app, Msg::Action(Action::ToggleNote));
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(contains(&rows, "note "), "{text}");
    assert!(
        rows.iter()
            .any(|r| r.contains("note ") && r.contains(" › ")),
        "{text}"
    );
    // The empty input says what a note is, never "answer".
    assert!(contains(&rows, "a note only agents see"), "{text}");
    assert!(!contains(&rows, "type an answer"), "{text}");
}

#[test]
fn screens_user_after_a_resolve() {
    let mut app = online(Mode::User, "ana", (80, 12));
    message(
        &mut app,
        msg(1, "ana", None, "my card was charged twice", Priority::High),
    );
    assigned(&mut app, "ana", "alice", None);
    message(
        &mut app,
        msg(
            2,
            "ana",
            Some("alice"),
            "refunded: you will see it tomorrow",
            Priority::Normal,
        ),
    );
    frame(
        &mut app,
        ServerFrame::Resolved {
            id: None,
            user: name("ana"),
            agent: name("alice"),
        },
    );
    let rows = screen(&app);
    let text = rows.join("\n");
    println!("user screen:\n{text}\n");
    assert!(
        contains(&rows, "resolved · write again to reopen"),
        "{text}"
    );
    assert!(
        contains(&rows, "— alice is handling your conversation —"),
        "{text}"
    );
    assert!(
        contains(&rows, "— alice marked your conversation resolved —"),
        "{text}"
    );
}

/// A view with nothing in it says so, and names the key to the others on a
/// row of its own, whole even beside a narrow queue.
#[test]
fn an_empty_view_names_the_key_to_the_others() {
    let mut app = online(Mode::Agent, "alice", (60, 12));
    message(
        &mut app,
        msg(1, "zoe", None, "where is my parcel?", Priority::Normal),
    );
    assigned(&mut app, "zoe", "bob", None);
    let rows = screen(&app);
    let text = rows.join("\n");
    assert!(rows[2].contains("none in mine + unassigned"), "{text}");
    assert!(rows[3].contains("Alt-V: the other views"), "{text}");
}
