//! Who is on a connection, and with which credential it signed in.

use std::fmt;
use std::sync::Arc;

use switchboard_protocol::{Name, Role};

/// A signed-in user or agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub role: Role,
    pub name: Name,
    /// What it signed in with. Every write an agent makes carries it, and
    /// storage checks it against the agent's current token inside the
    /// write's own transaction: a token removed or rotated since sign-in
    /// writes nothing, even before the credential poll closes the
    /// connection (issue 15, finding 7).
    pub credential: Credential,
}

/// The hash of the token a connection signed in with (never the token).
///
/// The hash, not a separate generation number: it is already in the agent's
/// row, and it changes on every `agent add`, `rotate` and `remove` (a new
/// random token, or none), which is exactly when an old connection must stop
/// acting. Shared (`Arc`) because the identity is cloned for every request.
/// Its `Debug` shows nothing: a logged request must not carry even a hash
/// of a secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credential(Arc<[u8]>);

impl Credential {
    pub fn new(token_hash: &[u8]) -> Self {
        Self(Arc::from(token_hash))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `current` (the stored token hash, `None` once removed) is
    /// still this one.
    pub fn is_current(&self, current: Option<&[u8]>) -> bool {
        current == Some(self.as_bytes())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_current_only_while_the_stored_hash_is_the_same() {
        let credential = Credential::new(b"old");
        assert!(credential.is_current(Some(b"old")));
        assert!(
            !credential.is_current(Some(b"new")),
            "rotated, or added again"
        );
        assert!(!credential.is_current(None), "removed");
        assert_eq!(format!("{credential:?}"), "Credential(<redacted>)");
    }
}
