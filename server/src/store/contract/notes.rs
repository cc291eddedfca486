//! The contract's rules for private notes (protocol version 2): a note is
//! stored in the user's conversation like any message, neither needs,
//! takes nor changes the holder, answers nothing, and every read made for
//! the user (a `history` page, the backlog, a `since` resume) skips it:
//! neither listed nor counted. Agents read it in place.

use switchboard_protocol::Key;

use super::*;
use crate::event::{Answer, Event, NodeId, Origin};
use crate::store::SendRequest;
use crate::store::rules::{Clock, Written, store_message};

fn origin() -> Origin {
    Origin {
        node: NodeId::LOCAL,
        conn: 1,
        request: None,
    }
}

fn ana() -> Identity {
    Identity {
        role: Role::User,
        name: name("ana"),
        credential: Credential::new(b"h"),
    }
}

fn as_agent(who: &str) -> Identity {
    Identity {
        name: name(who),
        ..agent()
    }
}

/// `from` writes `text` into ana's conversation (a note when `note`), in
/// one transaction, with `text` as its key; the stored message.
fn write<B: Subject>(conn: &B, from: &Identity, text: &str, note: bool) -> Message {
    let request = SendRequest {
        origin: origin(),
        from: from.clone(),
        user: name("ana"),
        body: body(text),
        priority: Priority::Normal,
        key: Key::new(text),
        note,
    };
    let written = store_message(
        &mut conn.tables(),
        &mut Clock::after(Timestamp::from_micros(0)),
        &request,
    )
    .expect("writes");
    match written {
        Written::Event(Event::Sent { message, .. }) => message,
        Written::Answer(Answer::Replayed { message, .. }) => message,
        other => panic!("{text}: {other:?}"),
    }
}

fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

fn page<B: Subject>(conn: &B, before: Option<u64>, limit: u32, notes: Notes) -> Vec<String> {
    let mut reads = conn.reads();
    let ids = read::history(&mut reads, &name("ana"), before, limit, notes)
        .expect("reads")
        .expect("ana exists");
    let messages = reads.messages_by_id(&ids, usize::MAX).expect("reads");
    bodies(&messages).into_iter().map(String::from).collect()
}

pub(in crate::store) fn a_note_neither_takes_nor_answers<B: Subject>(new: impl FnOnce() -> B) {
    let conn = new();
    add_agent(&conn, "alice");
    add_agent(&conn, "bob");
    add_user(&conn, "ana");
    let question = write(&conn, &ana(), "q1", false);
    assert!(!question.note);
    let note = write(&conn, &as_agent("alice"), "n1", true);
    assert!(note.note && note.from == Role::Agent);
    assert_eq!(note.agent, Some(name("alice")));
    assert!(note.id > question.id, "one sequence of ids");
    assert_eq!(holder_of(&conn, "ana"), None, "a note takes nothing");
    let second = write(&conn, &ana(), "q2", false);
    write(&conn, &as_agent("alice"), "n2", true);
    assert_eq!(
        bodies(&waiting_queue(&conn, 10).expect("reads")),
        ["q1", "q2"],
        "notes answer nothing, and never wait"
    );
    // bob answers: he takes the conversation, and every question before
    // (notes between them and after them) stops waiting.
    write(&conn, &as_agent("bob"), "a1", false);
    assert_eq!(holder_of(&conn, "ana"), Some(name("bob")));
    assert!(waiting_queue(&conn, 10).expect("reads").is_empty());
    // alice may still write a note into bob's conversation.
    let aside = write(&conn, &as_agent("alice"), "n3", true);
    assert!(aside.note);
    assert_eq!(holder_of(&conn, "ana"), Some(name("bob")));
    // A key names the note it stored, as for any send.
    assert_eq!(write(&conn, &as_agent("alice"), "n3", true), aside);
    // A resolve after a note ends the waiting before it too.
    let q3 = write(&conn, &ana(), "q3", false);
    write(&conn, &as_agent("alice"), "n4", true);
    assert!(q3.id > second.id);
    assert_eq!(waiting_queue(&conn, 10).expect("reads").len(), 1);
    let resolved = crate::store::rules::lifecycle(
        &mut conn.tables(),
        &mut Clock::after(Timestamp::from_micros(0)),
        &origin(),
        &as_agent("bob"),
        &name("ana"),
        &crate::store::rules::Lifecycle::Resolve,
    )
    .expect("writes");
    assert!(
        matches!(resolved, Written::Event(Event::Resolved { .. })),
        "{resolved:?}"
    );
    assert!(waiting_queue(&conn, 10).expect("reads").is_empty());
}

