//! The contract's rules for a conversation's state (protocol version 2):
//! `claim`, the changed `release` (waiting messages stay waiting),
//! `resolve` and `transfer`, decided in the writer's transaction on every
//! backend, in the protocol's order of checks.

use super::*;
use crate::event::{Answer, Event, NodeId, Origin, Refusal};
use crate::store::rules::{Clock, Lifecycle, Written, lifecycle};

fn origin() -> Origin {
    Origin {
        node: NodeId::LOCAL,
        conn: 1,
        request: None,
    }
}

fn as_agent(who: &str) -> Identity {
    Identity {
        name: name(who),
        ..agent()
    }
}

/// `who`'s `action` on ana's conversation, in one transaction.
fn act<B: Subject>(conn: &B, who: &str, action: Lifecycle) -> Written {
    lifecycle(
        &mut conn.tables(),
        &mut Clock::after(Timestamp::from_micros(0)),
        &origin(),
        &as_agent(who),
        &name("ana"),
        &action,
    )
    .expect("writes")
}

/// What the requester hears, as the protocol names it: the event or reply
/// frame's type with its agent (and `by`), or the error's refusal.
fn heard(written: &Written) -> String {
    match written {
        Written::Event(Event::Assigned { agent, by, .. }) => match by {
            Some(by) => format!("assigned {agent} by {by}"),
            None => format!("assigned {agent}"),
        },
        Written::Event(Event::Released { agent, by, .. }) => match by {
            Some(by) => format!("released {agent} by {by}"),
            None => format!("released {agent}"),
        },
        Written::Event(Event::Resolved { agent, .. }) => format!("resolved {agent}"),
        Written::Answer(Answer::AlreadyAssigned { agent, by, .. }) => match by {
            Some(by) => format!("reply only: assigned {agent} by {by}"),
            None => format!("reply only: assigned {agent}"),
        },
        Written::Answer(Answer::NothingToResolve { agent, .. }) => {
            format!("reply only: resolved {agent}")
        }
        Written::Answer(Answer::Refused { refusal, .. }) => match refusal {
            Refusal::AssignedToOther { agent, .. } => format!("assigned_to_other {agent}"),
            Refusal::NotAssigned { .. } => "not_assigned".into(),
            Refusal::UnknownUser(_) => "unknown_user".into(),
            Refusal::UnknownAgent(agent) => format!("unknown_agent {agent}"),
            Refusal::Revoked => "unauthorized".into(),
            Refusal::NotDone => "internal".into(),
        },
        other => format!("{other:?}"),
    }
}

fn waiting<B: Subject>(conn: &B) -> usize {
    waiting_queue(conn, 10).expect("reads").len()
}

/// ana, with one question waiting; agents alice and bob.
fn desk<B: Subject>(new: impl FnOnce() -> B) -> B {
    let conn = new();
    add_agent(&conn, "alice");
    add_agent(&conn, "bob");
    let ana = add_user(&conn, "ana");
    let question = user_message(&conn, ana, 1, "anyone?");
    add_waiting(&conn, question, ana, Priority::Normal).expect("waits");
    conn
}

pub(in crate::store) fn a_claim_takes_an_unheld_conversation_once<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = desk(new);
    assert_eq!(
        heard(&act(&conn, "alice", Lifecycle::Claim)),
        "assigned alice"
    );
    assert_eq!(holder_of(&conn, "ana"), Some(name("alice")));
    assert_eq!(waiting(&conn), 1, "a claim answers nothing");
    assert_eq!(
        heard(&act(&conn, "alice", Lifecycle::Claim)),
        "reply only: assigned alice"
    );
    assert_eq!(
        heard(&act(&conn, "bob", Lifecycle::Claim)),
        "assigned_to_other alice"
    );
}

pub(in crate::store) fn a_release_keeps_the_waiting_messages_waiting<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = desk(new);
    assert_eq!(
        heard(&act(&conn, "alice", Lifecycle::Release)),
        "not_assigned"
    );
    act(&conn, "alice", Lifecycle::Claim);
    assert_eq!(
        heard(&act(&conn, "bob", Lifecycle::Release)),
        "not_assigned"
    );
    assert_eq!(
        heard(&act(&conn, "alice", Lifecycle::Release)),
        "released alice"
    );
    assert_eq!(holder_of(&conn, "ana"), None);
    assert_eq!(waiting(&conn), 1, "back in the queue, still waiting");
}

