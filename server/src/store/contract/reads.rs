//! The contract's reads: the waiting queue's order, history paging and
//! `since` caps, held conversations, a backlog's position.

use super::*;

pub(in crate::store) fn waiting_queue_is_urgent_first_then_oldest<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let ana = insert_user(&conn, &name("ana"), b"h", Timestamp::from_micros(0)).expect("user");
    let mut ts = 0;
    let mut put = |priority| {
        ts += 1;
        let id = insert_message(
            &conn,
            Timestamp::from_micros(ts),
            ana,
            None,
            &body("x"),
            priority,
        )
        .expect("message");
        add_waiting(&conn, id, ana, priority).expect("waiting");
        id
    };
    let normal = put(Priority::Normal);
    let urgent_old = put(Priority::Urgent);
    let low = put(Priority::Low);
    let urgent_new = put(Priority::Urgent);
    let high = put(Priority::High);
    let ids: Vec<_> = waiting_queue(&conn, 10)
        .expect("reads")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, vec![urgent_old, urgent_new, high, normal, low]);
    assert_eq!(waiting_queue(&conn, 2).expect("reads").len(), 2);
    clear_waiting(&conn, ana).expect("clears");
    assert!(waiting_queue(&conn, 10).expect("reads").is_empty());
}

pub(in crate::store) fn conversation_pages_backwards_and_returns_oldest_first<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let ana = insert_user(&conn, &name("ana"), b"h", Timestamp::from_micros(0)).expect("user");
    let bo = insert_user(&conn, &name("bo"), b"h", Timestamp::from_micros(0)).expect("user");
    let ids: Vec<u64> = (1..=6)
        .map(|i| {
            let user = if i % 2 == 0 { bo } else { ana };
            user_message(&conn, user, i, "x")
        })
        .collect();
    let page: Vec<_> = conversation(&conn, ana, None, 2)
        .expect("reads")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(page, vec![ids[2], ids[4]]);
    let older: Vec<_> = conversation(&conn, ana, Some(ids[2]), 10)
        .expect("reads")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(older, vec![ids[0]]);
    // Any id pages, not only one of this conversation: bo's, or past the end.
    let ids_of = |messages: Vec<Message>| messages.iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids_of(conversation(&conn, ana, Some(ids[3]), 10).expect("reads")),
        vec![ids[0], ids[2]]
    );
    assert_eq!(
        ids_of(conversation(&conn, ana, Some(u64::MAX), 10).expect("reads")),
        vec![ids[0], ids[2], ids[4]]
    );
    assert!(
        conversation(&conn, ana, Some(ids[0]), 10)
            .expect("reads")
            .is_empty()
    );
    // One conversation's resume keeps its newest.
    let cap = |messages| ResumeCap {
        messages,
        body_bytes: usize::MAX,
    };
    let (mine, truncated) = messages_since(&conn, Some(ana), ids[0], cap(1)).expect("reads");
    assert!(truncated);
    assert_eq!(ids_of(mine), vec![ids[4]]);
    let (mine, truncated) = messages_since(&conn, Some(ana), ids[0], cap(5)).expect("reads");
    assert!(!truncated);
    assert_eq!(ids_of(mine), vec![ids[2], ids[4]]);
    // And stops at the body bytes: two one-byte bodies fit in 2.
    let (mine, truncated) = messages_since(
        &conn,
        Some(ana),
        0,
        ResumeCap {
            messages: 10,
            body_bytes: 2,
        },
    )
    .expect("reads");
    assert!(truncated);
    assert_eq!(ids_of(mine), vec![ids[2], ids[4]]);
    let (since, truncated) = messages_since(&conn, None, ids[1], cap(2)).expect("reads");
    assert!(truncated);
    assert_eq!(
        since.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ids[4], ids[5]]
    );
}

pub(in crate::store) fn held_conversations_are_listed_by_user_with_their_agent<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let alice = add_agent(&conn, "alice");
    let bob = add_agent(&conn, "bob");
    for (user, agent) in [("zoe", Some(alice)), ("ana", Some(bob)), ("max", None)] {
        set_assignment(&conn, add_user(&conn, user), agent).expect("assigns");
    }
    assert_eq!(
        assignments(&conn).expect("reads"),
        [(name("ana"), name("bob")), (name("zoe"), name("alice"))]
    );
    assert_eq!(
        list_agents(&conn).expect("reads"),
        [(name("alice"), 1), (name("bob"), 1)]
    );
}