pub(in crate::store) fn notes_are_read_by_agents_and_never_by_the_user<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    add_agent(&conn, "alice");
    let ana_id = add_user(&conn, "ana");
    // q1 n1 a1 n2 n3 q2 n4: three notes in a row, and one at the end.
    let q1 = write(&conn, &ana(), "q1", false);
    for (text, note) in [
        ("n1", true),
        ("a1", false),
        ("n2", true),
        ("n3", true),
        ("q2", false),
        ("n4", true),
    ] {
        let from = if text.starts_with('q') {
            ana()
        } else {
            as_agent("alice")
        };
        write(&conn, &from, text, note);
    }
    let all = ["q1", "n1", "a1", "n2", "n3", "q2", "n4"];
    assert_eq!(page(&conn, None, 50, Notes::Shown), all);
    assert_eq!(page(&conn, None, 50, Notes::Hidden), ["q1", "a1", "q2"]);
    // A page counts only what the reader sees: two, however many notes
    // lie between them.
    assert_eq!(page(&conn, None, 2, Notes::Hidden), ["a1", "q2"]);
    assert_eq!(page(&conn, None, 2, Notes::Shown), ["q2", "n4"]);
    let q2 = conversation(&conn, ana_id, None, 50).expect("reads")[5].id;
    assert_eq!(page(&conn, Some(q2), 1, Notes::Hidden), ["a1"]);
    assert_eq!(page(&conn, Some(q2), 1, Notes::Shown), ["n3"]);
    assert_eq!(
        page(&conn, Some(q2), 0, Notes::Hidden),
        Vec::<String>::new()
    );

    // The user's `since` resume: notes neither listed nor counted.
    let cap = |messages| ResumeCap {
        messages,
        body_bytes: usize::MAX,
    };
    let (since, truncated) = messages_since(&conn, Some(ana_id), q1.id, cap(10)).expect("reads");
    assert_eq!((bodies(&since), truncated), (vec!["a1", "q2"], false));
    let (since, truncated) = messages_since(&conn, Some(ana_id), q1.id, cap(1)).expect("reads");
    assert_eq!((bodies(&since), truncated), (vec!["q2"], true));
    // Body bytes count only what the user gets: two bytes each.
    let bytes = ResumeCap {
        messages: 10,
        body_bytes: 4,
    };
    let (since, truncated) = messages_since(&conn, Some(ana_id), q1.id, bytes).expect("reads");
    assert_eq!((bodies(&since), truncated), (vec!["a1", "q2"], false));
    // An agent's resume (everyone's messages) has them all.
    let (since, _) = messages_since(&conn, None, q1.id, cap(10)).expect("reads");
    assert_eq!(bodies(&since), &all[1..]);

    // The user's backlog, and its count, hold no note.
    let user_backlog = backlog(&conn, &ana(), None, 50).expect("reads");
    let mut held = user_backlog.messages.clone();
    held.extend(
        conn.reads()
            .messages_by_id(&user_backlog.rest, usize::MAX)
            .expect("reads"),
    );
    assert_eq!(bodies(&held), ["q1", "a1", "q2"]);
    let resumed = backlog(&conn, &ana(), Some(q1.id), 50).expect("reads");
    assert_eq!(
        resumed.messages.len() + resumed.rest.len(),
        2,
        "a1 and q2, after q1"
    );
    // An agent's plain backlog is the waiting queue: no note waits.
    let agent_backlog = backlog(&conn, &as_agent("alice"), None, 50).expect("reads");
    assert_eq!(bodies(&agent_backlog.messages), ["q2"]);
}
