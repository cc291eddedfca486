//! Who is on a connection, and where a request came from.

use switchboard_protocol::{Name, RequestId, Role};

/// Identifies one TCP connection for the life of the server process.
pub type ConnId = u64;

/// A signed-in user or agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub role: Role,
    pub name: Name,
}

/// The connection and request a reply goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub conn: ConnId,
    pub request: Option<RequestId>,
}