pub(in crate::store) fn a_resolve_ends_the_holding_and_the_waiting<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = desk(new);
    act(&conn, "alice", Lifecycle::Claim);
    assert_eq!(
        heard(&act(&conn, "bob", Lifecycle::Resolve)),
        "not_assigned"
    );
    assert_eq!(
        heard(&act(&conn, "alice", Lifecycle::Resolve)),
        "resolved alice"
    );
    assert_eq!((holder_of(&conn, "ana"), waiting(&conn)), (None, 0));
    // Nothing left to resolve: the reply all the same, no event.
    assert_eq!(
        heard(&act(&conn, "bob", Lifecycle::Resolve)),
        "reply only: resolved bob"
    );
    // Unheld with a question waiting: any agent resolves it.
    let ana = conn
        .tables()
        .user_id(&name("ana"))
        .expect("reads")
        .expect("exists");
    let again = user_message(&conn, ana, 2, "one more thing");
    add_waiting(&conn, again, ana, Priority::Normal).expect("waits");
    assert_eq!(
        heard(&act(&conn, "bob", Lifecycle::Resolve)),
        "resolved bob"
    );
    assert_eq!(waiting(&conn), 0);
}

pub(in crate::store) fn a_transfer_hands_the_conversation_to_a_provisioned_agent<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = desk(new);
    let to = |who: &str| Lifecycle::Transfer { to: name(who) };
    // Unheld: only a holder transfers.
    assert_eq!(heard(&act(&conn, "alice", to("bob"))), "not_assigned");
    act(&conn, "alice", Lifecycle::Claim);
    // The agent is checked before the holder.
    assert_eq!(heard(&act(&conn, "bob", to("zed"))), "unknown_agent zed");
    assert_eq!(heard(&act(&conn, "alice", to("ana"))), "unknown_agent ana");
    assert_eq!(heard(&act(&conn, "bob", to("bob"))), "not_assigned");
    assert_eq!(
        heard(&act(&conn, "alice", to("alice"))),
        "reply only: assigned alice by alice"
    );
    assert_eq!(
        heard(&act(&conn, "alice", to("bob"))),
        "assigned bob by alice"
    );
    assert_eq!(holder_of(&conn, "ana"), Some(name("bob")));
    assert_eq!(waiting(&conn), 1, "a transfer answers nothing");
    // A removed agent is no agent to transfer to.
    assert!(remove_agent(&conn, &name("alice")).expect("removes"));
    assert_eq!(
        heard(&act(&conn, "bob", to("alice"))),
        "unknown_agent alice"
    );
}

/// The checks' order: an unknown user before anything about holders.
pub(in crate::store) fn a_change_to_an_unknown_user_is_unknown_user<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    add_agent(&conn, "alice");
    for action in [
        Lifecycle::Claim,
        Lifecycle::Release,
        Lifecycle::Resolve,
        Lifecycle::Transfer { to: name("zed") },
    ] {
        assert_eq!(heard(&act(&conn, "alice", action)), "unknown_user");
    }
}

/// A supervisor may release, resolve and transfer any conversation (`by`
/// names it when it is not the holder); for claiming it is bound like
/// every agent. Demoted, it is an agent like any other.
pub(in crate::store) fn a_supervisor_changes_any_conversation<B: Subject>(new: impl FnOnce() -> B) {
    let conn = desk(new);
    add_agent(&conn, "sam");
    assert!(conn.set_supervisor(&name("sam"), true).expect("promotes"));
    let to = |who: &str| Lifecycle::Transfer { to: name(who) };
    act(&conn, "alice", Lifecycle::Claim);
    assert_eq!(
        heard(&act(&conn, "sam", Lifecycle::Claim)),
        "assigned_to_other alice"
    );
    assert_eq!(
        heard(&act(&conn, "sam", Lifecycle::Release)),
        "released alice by sam"
    );
    assert_eq!(waiting(&conn), 1, "still waiting");
    // Unheld: nothing to release, even for a supervisor.
    assert_eq!(
        heard(&act(&conn, "sam", Lifecycle::Release)),
        "not_assigned"
    );
    // Unheld: a supervisor's transfer gives it.
    assert_eq!(heard(&act(&conn, "sam", to("bob"))), "assigned bob by sam");
    assert_eq!(
        heard(&act(&conn, "sam", to("alice"))),
        "assigned alice by sam"
    );
    assert_eq!(
        heard(&act(&conn, "sam", to("alice"))),
        "reply only: assigned alice by sam"
    );
    assert_eq!(
        heard(&act(&conn, "sam", Lifecycle::Resolve)),
        "resolved sam"
    );
    assert_eq!((holder_of(&conn, "ana"), waiting(&conn)), (None, 0));
    // Demoted: an agent like any other.
    act(&conn, "alice", Lifecycle::Claim);
    assert!(conn.set_supervisor(&name("sam"), false).expect("demotes"));
    assert_eq!(
        heard(&act(&conn, "sam", Lifecycle::Release)),
        "not_assigned"
    );
    assert_eq!(
        heard(&act(&conn, "sam", Lifecycle::Resolve)),
        "not_assigned"
    );
    assert_eq!(heard(&act(&conn, "sam", to("bob"))), "not_assigned");
    assert!(
        !conn
            .set_supervisor(&name("zed"), true)
            .expect("no such agent")
    );
}
