//! The contract's rule about credentials (issue 15, finding 7): an agent's
//! write counts only if the token it signed in with is still that agent's,
//! checked inside the write's own transaction. Removing, rotating, or
//! removing and adding again all change the stored hash, so a connection
//! that signed in before writes nothing after, whatever the credential poll
//! has or has not closed yet.

use switchboard_protocol::Key;

use super::*;
use crate::event::{Answer, Event, NodeId, Origin, Refusal};
use crate::identity::Credential;
use crate::store::SendRequest;
use crate::store::rules::{Clock, Lifecycle, Written, lifecycle, store_message};

fn origin() -> Origin {
    Origin {
        node: NodeId::LOCAL,
        conn: 1,
        request: None,
    }
}

fn alice_with(hash: &[u8]) -> Identity {
    Identity {
        credential: Credential::new(hash),
        ..agent()
    }
}

fn answer<B: Subject>(conn: &B, from: &Identity, text: &str) -> Written {
    let request = SendRequest {
        origin: origin(),
        from: from.clone(),
        user: name("ana"),
        body: body(text),
        priority: Priority::Normal,
        key: Key::new(text),
        note: false,
    };
    store_message(
        &mut conn.tables(),
        &mut Clock::after(Timestamp::from_micros(0)),
        &request,
    )
    .expect("writes")
}

fn revoked(written: &Written) -> bool {
    matches!(
        written,
        Written::Answer(Answer::Refused {
            refusal: Refusal::Revoked,
            ..
        })
    )
}

pub(in crate::store) fn an_agents_old_token_writes_nothing_once_replaced_or_removed<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    add_agent(&conn, "alice"); // token hash b"t", as `agent()` signed in with
    let ana = add_user(&conn, "ana");
    let old = agent();
    assert!(matches!(
        answer(&conn, &old, "first"),
        Written::Event(Event::Sent { .. })
    ));
    let release_by = |who: &Identity| {
        lifecycle(
            &mut conn.tables(),
            &mut Clock::after(Timestamp::from_micros(0)),
            &origin(),
            who,
            &name("ana"),
            &Lifecycle::Release,
        )
        .expect("writes")
    };

    // Rotated: the old connection neither answers nor lets go.
    upsert_agent(&conn, &name("alice"), b"rotated", Timestamp::from_micros(1)).expect("rotates");
    assert!(revoked(&answer(&conn, &old, "after rotate")));
    assert!(revoked(&release_by(&old)));
    // Removed, then added again under the same name: the new token's
    // connection acts, the old one still does not.
    assert!(remove_agent(&conn, &name("alice")).expect("removes"));
    assert!(revoked(&answer(&conn, &alice_with(b"rotated"), "removed")));
    upsert_agent(&conn, &name("alice"), b"new", Timestamp::from_micros(2)).expect("adds");
    assert!(revoked(&answer(&conn, &old, "added again")));
    assert!(revoked(&answer(
        &conn,
        &alice_with(b"rotated"),
        "rotated one"
    )));
    assert!(revoked(&release_by(&old)));
    let new_alice = alice_with(b"new");
    assert!(matches!(
        answer(&conn, &new_alice, "the new alice"),
        Written::Event(Event::Sent {
            taken_by: Some(_),
            ..
        })
    ));
    assert!(matches!(
        release_by(&new_alice),
        Written::Event(Event::Released { .. })
    ));
    let bodies: Vec<String> = conversation(&conn, ana, None, 10)
        .expect("reads")
        .iter()
        .map(|message| message.body.as_str().to_owned())
        .collect();
    assert_eq!(bodies, ["first", "the new alice"]);
}
