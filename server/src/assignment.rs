//! The assignment rule, as a pure function: the first agent to answer an
//! unassigned user takes the conversation; another agent is refused until it
//! is released. The writer applies it inside the transaction that stores the
//! message, which is what makes it atomic: two agents racing for one user are
//! decided one after the other on a single thread.

/// What an agent's message to a user does to the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<A> {
    /// Nobody held the user: the sender takes the conversation.
    Take,
    /// The sender already holds it.
    AlreadyHeld,
    /// Someone else holds it: the message is refused.
    HeldByOther(A),
}

/// Decides an agent's message to a user whose conversation `holder` holds.
pub fn decide<A: PartialEq>(holder: Option<A>, sender: &A) -> Decision<A> {
    match holder {
        None => Decision::Take,
        Some(holder) if holder == *sender => Decision::AlreadyHeld,
        Some(holder) => Decision::HeldByOther(holder),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_agent_takes_an_unassigned_user() {
        assert_eq!(decide(None, &"alice"), Decision::Take);
    }

    #[test]
    fn the_holder_keeps_answering() {
        assert_eq!(decide(Some("alice"), &"alice"), Decision::AlreadyHeld);
    }

    #[test]
    fn another_agent_is_refused_and_told_who_holds_it() {
        assert_eq!(decide(Some("bob"), &"alice"), Decision::HeldByOther("bob"));
    }
}
