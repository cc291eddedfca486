//! Why a request failed, mapped to the protocol's error codes in one place.

use switchboard_protocol::{
    BodyError, ErrorCode, FrameError, Name, NameError, RequestId, ServerFrame,
};
use thiserror::Error;

use crate::event::Refusal;
use crate::signups::SignupRefused;
use crate::store::StoreError;

/// The longest piece of client input quoted back in an error message.
const QUOTE_CHARS: usize = 40;

/// A request the server refused or could not carry out. `Display` is the
/// `message` clients see: it never carries a secret or an internal detail.
#[derive(Debug, Clone, Error)]
pub enum RequestError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("say hello first: {{\"type\":\"hello\",\"role\":\"user\",\"name\":\"…\"}}")]
    NotAuthenticated,
    #[error("no hello within {0} s")]
    HelloTimeout(u64),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("this connection is already signed in")]
    AlreadyAuthenticated,
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("invalid body: {0}")]
    InvalidBody(#[from] BodyError),
    #[error("no user named {0}")]
    UnknownUser(Quoted),
    /// The request must name a user and did not.
    #[error("{0}")]
    UserRequired(&'static str),
    #[error("{user} is assigned to {agent}")]
    AssignedToOther { user: Name, agent: Name },
    #[error("{user} is not assigned to you")]
    NotAssigned { user: Name },
    #[error(
        "no agent named {0}: a transfer goes to a provisioned agent (`switchboard agent list` shows them)"
    )]
    UnknownAgent(Quoted),
    /// `switchboard agent rotate` or `remove` took this connection's token away.
    #[error("your token was rotated or revoked; sign in again with the new one")]
    Revoked,
    #[error("too many messages: slow down")]
    RateLimited,
    /// Over the user's allowance, counted across all its connections.
    #[error(
        "too many messages from your account (all its connections together): wait a few seconds, then send again"
    )]
    UserInflowLimited,
    /// Over the client address's allowance, all its users together.
    #[error(
        "too many messages from your network address (all its users together): wait a few seconds, then send again"
    )]
    AddressInflowLimited,
    #[error("too many new names from your address; try again in a minute")]
    SignupsLimited,
    #[error("too many new names are being registered right now; try again in a minute")]
    ServerSignupsLimited,
    #[error("you are not reading your events fast enough; closing")]
    SlowConsumer,
    /// Too many long replies in flight (`--reply-budget`); the connection
    /// stays.
    #[error("too many large replies in flight; retry in a few seconds")]
    RepliesBusy,
    /// This user has `--replies-per-user` long replies in flight.
    #[error("you have too many large replies in flight; read them, then retry")]
    UserRepliesBusy,
    #[error("the server is at its connection limit; try again later")]
    ServerBusy,
    #[error("too many connections from your address; close one and try again")]
    AddressBusy,
    #[error("too many new connections from your address; retry in a second")]
    ConnectionsLimited,
    /// The details go to the log, not to the client.
    #[error("the server failed; nothing was stored")]
    Internal,
}

/// Storage failures reach clients only as `internal`; the detail is logged.
impl From<StoreError> for RequestError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "storage failed");
        RequestError::Internal
    }
}

impl From<SignupRefused> for RequestError {
    fn from(refused: SignupRefused) -> Self {
        match refused {
            SignupRefused::Address => RequestError::SignupsLimited,
            SignupRefused::Server => RequestError::ServerSignupsLimited,
        }
    }
}

/// What storage refused, as the requester hears it.
impl From<Refusal> for RequestError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::UnknownUser(user) => RequestError::unknown_user(user.as_str()),
            Refusal::Revoked => RequestError::Revoked,
            Refusal::AssignedToOther { user, agent } => {
                RequestError::AssignedToOther { user, agent }
            }
            Refusal::NotAssigned { user } => RequestError::NotAssigned { user },
            Refusal::UnknownAgent(agent) => RequestError::unknown_agent(agent.as_str()),
            Refusal::NotDone => RequestError::Internal,
        }
    }
}

impl RequestError {
    /// The `error` frame that answers request `id` with this error.
    pub fn to_frame(&self, id: Option<RequestId>) -> ServerFrame {
        ServerFrame::error(id, self.code(), self.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::Frame(frame) => frame.code(),
            RequestError::NotAuthenticated | RequestError::HelloTimeout(_) => {
                ErrorCode::NotAuthenticated
            }
            RequestError::Unauthorized(_) | RequestError::Revoked => ErrorCode::Unauthorized,
            RequestError::AlreadyAuthenticated => ErrorCode::AlreadyAuthenticated,
            RequestError::InvalidName(_) => ErrorCode::InvalidName,
            RequestError::Forbidden(_) => ErrorCode::Forbidden,
            RequestError::InvalidBody(_) => ErrorCode::InvalidBody,
            RequestError::UnknownUser(_) | RequestError::UserRequired(_) => ErrorCode::UnknownUser,
            RequestError::AssignedToOther { .. } => ErrorCode::AssignedToOther,
            RequestError::NotAssigned { .. } => ErrorCode::NotAssigned,
            RequestError::UnknownAgent(_) => ErrorCode::UnknownAgent,
            RequestError::RateLimited
            | RequestError::UserInflowLimited
            | RequestError::AddressInflowLimited
            | RequestError::SignupsLimited
            | RequestError::ServerSignupsLimited
            | RequestError::RepliesBusy
            | RequestError::UserRepliesBusy => ErrorCode::RateLimited,
            RequestError::SlowConsumer => ErrorCode::SlowConsumer,
            RequestError::ServerBusy
            | RequestError::AddressBusy
            | RequestError::ConnectionsLimited => ErrorCode::ServerBusy,
            RequestError::Internal => ErrorCode::Internal,
        }
    }

    pub fn unknown_user(name: &str) -> Self {
        RequestError::UnknownUser(Quoted::new(name))
    }

    pub fn unknown_agent(name: &str) -> Self {
        RequestError::UnknownAgent(Quoted::new(name))
    }
}

/// Client text quoted in an error message: escaped and cut short, so a
/// hostile name cannot bloat a reply or smuggle control characters.
#[derive(Debug, Clone)]
pub struct Quoted(String);

impl Quoted {
    pub fn new(text: &str) -> Self {
        let mut quoted: String = text.chars().take(QUOTE_CHARS).collect();
        if text.chars().nth(QUOTE_CHARS).is_some() {
            quoted.push('…');
        }
        Self(format!("{:?}", quoted))
    }
}

impl std::fmt::Display for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigned_to_other_reads_as_the_protocol_shows() {
        let error = RequestError::AssignedToOther {
            user: Name::parse("ana").expect("valid"),
            agent: Name::parse("bob").expect("valid"),
        };
        assert_eq!(error.to_string(), "ana is assigned to bob");
        assert_eq!(error.code(), ErrorCode::AssignedToOther);
    }

    #[test]
    fn quoted_input_is_escaped_and_short() {
        let hostile = format!("\u{1b}[2J{}", "x".repeat(500));
        let text = RequestError::unknown_user(&hostile).to_string();
        assert!(!text.contains('\u{1b}'));
        assert!(text.chars().count() < 80, "{text}");
    }
}
