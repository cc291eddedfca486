//! The contract's rule for auto-release (protocol version 2): a held
//! conversation is due once its holder has been offline, and has held it,
//! since the deadline or before; releasing it clears the holder, keeps the
//! waiting messages waiting, and says why.

use std::time::Duration;

use switchboard_protocol::ReleaseReason;

use super::*;
use crate::event::Event;
use crate::store::rules::{Clock, release_offline_holders};

fn due<B: Subject>(conn: &B, deadline: i64) -> Vec<(Name, Name)> {
    conn.tables()
        .offline_holders(Timestamp::from_micros(deadline))
        .expect("reads")
        .into_iter()
        .map(|(_, user, agent)| (user, agent))
        .collect()
}

pub(in crate::store) fn a_conversation_is_due_once_held_and_offline_past_the_deadline<
    B: Subject,
>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    // Agents start offline from when they were added (here: 0 µs).
    let alice = add_agent(&conn, "alice");
    add_agent(&conn, "bob");
    let ana = add_user(&conn, "ana");
    let question = user_message(&conn, ana, 1, "anyone?");
    add_waiting(&conn, question, ana, Priority::Normal).expect("waits");
    assert!(due(&conn, i64::MAX).is_empty(), "nobody holds it");
    // alice took it at 1,000 µs: the clock starts then, not when she left.
    conn.tables()
        .set_assignment(ana, Some((alice, Timestamp::from_micros(1_000))))
        .expect("assigns");
    assert!(due(&conn, 999).is_empty());
    assert_eq!(due(&conn, 1_000), [(name("ana"), name("alice"))]);
    // The rule releases it, says why, and the question still waits.
    let released = release_offline_holders(
        &mut conn.tables(),
        &mut Clock::after(Timestamp::from_micros(0)),
        Duration::from_secs(1),
    )
    .expect("writes");
    assert_eq!(
        released,
        [Event::Released {
            origin: None,
            user: name("ana"),
            agent: name("alice"),
            by: None,
            reason: Some(ReleaseReason::AgentOffline),
        }]
    );
    assert!(due(&conn, i64::MAX).is_empty(), "released once");
    assert_eq!(waiting_queue(&conn, 10).expect("reads").len(), 1);
    assert_eq!(holder_of(&conn, "ana"), None);
    // A removed agent's conversations are not this rule's.
    conn.tables()
        .set_assignment(ana, Some((alice, Timestamp::from_micros(1_000))))
        .expect("assigns");
    remove_agent(&conn, &name("alice")).expect("removes");
    assert!(due(&conn, i64::MAX).is_empty());
}
