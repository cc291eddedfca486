//! One request per file: `parse` turns a frame's raw fields into a validated
//! command (or the error to answer), `apply` carries it out.
//!
//! Requests that change state (`send`, `release`, `subscribe`) are answered
//! through the router after the commit ([`Reply::Later`]); the others
//! answer at once ([`Reply::Now`]).

pub mod hello;
pub mod history;
pub mod ping;
pub mod release;
pub mod send;
pub mod subscribe;

use switchboard_protocol::{Name, RequestId, ServerFrame};

use crate::error::RequestError;

use crate::event::{ConnId, NodeId, Origin};
use crate::identity::Identity;
use crate::services::Services;

/// The user a request names. A name no user could have is `unknown_user`
/// like any other user that does not exist (docs/protocol.md, point 6).
fn named_user(text: &str) -> Result<Name, RequestError> {
    Name::parse(text).map_err(|_| RequestError::unknown_user(text))
}

/// How a request is answered.
#[derive(Debug)]
pub enum Reply {
    Now(ServerFrame),
    /// The router will deliver the reply once the writer has committed.
    Later,
}

/// The signed-in connection making a request.
pub struct Caller<'a> {
    pub conn: ConnId,
    pub request: Option<RequestId>,
    pub identity: &'a Identity,
    pub services: &'a Services,
}

impl Caller<'_> {
    pub fn origin(&self) -> Origin {
        Origin {
            node: NodeId::LOCAL,
            conn: self.conn,
            request: self.request.clone(),
        }
    }
}
