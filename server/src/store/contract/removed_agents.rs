//! The contract's rules about removed agents: they hold nothing, keep
//! their messages, and come back without conversations or idempotency keys;
//! releases left due are announced once, and only while still true.

use super::*;

pub(in crate::store) fn removed_agents_keep_their_messages_and_lose_their_conversations<
    B: Subject,
>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let alice = add_agent(&conn, "alice");
    let ana = add_user(&conn, "ana");
    set_assignment(&conn, ana, Some(alice)).expect("assigns");
    let id = insert_message(
        &conn,
        Timestamp::from_micros(1),
        ana,
        Some(alice),
        &body("hi"),
        Priority::Normal,
    )
    .expect("message");
    let question = user_message(&conn, ana, 2, "still there?");
    add_waiting(&conn, question, ana, Priority::Normal).expect("waits");
    assert!(!removed_agents_hold_conversations(&conn).expect("reads"));
    let waiting = |conn: &B| -> Vec<u64> {
        waiting_queue(conn, 10)
            .expect("reads")
            .iter()
            .map(|m| m.id)
            .collect()
    };

    assert!(remove_agent(&conn, &name("alice")).expect("removes"));
    assert!(!remove_agent(&conn, &name("alice")).expect("second time"));
    // Not held any more, for every reader, before the server releases it.
    assert!(assignments(&conn).expect("reads").is_empty());
    let user = find_user(&conn, &name("ana"))
        .expect("reads")
        .expect("exists");
    assert_eq!(user.assigned, None);
    assert_eq!(
        message_by_id(&conn, id).expect("reads").agent,
        Some(name("alice"))
    );
    assert!(list_agents(&conn).expect("reads").is_empty());
    // Until the server releases it, her question still waits.
    assert_eq!(waiting(&conn), [question]);

    // The server finds the mark once, releases it, and reports what.
    assert!(removed_agents_hold_conversations(&conn).expect("reads"));
    assert_eq!(
        release_removed_agents(&conn).expect("releases"),
        [(name("ana"), name("alice"))]
    );
    assert!(!removed_agents_hold_conversations(&conn).expect("reads"));
    assert!(release_removed_agents(&conn).expect("again").is_empty());
    // As with any release (protocol version 2), her question still waits,
    // now for any agent.
    assert_eq!(waiting(&conn), [question]);
}

pub(in crate::store) fn a_removed_agent_added_again_does_not_get_its_conversations_back<
    B: Subject,
>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let alice = name("alice");
    let agent_id = add_agent(&conn, "alice");
    let ana = add_user(&conn, "ana");
    set_assignment(&conn, ana, Some(agent_id)).expect("assigns");
    assert!(remove_agent(&conn, &alice).expect("removes"));
    // Added again before any server released the mark.
    upsert_agent(&conn, &alice, b"new", Timestamp::from_micros(1)).expect("again");
    assert_eq!(
        find_user(&conn, &name("ana"))
            .expect("reads")
            .expect("exists")
            .assigned,
        None
    );
    assert!(assignments(&conn).expect("reads").is_empty());
    assert_eq!(list_agents(&conn).expect("reads"), [(alice.clone(), 0)]);
    // The release is still announced, once, by the next server poll.
    assert!(removed_agents_hold_conversations(&conn).expect("reads"));
    assert_eq!(
        release_removed_agents(&conn).expect("releases"),
        [(name("ana"), alice)]
    );
    assert!(!removed_agents_hold_conversations(&conn).expect("reads"));
    assert!(release_removed_agents(&conn).expect("again").is_empty());
}

/// Taken and released again before the poll: the `released` everyone
/// heard was bob's; alice's, announced late, would clear the question
/// ana asked since.
pub(in crate::store) fn a_release_left_due_is_dropped_once_the_user_was_taken_and_released<
    B: Subject,
>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let alice = name("alice");
    let alice_id = add_agent(&conn, "alice");
    let bob = add_agent(&conn, "bob");
    let ana = add_user(&conn, "ana");
    set_assignment(&conn, ana, Some(alice_id)).expect("assigns");
    assert!(remove_agent(&conn, &alice).expect("removes"));
    upsert_agent(&conn, &alice, b"new", Timestamp::from_micros(1)).expect("again");
    set_assignment(&conn, ana, Some(bob)).expect("bob takes ana");
    set_assignment(&conn, ana, None).expect("bob releases ana");
    let question = user_message(&conn, ana, 1, "still there?");
    add_waiting(&conn, question, ana, Priority::Normal).expect("waits");
    assert!(release_removed_agents(&conn).expect("releases").is_empty());
    assert_eq!(waiting_queue(&conn, 10).expect("reads").len(), 1);
}

/// A conversation taken again between the re-add and the server's poll
/// is not announced as released: everyone heard `assigned` instead.
pub(in crate::store) fn a_release_left_due_is_not_announced_for_a_user_taken_since<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let alice = name("alice");
    let alice_id = add_agent(&conn, "alice");
    let bob = add_agent(&conn, "bob");
    let ana = add_user(&conn, "ana");
    let max = add_user(&conn, "max");
    set_assignment(&conn, ana, Some(alice_id)).expect("assigns");
    set_assignment(&conn, max, Some(alice_id)).expect("assigns");
    let question = user_message(&conn, max, 1, "anyone?");
    add_waiting(&conn, question, max, Priority::Normal).expect("waits");
    assert!(remove_agent(&conn, &alice).expect("removes"));
    upsert_agent(&conn, &alice, b"new", Timestamp::from_micros(1)).expect("again");
    set_assignment(&conn, ana, Some(bob)).expect("bob takes ana");
    assert_eq!(
        release_removed_agents(&conn).expect("releases"),
        [(name("max"), alice)]
    );
    assert_eq!(
        waiting_queue(&conn, 10).expect("reads").len(),
        1,
        "max's question still waits, as with any release"
    );
    assert!(!removed_agents_hold_conversations(&conn).expect("reads"));
}

pub(in crate::store) fn a_removed_agent_added_again_does_not_get_its_idempotency_keys_back<
    B: Subject,
>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    let alice = name("alice");
    let agent_id = add_agent(&conn, "alice");
    let bob = add_agent(&conn, "bob");
    let ana = add_user(&conn, "ana");
    let answer = insert_message(
        &conn,
        Timestamp::from_micros(1),
        ana,
        Some(agent_id),
        &body("old answer"),
        Priority::Normal,
    )
    .expect("message");
    insert_key(&conn, Role::Agent, agent_id, "k1", answer).expect("key");
    insert_key(&conn, Role::Agent, bob, "k1", answer).expect("key");
    insert_key(&conn, Role::User, ana, "k1", answer).expect("key");
    // Given a new token while still active: the same agent, same keys.
    upsert_agent(&conn, &alice, b"rotated", Timestamp::from_micros(2)).expect("rotates");
    assert_eq!(
        find_key(&conn, Role::Agent, agent_id, "k1").expect("reads"),
        Some(answer)
    );
    assert!(remove_agent(&conn, &alice).expect("removes"));
    upsert_agent(&conn, &alice, b"new", Timestamp::from_micros(3)).expect("again");
    assert_eq!(
        find_key(&conn, Role::Agent, agent_id, "k1").expect("reads"),
        None
    );
    // Nobody else's keys go.
    assert_eq!(
        find_key(&conn, Role::Agent, bob, "k1").expect("reads"),
        Some(answer)
    );
    assert_eq!(
        find_key(&conn, Role::User, ana, "k1").expect("reads"),
        Some(answer)
    );
}
