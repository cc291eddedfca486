//! Who is on a connection.

use switchboard_protocol::{Name, Role};

/// A signed-in user or agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub role: Role,
    pub name: Name,
}
