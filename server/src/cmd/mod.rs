//! One request per file: `parse` turns a frame's raw fields into a validated
//! command (or the error to answer), `apply` carries it out. [`Command`] is
//! the dispatcher: a signed-in connection's frame becomes a command here, so
//! the session only does I/O and keeps replies in order.
//!
//! Requests that change state (`send`, `claim`, `release`, `resolve`,
//! `transfer`) and `subscribe` are
//! answered through the router ([`Reply::Later`]): a write after its commit,
//! a subscribe once its backlog is read. The others answer at once
//! ([`Reply::Now`]). `hello` is the anonymous connection's one request and
//! is handled by the session's sign-in.

pub mod hello;
pub mod history;
pub mod lifecycle;
pub mod ping;
pub mod send_message;
pub mod subscribe;

use std::net::IpAddr;

use switchboard_protocol::{ClientFrame, Name, RequestId, Role, ServerFrame};

use crate::error::RequestError;

use crate::event::{ConnId, Origin};
use crate::identity::Identity;
use crate::inflow::Exceeded;
use crate::rate_limit::TokenBucket;
use crate::services::Services;
use crate::store::Lifecycle;

/// The user a request names. A name no user could have is `unknown_user`
/// like any other user that does not exist (docs/protocol.md, point 6).
fn named_user(text: &str) -> Result<Name, RequestError> {
    Name::parse(text).map_err(|_| RequestError::unknown_user(text))
}

/// How a request is answered.
#[derive(Debug)]
pub enum Reply {
    Now(ServerFrame),
    /// A `history` page, written as its messages are read.
    Page(history::Page),
    /// `bye`: the client is owed what it asked for before, then the session
    /// closes.
    Close,
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
            node: self.services.router.node(),
            conn: self.conn,
            request: self.request.clone(),
        }
    }
}

/// What a connection keeps between its requests that commands consult.
pub struct PerConnection {
    /// `send`s allowed now (docs/protocol.md, the send rate).
    pub sends: TokenBucket,
    /// The client's address, by which users' sends are also counted
    /// (`None`: an in-memory session).
    pub peer: Option<IpAddr>,
}

/// A signed-in connection's request, validated.
#[derive(Debug)]
pub enum Command {
    Subscribe(subscribe::Subscribe),
    Send(send_message::SendMessage),
    /// `claim`, `release`, `resolve`, `transfer`.
    ChangeConversation(lifecycle::ChangeConversation),
    History(history::History),
    Ping,
    /// End the session.
    Bye,
}

impl Command {
    /// The command a signed-in connection's frame asks for, or the error to
    /// answer it with. A `send` over the rate is refused before it is read.
    pub fn from_frame(
        frame: ClientFrame,
        identity: &Identity,
        services: &Services,
        connection: &mut PerConnection,
    ) -> Result<Command, RequestError> {
        Ok(match frame {
            ClientFrame::Bye { .. } => Command::Bye,
            ClientFrame::Hello { .. } => return Err(RequestError::AlreadyAuthenticated),
            ClientFrame::Ping { .. } => Command::Ping,
            ClientFrame::Subscribe { since, limit, .. } => {
                Command::Subscribe(subscribe::Subscribe::parse(identity.role, since, limit))
            }
            ClientFrame::Send {
                to,
                body,
                key,
                note,
                ..
            } => {
                // Refused before it costs the sender a token.
                send_message::SendMessage::may_write(identity, note)?;
                if !connection.sends.try_take() {
                    return Err(RequestError::RateLimited);
                }
                let send =
                    send_message::SendMessage::parse(identity, to, &body, key, note, services)?;
                if identity.role == Role::User {
                    services
                        .inflow
                        .try_send(&identity.name, connection.peer, body.len())
                        .map_err(|exceeded| match exceeded {
                            Exceeded::User => RequestError::UserInflowLimited,
                            Exceeded::Address => RequestError::AddressInflowLimited,
                        })?;
                }
                Command::Send(send)
            }
            ClientFrame::Claim { user, .. } => Command::ChangeConversation(
                lifecycle::ChangeConversation::parse(identity, &user, Lifecycle::Claim)?,
            ),
            ClientFrame::Release { user, .. } => Command::ChangeConversation(
                lifecycle::ChangeConversation::parse(identity, &user, Lifecycle::Release)?,
            ),
            ClientFrame::Resolve { user, .. } => Command::ChangeConversation(
                lifecycle::ChangeConversation::parse(identity, &user, Lifecycle::Resolve)?,
            ),
            ClientFrame::Transfer { user, to, .. } => Command::ChangeConversation(
                lifecycle::ChangeConversation::transfer(identity, &user, &to)?,
            ),
            ClientFrame::History {
                user,
                before,
                limit,
                ..
            } => Command::History(history::History::parse(identity, user, before, limit)?),
        })
    }

    /// Whether every earlier request must be answered before this one runs:
    /// a `history` or a backlog then includes the connection's own writes.
    pub fn reads_own_writes(&self) -> bool {
        matches!(self, Command::History(_) | Command::Subscribe(_))
    }

    /// Whether this is answered before the connection's next request is
    /// read: a `subscribe`, answered with a whole backlog, one at a time,
    /// so pipelining them cannot pile backlogs up in memory.
    pub fn one_at_a_time(&self) -> bool {
        matches!(self, Command::Subscribe(_))
    }

    pub async fn apply(self, caller: Caller<'_>) -> Result<Reply, RequestError> {
        match self {
            Command::Subscribe(subscribe) => subscribe.apply(caller).await,
            Command::Send(send) => send.apply(caller).await,
            Command::ChangeConversation(change) => change.apply(caller).await,
            Command::History(history) => history.apply(caller).await,
            Command::Ping => ping::apply(caller).await,
            Command::Bye => Ok(Reply::Close),
        }
    }
}
