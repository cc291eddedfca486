//! The contract's rule about names (issue 15, finding 10): a new user name
//! must differ, ignoring case, from every user's and every agent's (a
//! removed agent's too: it may be added back), so nobody passes for
//! someone else by case, and no customer passes for an agent.

use switchboard_protocol::Token;

use super::*;
use crate::store::Registration;
use crate::store::rules::{Clock, register_user};

fn register<B: Subject>(conn: &B, who: &str) -> bool {
    let registration = register_user::<_, B::Error>(
        &mut conn.tables(),
        &mut Clock::after(Timestamp::from_micros(0)),
        &name(who),
        || Ok(Token::new(format!("token of {who}"))),
    )
    .expect("writes");
    matches!(registration, Registration::Created { .. })
}

pub(in crate::store) fn a_new_name_differs_from_every_user_and_agent_ignoring_case<B: Subject>(
    new: impl FnOnce() -> B,
) {
    let conn = new();
    add_agent(&conn, "alice");
    add_agent(&conn, "bob");
    assert!(remove_agent(&conn, &name("bob")).expect("removes"));
    assert!(register(&conn, "ana"));
    for taken in ["ana", "Ana", "ANA", "alice", "Alice", "bob", "BOB"] {
        assert!(!register(&conn, taken), "{taken} is taken");
    }
    assert!(register(&conn, "ana.b"));
    let like: Vec<(Role, Name)> = conn.tables().names_like(&name("ALICE")).expect("reads");
    assert_eq!(like, [(Role::Agent, name("alice"))]);
}