/// A backlog says which commits its snapshot saw: the newest message id
/// plus the releases made, the position the writer gives each batch.
pub(in crate::store) fn a_backlog_comes_with_the_position_of_its_snapshot<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let start = Timestamp::from_micros(0);
    let ann = insert_user(&conn, &name("ann"), b"h", start).expect("user");
    let empty = backlog(&conn, &agent(), None, 10).expect("reads");
    assert_eq!(empty.as_of, Seq(0));
    let body = Body::parse("waiting", 100).expect("valid");
    let id = insert_message(&conn, start, ann, None, &body, Priority::Normal).expect("message");
    add_waiting(&conn, id, ann, Priority::Normal).expect("waits");
    let read = backlog(&conn, &agent(), None, 10).expect("reads");
    assert_eq!(read.as_of, Seq(id));
    assert_eq!(read.messages.len(), 1);
    add_releases(&conn, 2).expect("counts");
    let read = backlog(&conn, &agent(), Some(0), 10).expect("reads");
    assert_eq!(read.as_of, Seq(id + 2));
    assert_eq!(read.messages.len(), 1, "since 0: everything");
}

/// A long reply is planned as ids and read a chunk at a time: a chunk stops
/// at its messages or its body bytes, and the chunks joined are the page
/// read whole; a user's backlog is its first chunk and the ids of the rest,
/// counted whole; an agent's comes whole.
pub(in crate::store) fn a_long_reply_is_read_a_chunk_at_a_time<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let ana = add_user(&conn, "ana");
    let bo = add_user(&conn, "bo");
    for i in 0..120 {
        user_message(&conn, if i % 4 == 3 { bo } else { ana }, i, "0123456789");
    }
    // Ten-byte bodies: three reach 25 bytes.
    let chunk = ReplyChunk {
        messages: 8,
        body_bytes: 25,
    };
    let ids = read::history(&mut conn.reads(), &name("ana"), None, 50, Notes::Hidden)
        .expect("reads")
        .expect("ana exists");
    assert_eq!(ids.len(), 50);
    let mut joined = Vec::new();
    let mut rest = &ids[..];
    while !rest.is_empty() {
        let read = read::chunk(&mut conn.reads(), rest, chunk).expect("reads");
        assert_eq!(read.len(), rest.len().min(3));
        rest = &rest[read.len()..];
        joined.extend(read);
    }
    assert_eq!(joined, conversation(&conn, ana, None, 50).expect("reads"));
    let few = ReplyChunk {
        messages: 2,
        body_bytes: usize::MAX,
    };
    assert_eq!(
        read::chunk(&mut conn.reads(), &ids, few)
            .expect("reads")
            .len(),
        2
    );
    assert!(
        read::history(&mut conn.reads(), &name("cy"), None, 50, Notes::Shown)
            .expect("reads")
            .is_none()
    );

    let ana_identity = Identity {
        role: Role::User,
        name: name("ana"),
        credential: crate::identity::Credential::new(b"t"),
    };
    let user_backlog = |since| {
        read::backlog(
            &mut conn.reads(),
            &ana_identity,
            since,
            50,
            crate::store::RESUME_CAP,
            chunk,
        )
        .expect("reads")
    };
    let whole = user_backlog(None);
    assert_eq!(whole.count(), 50);
    assert_eq!(whole.messages, joined[..3]);
    assert_eq!(whole.rest, ids[3..]);
    let resumed = user_backlog(Some(ids[40]));
    assert_eq!(resumed.count(), 9);
    assert_eq!(resumed.messages, joined[41..44]);
    assert_eq!(resumed.rest, ids[44..]);
    let agents = read::backlog(
        &mut conn.reads(),
        &agent(),
        Some(0),
        50,
        crate::store::RESUME_CAP,
        chunk,
    )
    .expect("reads");
    assert_eq!((agents.messages.len(), agents.rest.len()), (120, 0));
}
